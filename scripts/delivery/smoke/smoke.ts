// What the smoke tests share: where the deployed services are, and one request with a deadline.
import assert from "node:assert/strict";

export const JAFFLR_URL = process.env.JAFFLR_URL ?? "";
export const CHILLYBIN_URL = process.env.CHILLYBIN_URL ?? "";
assert.ok(JAFFLR_URL && CHILLYBIN_URL, "set JAFFLR_URL and CHILLYBIN_URL (verify.sh does)");

/** The versions this deploy rolled out (verify.sh passes them); unset means "any". */
export const EXPECTED: Record<string, string | undefined> = {
  jafflr: process.env.EXPECT_JAFFLR_VERSION || undefined,
  chillybin: process.env.EXPECT_CHILLYBIN_VERSION || undefined,
};

export const SERVICES = [
  ["jafflr", JAFFLR_URL],
  ["chillybin", CHILLYBIN_URL],
] as const;

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

export async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A request the service must refuse as a 400 problem, before it touches any stock. */
export async function expectInvalidRequest(url: string, init: RequestInit = {}): Promise<void> {
  const answer = await call(url, init);
  assert.equal(answer.status, 400, answer.text);
  assert.match(answer.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assert.equal(JSON.parse(answer.text).status, 400);
}
