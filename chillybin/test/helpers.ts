/**
 * Test wiring: a fresh migrated database per test file, the real app on an ephemeral port, a
 * client that never throws, and a snapshot of everything a refused request must leave alone.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import pg from "pg";
import request from "supertest";
import { eventually as until } from "testkit/eventually";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { createLogger, createMetrics, Lifecycle } from "tpi";
import { type AppDeps, createApp } from "../src/app";
import { createPool } from "../src/db";
import { migrate } from "../src/migrate";
import { DEFAULT_STOCK } from "../src/stock";
import { StockFeed } from "../src/stock-feed";

export const silentLogger = createLogger({
  service: "chillybin-test",
  version: "test",
  level: process.env.TEST_LOG_LEVEL ?? "silent",
  pretty: false,
});

/** A new, migrated database; `drop()` it in after(). */
export async function migratedDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  await migrate({ databaseUrl: db.url, logger: silentLogger, MIGRATE_TIMEOUT_MS: 30_000 }).catch(
    async (err) => {
      await db.drop();
      throw err;
    },
  );
  return db;
}

export interface AppOptions extends Pick<AppDeps, "adminToken" | "events"> {
  poolMax?: number;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
}

/** The parts createApp needs, over a real pool; generous timeouts so a busy machine never 503s. */
export function appDeps(databaseUrl: string, opts: AppOptions = {}) {
  const settings = {
    DATABASE_URL: databaseUrl,
    PG_POOL_MAX: opts.poolMax ?? 10,
    PG_CONNECT_TIMEOUT_MS: opts.connectTimeoutMs ?? 30_000,
    PG_STATEMENT_TIMEOUT_MS: opts.statementTimeoutMs ?? 30_000,
  };
  const pool = createPool(settings, silentLogger);
  const metrics = createMetrics({ service: "chillybin", version: "test" });
  const feed = new StockFeed({ settings, logger: silentLogger, metrics });
  return {
    ...opts,
    pool,
    feed,
    metrics,
    lifecycle: new Lifecycle(),
    logger: silentLogger,
    version: "test",
  };
}

export type TestApp = { url: string; pool: pg.Pool; close(): Promise<void> };

export async function startApp(databaseUrl: string, opts: AppOptions = {}): Promise<TestApp> {
  const deps = appDeps(databaseUrl, opts);
  const server = createApp(deps).listen(0, "127.0.0.1");
  await new Promise((resolve, reject) => server.once("listening", resolve).once("error", reject));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pool: deps.pool,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await deps.feed.close();
      await deps.pool.end();
    },
  };
}

/**
 * For a whole test file: a migrated database and the app over it (live from the first test on),
 * back to the seeded stall before each test unless `reset` is false. `setUp` runs once the app
 * is up (Node 20 runs a file's top-level before() hooks concurrently, so not another before()).
 */
export function useTestApp(
  opts: AppOptions & { reset?: boolean; setUp?: () => Promise<void> } = {},
) {
  const shared = {} as TestApp & { db: TestDatabase };
  before(async () => {
    shared.db = await migratedDatabase();
    Object.assign(shared, await startApp(shared.db.url, opts));
    await opts.setUp?.();
  });
  after(async () => {
    await shared.close?.();
    await shared.db?.drop();
  });
  if (opts.reset !== false) beforeEach(() => resetDatabase(shared.pool));
  return shared;
}

export type Reply = {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  text: string;
};

/** Sends anything, never throws: a network failure is status 0 with the error as text. */
export async function send(url: string, build: (a: request.Agent) => request.Test): Promise<Reply> {
  try {
    const { status, headers, body, text } = await build(request.agent(url));
    return { status, headers, body, text };
  } catch (err) {
    return { status: 0, headers: {}, body: undefined, text: String(err) };
  }
}
export const get = (url: string, path: string, headers: Record<string, string> = {}) =>
  send(url, (a) => a.get(path).set(headers));
export const post = (
  url: string,
  path: string,
  body?: object,
  headers: Record<string, string> = {},
) => send(url, (a) => a.post(path).set(headers).send(body));

/** A set-up step: anything but 200 fails the test, with the answer in the message. */
export async function ok<T = Record<string, number>>(reply: Promise<Reply>): Promise<T> {
  const { status, text, body } = await reply;
  assert.equal(status, 200, text);
  return body as T;
}

/** Straight from the database: what a refused request must not have changed. */
export async function snapshot(pool: pg.Pool) {
  const { rows } = await pool.query<{
    stock: Record<string, number>;
    orders: number;
    items: number;
  }>(
    `SELECT (SELECT coalesce(json_object_agg(name, quantity ORDER BY name COLLATE "C"), '{}')
               FROM ingredients) AS stock,
            (SELECT count(*)::int FROM orders) AS orders,
            (SELECT count(*)::int FROM order_items) AS items`,
  );
  return rows[0] as { stock: Record<string, number>; orders: number; items: number };
}

/** Back to the seeded stall: default stock only, no orders. */
export async function resetDatabase(pool: pg.Pool): Promise<void> {
  await pool.query("TRUNCATE order_items, orders, ingredients");
  await pool.query(
    "INSERT INTO ingredients (name, quantity) SELECT key, value::int FROM json_each_text($1)",
    [JSON.stringify(DEFAULT_STOCK)],
  );
}

/** An RFC 9457 problem+json body whose status is the HTTP status. */
export function assertProblem(reply: Reply, status: number): Record<string, unknown> {
  assert.equal(reply.status, status, reply.text.slice(0, 500));
  assert.match(reply.headers["content-type"] ?? "", /^application\/problem\+json/);
  const body = JSON.parse(reply.text);
  assert.equal(body.status, status);
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.type, "string");
  return body;
}

/**
 * A table of bad inputs against an app with something to lose (an order on record, stock that is
 * not all defaults), never reset between cases: each gets its 4xx problem, no stack trace, no
 * huge echo of the input, and changes nothing.
 */
export function describeBadInput(
  table: Record<string, [string, number, (a: request.Agent) => request.Test][]>,
) {
  let baseline: Awaited<ReturnType<typeof snapshot>>;
  const app = useTestApp({
    reset: false,
    setUp: async () => {
      await ok(post(app.url, "/v2/pick", { customer: "gita", ingredient: "cheese", quantity: 1 }));
      await ok(post(app.url, "/restock", { bread: 6 }));
      baseline = await snapshot(app.pool);
    },
  });
  for (const [name, cases] of Object.entries(table)) {
    describe(name, () => {
      for (const [what, status, build] of cases) {
        test(`${what} → ${status}`, async () => {
          const reply = await send(app.url, build);
          const { instance: _, ...body } = assertProblem(reply, status);
          assert.equal(reply.text.includes("    at "), false, "no stack trace");
          assert.ok(JSON.stringify(body).length < 4096, "no huge echo of the input");
          assert.deepEqual(await snapshot(app.pool), baseline);
        });
      }
    });
  }
  return app;
}

/** Waits for `check` to return something other than undefined (20 ms polls, 10 s by default). */
export const eventually = <T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
) => until(check, { timeoutMs, intervalMs: 20, message: () => `timed out waiting for ${what}` });

/** Another session, in a transaction that has run `sql` (so holds its locks) until it ends. */
export async function holdLocks(app: { db: TestDatabase }, sql: string): Promise<pg.Client> {
  const holder = new pg.Client({ connectionString: app.db.url });
  await holder.connect();
  await holder.query(`BEGIN; ${sql}`);
  return holder;
}
/** Waits until `n` sessions on the app's database are waiting for a lock. */
export const lockWaiters = ({ pool }: { pool: pg.Pool }, n: number, what: string) =>
  eventually(what, async () => {
    const sql = `SELECT FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
    return (await pool.query(sql)).rowCount === n || undefined;
  });

/** The stock feed is live (its gauge says so), so GET / and /events serve from memory. */
export const feedLive = async (url: string) =>
  /^chillybin_stock_feed_connected(\{[^}]*\})? 1$/m.test((await get(url, "/metrics")).text) ||
  undefined;

// ---------- GET /events ----------

export type SseEvent = { event: string; data: string };
const streams = new Set<http.IncomingMessage>();
after(() => {
  for (const s of streams) s.destroy();
});

/** Enough of an EventSource (text/event-stream) to check the contract, comments included. */
export async function openEvents(url: string) {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`${url}/events`, resolve).once("error", reject);
  });
  streams.add(res);
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let buffer = "";
  res.setEncoding("utf8").on("data", (chunk: string) => {
    const blocks = (buffer + chunk).split("\n\n");
    buffer = blocks.pop() ?? "";
    for (const block of blocks) {
      const fields = block.split("\n").map((l) => /^([^:]*):? ?(.*)$/.exec(l)?.slice(1) ?? []);
      comments.push(...fields.filter(([f]) => f === "").map(([, v]) => `${v}`));
      const data = fields.filter(([f]) => f === "data").map(([, v]) => v);
      const event = fields.find(([f]) => f === "event")?.[1] ?? "message";
      if (data.length > 0) events.push({ event, data: data.join("\n") });
    }
  });
  const next = (match: (e: SseEvent) => boolean, from = 0) =>
    eventually("an event", async () => events.slice(from).find(match));
  const ended = new Promise((done) => res.once("close", done));
  return {
    status: res.statusCode,
    headers: res.headers,
    events,
    comments,
    ended,
    next,
    close: () => res.destroy(),
  };
}

/** Matches a `stock` event whose data passes `check`. */
export const stockEvent = (check: (stock: Record<string, number>) => boolean) => (e: SseEvent) =>
  e.event === "stock" && check(JSON.parse(e.data));
