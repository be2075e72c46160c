/**
 * PostgreSQL going away: requests get 503 problems with Retry-After, /ready fails, /health and
 * the process stay up (that it resumes by itself when the database is back is proven on the real
 * processes, in integration-tests' toastie.test.ts).
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { freePort } from "testkit/net";
import {
  assertProblem,
  get,
  holdLocks,
  ok,
  post,
  type Reply,
  snapshot,
  startApp,
  type TestApp,
  useTestApp,
} from "./helpers";

// Its own statements time out after 300 ms; the other apps reach PostgreSQL through a port.
const app = useTestApp({ reset: false, statementTimeoutMs: 300 });
const closing: { close(): Promise<unknown> }[] = [];
after(async () => {
  for (const c of closing.reverse()) await c.close();
});

/** Another app on this database, reaching it through `port` (a proxy, or nothing at all). */
async function appVia(port: number): Promise<TestApp> {
  const via = new URL(app.db.url);
  via.hostname = "127.0.0.1";
  via.port = String(port);
  const other = await startApp(via.href, { connectTimeoutMs: 2_000 });
  closing.push(other);
  return other;
}

function assertUnavailable(reply: Reply) {
  assertProblem(reply, 503);
  assert.match(reply.headers["retry-after"] ?? "", /^\d+$/);
  assert.equal(reply.text.includes("ECONNREFUSED"), false, "no internals leak");
}
const pick = { customer: "gita", ingredient: "cheese", quantity: 1 };

test("a database nobody answers for: 503 problems with Retry-After, /ready fails, /health does not", async () => {
  const down = await appVia(await freePort());
  assertUnavailable(await get(down.url, "/"));
  assertUnavailable(await post(down.url, "/v2/pick", pick));
  assertUnavailable(await get(down.url, "/orders"));
  assertUnavailable(await post(down.url, "/restock", { cheese: 5 }));
  const ready = await get(down.url, "/ready");
  assert.equal(ready.status, 503);
  assert.match(ready.text, /database/);
  assert.equal((await get(down.url, "/health")).status, 200);
  // Bad input is still the client's fault, database or not.
  assertProblem(await post(down.url, "/v2/pick", { ...pick, quantity: -5 }), 400);
});

test("a statement stuck behind a lock past PG_STATEMENT_TIMEOUT_MS: 503, nothing changed", async () => {
  const holder = await holdLocks(app, "SELECT FROM ingredients WHERE name = 'cheese' FOR UPDATE");
  try {
    const before = await snapshot(app.pool);
    assertUnavailable(await post(app.url, "/v2/pick", pick));
    await holder.query("ROLLBACK");
    assert.deepEqual(await snapshot(app.pool), before);
    await ok(post(app.url, "/v2/pick", pick));
  } finally {
    await holder.end();
  }
});
