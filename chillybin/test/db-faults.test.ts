/**
 * PostgreSQL going away: requests get 503 problems with Retry-After, /ready fails, /health and
 * the process stay up, and service resumes by itself when the database is back.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { freePort } from "testkit/net";
import { TcpProxy } from "testkit/tcp-proxy";
import type { TestDatabase } from "testkit/test-db";
import {
  act,
  arrange,
  isProblem,
  migratedDatabase,
  type Reply,
  snapshot,
  startApp,
  type TestApp,
} from "./helpers";

let db: TestDatabase;
const apps: TestApp[] = [];
const proxies: TcpProxy[] = [];

before(async () => {
  db = await migratedDatabase();
});
after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(apps.map((a) => a.close()));
  await db?.drop();
});

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
}

function assertUnavailable(reply: Reply, what: string) {
  assert.equal(reply.status, 503, `${what}: ${reply.status} ${reply.text}`);
  assert.ok(isProblem(reply), what);
  assert.match(String(reply.headers["retry-after"]), /^\d+$/, what);
  assert.equal(reply.text.includes("ECONNREFUSED"), false, `${what}: no internals leak`);
}

async function untilStatus(
  check: () => Promise<Reply>,
  status: number,
  timeoutMs = 20_000,
): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await check();
    if (reply.status === status || Date.now() > deadline) return reply;
    await sleep(100);
  }
}

test("a database nobody answers for: 503 problems with Retry-After, /ready fails, /health does not", async () => {
  const app = await startApp(withPort(db.url, await freePort()), { connectTimeoutMs: 2_000 });
  apps.push(app);
  const client = act(app.url);
  assertUnavailable(await client.get("/"), "GET /");
  assertUnavailable(
    await client.postJson("/v2/pick", { customer: "gita", ingredient: "cheese", quantity: 1 }),
    "POST /v2/pick",
  );
  assertUnavailable(await client.get("/orders"), "GET /orders");
  assertUnavailable(await client.postJson("/restock", { cheese: 5 }), "POST /restock");
  const ready = await client.get("/ready");
  assert.equal(ready.status, 503);
  assert.match(JSON.stringify(ready.body), /database/);
  assert.equal((await client.get("/health")).status, 200);
  // Bad input is still the client's fault, database or not.
  assert.equal(
    (await client.postJson("/v2/pick", { customer: "gita", ingredient: "cheese", quantity: -5 }))
      .status,
    400,
  );
});

test("the database goes away and comes back: 503 meanwhile, nothing changes, recovery without restart", async () => {
  const target = new URL(db.url);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  proxies.push(proxy);
  await proxy.open();
  const app = await startApp(withPort(db.url, proxy.port), { connectTimeoutMs: 2_000 });
  apps.push(app);
  const client = act(app.url);
  const direct = new pg.Pool({ connectionString: db.url, max: 2 });
  try {
    await arrange(app.url).setStock({ cheese: 10 });
    // Warm the pool so there are idle connections to lose.
    await Promise.all(Array.from({ length: 5 }, () => arrange(app.url).stock()));
    const before = await snapshot(direct);

    await proxy.close();
    assertUnavailable(await client.get("/"), "GET / while down");
    assertUnavailable(
      await client.postJson(
        "/v2/pick",
        { customer: "gita", ingredient: "cheese", quantity: 1 },
        { "Idempotency-Key": "k-down" },
      ),
      "POST /v2/pick while down",
    );
    assert.equal((await client.get("/ready")).status, 503);
    assert.equal((await client.get("/health")).status, 200);
    assert.deepEqual(await snapshot(direct), before, "nothing changed while the database was away");

    await proxy.open(); // same port: the app's DATABASE_URL is unchanged
    assert.equal((await untilStatus(() => client.get("/ready"), 200)).status, 200);
    assert.equal((await client.get("/")).status, 200);
    const retried = await client.postJson(
      "/v2/pick",
      { customer: "gita", ingredient: "cheese", quantity: 1 },
      { "Idempotency-Key": "k-down" },
    );
    assert.equal(retried.status, 200, retried.text);
    assert.equal((await snapshot(direct)).stock.cheese, 9);
  } finally {
    await direct.end();
  }
});

test("a statement stuck behind a lock past PG_STATEMENT_TIMEOUT_MS: 503, nothing changed", async () => {
  const app = await startApp(db.url, { statementTimeoutMs: 300 });
  apps.push(app);
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await holder.query("BEGIN");
    await holder.query("SELECT quantity FROM ingredients WHERE name = 'cheese' FOR UPDATE");
    const before = await snapshot(app.pool);
    const client = act(app.url);
    assertUnavailable(
      await client.postJson("/v2/pick", { customer: "gita", ingredient: "cheese", quantity: 1 }),
      "v2 pick behind a lock",
    );
    await holder.query("ROLLBACK");
    assert.deepEqual(await snapshot(app.pool), before);
    const after = await client.postJson("/v2/pick", {
      customer: "gita",
      ingredient: "cheese",
      quantity: 1,
    });
    assert.equal(after.status, 200);
  } finally {
    await holder.end();
  }
});
