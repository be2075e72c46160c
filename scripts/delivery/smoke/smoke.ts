// What the smoke tests share: where the deployed services are, and a request with a deadline.
import assert from "node:assert/strict";

export const { JAFFLR_URL = "", CHILLYBIN_URL = "" } = process.env;
assert.ok(JAFFLR_URL && CHILLYBIN_URL, "set JAFFLR_URL and CHILLYBIN_URL (verify.sh does)");
export const SERVICES = [
  // The versions this deploy rolled out (verify.sh passes them); unset means any.
  ["jafflr", JAFFLR_URL, process.env.EXPECT_JAFFLR_VERSION],
  ["chillybin", CHILLYBIN_URL, process.env.EXPECT_CHILLYBIN_VERSION],
] as const;

export async function call(url: string, init: RequestInit = {}) {
  // Every request says it is the smoke, so a count by caller (User-Agent) can leave it out.
  const headers = new Headers(init.headers);
  headers.set("user-agent", "smoke");
  const response = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A request the service must refuse as a 400 problem, before it touches any stock. */
export async function expectInvalidRequest(url: string, init: RequestInit = {}): Promise<void> {
  const answer = await call(url, init);
  assert.equal(answer.status, 400, answer.text);
  assert.match(answer.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assert.equal(JSON.parse(answer.text).status, 400);
}
