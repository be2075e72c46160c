/**
 * PostgreSQL going away: requests get 503 problems with Retry-After, /ready fails, /health and
 * the process stay up, and service resumes by itself when the database is back.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { freePort } from "testkit/net";
import { TcpProxy } from "testkit/tcp-proxy";
import type { TestDatabase } from "testkit/test-db";
import {
  assertProblem,
  eventually,
  get,
  migratedDatabase,
  ok,
  post,
  type Reply,
  snapshot,
  startApp,
  type TestApp,
} from "./helpers";

let db: TestDatabase;
const closing: { close(): Promise<unknown> }[] = [];
before(async () => {
  db = await migratedDatabase();
});
after(async () => {
  for (const c of closing.reverse()) await c.close();
  await db?.drop();
});

/** The app on `db`, reaching PostgreSQL through `port` (a proxy, or nothing at all). */
async function appVia(url: string, port: number): Promise<TestApp> {
  const via = new URL(url);
  via.hostname = "127.0.0.1";
  via.port = String(port);
  const app = await startApp(via.href, { connectTimeoutMs: 2_000 });
  closing.push(app);
  return app;
}

function assertUnavailable(reply: Reply) {
  assertProblem(reply, 503);
  assert.match(reply.headers["retry-after"] ?? "", /^\d+$/);
  assert.equal(reply.text.includes("ECONNREFUSED"), false, "no internals leak");
}
const pick = { customer: "gita", ingredient: "cheese", quantity: 1 };

test("a database nobody answers for: 503 problems with Retry-After, /ready fails, /health does not", async () => {
  const app = await appVia(db.url, await freePort());
  assertUnavailable(await get(app.url, "/"));
  assertUnavailable(await post(app.url, "/v2/pick", pick));
  assertUnavailable(await get(app.url, "/orders"));
  assertUnavailable(await post(app.url, "/restock", { cheese: 5 }));
  const ready = await get(app.url, "/ready");
  assert.equal(ready.status, 503);
  assert.match(ready.text, /database/);
  assert.equal((await get(app.url, "/health")).status, 200);
  // Bad input is still the client's fault, database or not.
  assertProblem(await post(app.url, "/v2/pick", { ...pick, quantity: -5 }), 400);
});

test("the database goes away and comes back: 503 meanwhile, nothing changes, recovery without restart", async () => {
  const target = new URL(db.url);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  closing.push(proxy);
  await proxy.open();
  const app = await appVia(db.url, proxy.port);
  const direct = new pg.Pool({ connectionString: db.url, max: 2 });
  closing.push({ close: () => direct.end() });
  await ok(post(app.url, "/restock", { cheese: 10 }));
  // Warm the pool so there are idle connections to lose.
  await Promise.all(Array.from({ length: 5 }, () => ok(get(app.url, "/"))));
  const before = await snapshot(direct);

  await proxy.close();
  assertUnavailable(await get(app.url, "/"));
  assertUnavailable(await post(app.url, "/v2/pick", pick, { "Idempotency-Key": "k-down" }));
  assert.equal((await get(app.url, "/ready")).status, 503);
  assert.equal((await get(app.url, "/health")).status, 200);
  assert.deepEqual(await snapshot(direct), before, "nothing changed while the database was away");

  await proxy.open(); // same port: the app's DATABASE_URL is unchanged
  await eventually(
    "ready again",
    async () => (await get(app.url, "/ready")).status === 200 || undefined,
    20_000,
  );
  await ok(get(app.url, "/"));
  await ok(post(app.url, "/v2/pick", pick, { "Idempotency-Key": "k-down" }));
  assert.equal((await snapshot(direct)).stock.cheese, 9);
});

test("a statement stuck behind a lock past PG_STATEMENT_TIMEOUT_MS: 503, nothing changed", async () => {
  const app = await startApp(db.url, { statementTimeoutMs: 300 });
  closing.push(app);
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  closing.push({ close: () => holder.end() });
  await holder.query("BEGIN");
  await holder.query("SELECT FROM ingredients WHERE name = 'cheese' FOR UPDATE");
  const before = await snapshot(app.pool);
  assertUnavailable(await post(app.url, "/v2/pick", pick));
  await holder.query("ROLLBACK");
  assert.deepEqual(await snapshot(app.pool), before);
  await ok(post(app.url, "/v2/pick", pick));
});
