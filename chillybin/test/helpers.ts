/**
 * Test wiring: a fresh database per test file (migrated with the real runner), the real app on
 * an ephemeral port, an `arrange` client that throws when set-up fails and an `act` client that
 * never throws, and a snapshot of everything a bad request must leave alone.
 */

import assert from "node:assert/strict";
import type { Server } from "node:http";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import type pg from "pg";
import request from "supertest";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { createLogger, createMetrics, Lifecycle, type Metrics } from "tpi";
import { createApp } from "../src/app";
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
  try {
    await migrate({ databaseUrl: db.url, logger: silentLogger, timeoutMs: 30_000 });
  } catch (err) {
    await db.drop();
    throw err;
  }
  return db;
}

export interface TestApp {
  url: string;
  pool: pg.Pool;
  feed: StockFeed;
  metrics: Metrics;
  lifecycle: Lifecycle;
  close(): Promise<void>;
}

export interface AppOptions {
  adminToken?: string;
  events?: { maxStreams?: number; heartbeatMs?: number };
  poolMax?: number;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
}

/** The app over a real pool; generous timeouts so a busy shared machine never turns into 503s. */
export async function startApp(databaseUrl: string, opts: AppOptions = {}): Promise<TestApp> {
  const settings = {
    DATABASE_URL: databaseUrl,
    PG_POOL_MAX: opts.poolMax ?? 10,
    PG_CONNECT_TIMEOUT_MS: opts.connectTimeoutMs ?? 30_000,
    PG_STATEMENT_TIMEOUT_MS: opts.statementTimeoutMs ?? 30_000,
  };
  const pool = createPool(settings, silentLogger);
  const metrics = createMetrics({ service: "chillybin", version: "test" });
  const feed = new StockFeed({ settings, logger: silentLogger, metrics });
  feed.start();
  const lifecycle = new Lifecycle();
  const app = createApp({
    pool,
    feed,
    logger: silentLogger,
    metrics,
    lifecycle,
    version: "test",
    adminToken: opts.adminToken,
    ...(opts.events ? { events: opts.events } : {}),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pool,
    feed,
    metrics,
    lifecycle,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((e) => (e ? reject(e) : resolve())),
      );
      await feed.close();
      await pool.end();
    },
  };
}

/** The app a test file shares, and its database; the hooks of `useTestApp` own its lifetime. */
export interface SharedTestApp extends Omit<TestApp, "close"> {
  readonly db: TestDatabase;
}

/**
 * For a whole test file: a migrated database and the app over it, started in before() and closed
 * and dropped in after(); unless `resetBeforeEach` is false, back to the seeded stall before each
 * test. Call it at the top of the file; the handle is live from the first test on. File-wide
 * set-up that needs the app goes in `setUp`, not in another top-level before(): Node 20 runs a
 * file's top-level before() hooks concurrently, so that one could run before the app is up.
 */
export function useTestApp(
  opts: AppOptions & {
    resetBeforeEach?: boolean;
    setUp?: (app: SharedTestApp) => Promise<void>;
  } = {},
): SharedTestApp {
  const { resetBeforeEach = true, setUp, ...appOptions } = opts;
  let db: TestDatabase | undefined;
  let app: TestApp | undefined;
  const live = (): { db: TestDatabase; app: TestApp } => {
    if (!db || !app) throw new Error("useTestApp: the app is not started (yet); use it in a test");
    return { db, app };
  };
  const handle: SharedTestApp = {
    get db() {
      return live().db;
    },
    get url() {
      return live().app.url;
    },
    get pool() {
      return live().app.pool;
    },
    get feed() {
      return live().app.feed;
    },
    get metrics() {
      return live().app.metrics;
    },
    get lifecycle() {
      return live().app.lifecycle;
    },
  };
  before(async () => {
    db = await migratedDatabase();
    app = await startApp(db.url, appOptions);
    await setUp?.(handle);
  });
  after(async () => {
    await app?.close();
    await db?.drop();
  });
  if (resetBeforeEach) beforeEach(() => resetDatabase(live().app.pool));
  return handle;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text: string;
}

/** Act: sends anything, never throws; a network failure is status 0 with the error as text. */
export function act(url: string) {
  const send = async (build: (agent: request.Agent) => request.Test): Promise<Reply> => {
    try {
      const res = await build(request.agent(url));
      return { status: res.status, headers: res.headers, body: res.body, text: res.text };
    } catch (err) {
      return { status: 0, headers: {}, body: undefined, text: String(err) };
    }
  };
  return {
    send,
    get: (path: string, headers: Record<string, string> = {}) =>
      send((a) => a.get(path).set(headers)),
    postJson: (path: string, body: unknown, headers: Record<string, string> = {}) =>
      send((a) =>
        a
          .post(path)
          .set(headers)
          .send(body as object),
      ),
  };
}

/** Arrange: the set-up steps a test relies on; any failure throws with the response in the message. */
export function arrange(url: string) {
  const ok = async <T>(what: string, build: (agent: request.Agent) => request.Test): Promise<T> => {
    const res = await build(request.agent(url));
    if (res.status !== 200) throw new Error(`arrange ${what}: ${res.status} ${res.text}`);
    return res.body as T;
  };
  return {
    stock: () => ok<Record<string, number>>("GET /", (a) => a.get("/")),
    setStock: (levels: Record<string, number>, token?: string) =>
      ok<Record<string, number>>("POST /restock", (a) => {
        const req = a.post("/restock");
        if (token) req.set("Authorization", `Bearer ${token}`);
        return req.send(levels);
      }),
    order: (body: object, key?: string) =>
      ok<{
        id: string;
        customer: string;
        items: { ingredient: string; quantity: number }[];
        createdAt: string;
      }>("POST /v2/pick", (a) => {
        const req = a.post("/v2/pick");
        if (key) req.set("Idempotency-Key", key);
        return req.send(body);
      }),
  };
}

export interface Snapshot {
  stock: Record<string, number>;
  orders: number;
  orderItems: number;
}

/** Straight from the database: what a rejected request must not have changed. */
export async function snapshot(pool: pg.Pool): Promise<Snapshot> {
  const stock = await pool.query<{ name: string; quantity: number }>(
    `SELECT name, quantity FROM ingredients ORDER BY name COLLATE "C"`,
  );
  const counts = await pool.query<{ orders: number; items: number }>(
    "SELECT (SELECT count(*)::int FROM orders) AS orders, (SELECT count(*)::int FROM order_items) AS items",
  );
  const row = counts.rows[0] as { orders: number; items: number };
  return {
    stock: Object.fromEntries(stock.rows.map((r) => [r.name, r.quantity])),
    orders: row.orders,
    orderItems: row.items,
  };
}

/** Back to the seeded stall: default stock only, no orders. */
export async function resetDatabase(pool: pg.Pool): Promise<void> {
  await pool.query("TRUNCATE order_items, orders");
  await pool.query("DELETE FROM ingredients");
  await pool.query(
    "INSERT INTO ingredients (name, quantity) SELECT * FROM unnest($1::text[], $2::int[])",
    [Object.keys(DEFAULT_STOCK), Object.values(DEFAULT_STOCK)],
  );
}

export function isProblem(reply: Reply): boolean {
  const type = String(reply.headers["content-type"] ?? "");
  if (!type.startsWith("application/problem+json")) return false;
  const body = JSON.parse(reply.text) as { status?: unknown; title?: unknown; type?: unknown };
  return (
    body.status === reply.status && typeof body.title === "string" && typeof body.type === "string"
  );
}

export interface BadInputCase {
  name: string;
  status: number;
  send: (agent: request.Agent) => request.Test;
}

/** What a bad-input table runs against: the shared app, and the state no case may change. */
export interface BadInputTarget {
  url: string;
  pool: pg.Pool;
  baseline: Snapshot;
}

/**
 * For a file of bad-input tables: the app with something to lose (an order on record, stock that
 * is not all defaults), never reset between cases, and its snapshot taken before the first one.
 */
export function useBadInputApp(): BadInputTarget {
  let baseline: Snapshot | undefined;
  const app = useTestApp({
    resetBeforeEach: false,
    setUp: async (app) => {
      await arrange(app.url).order({
        customer: "gita",
        items: [{ ingredient: "cheese", quantity: 1 }],
      });
      await arrange(app.url).setStock({ bread: 6 });
      baseline = await snapshot(app.pool);
    },
  });
  return {
    get url() {
      return app.url;
    },
    get pool() {
      return app.pool;
    },
    get baseline() {
      if (!baseline) throw new Error("useBadInputApp: not set up yet; use it in a test");
      return baseline;
    },
  };
}

/**
 * One test per bad input: the right 4xx, as problem+json, no stack trace, no huge echo of the
 * input, and the database exactly as `baseline` (taken in the file's setUp) says.
 */
export function describeBadInput(
  endpoint: string,
  table: BadInputCase[],
  target: BadInputTarget,
): void {
  describe(`bad input: ${endpoint}`, () => {
    for (const c of table) {
      test(`${c.name} → ${c.status}, problem+json, nothing changed`, async () => {
        const { url, pool, baseline } = target;
        const reply = await act(url).send(c.send);
        assert.equal(reply.status, c.status, reply.text.slice(0, 500));
        assert.ok(
          isProblem(reply),
          `not a problem+json body: ${reply.headers["content-type"]} ${reply.text.slice(0, 200)}`,
        );
        assert.equal(reply.text.includes("    at "), false, "no stack trace");
        const { instance: _path, ...rest } = JSON.parse(reply.text) as Record<string, unknown>;
        assert.ok(
          JSON.stringify(rest).length < 4096,
          "the problem does not echo a huge input back",
        );
        assert.deepEqual(await snapshot(pool), baseline);
      });
    }
  });
}

/** Polls `check` until it returns something other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ---------- GET /events ----------

/** Streams a test forgot to close are closed when its file ends. */
const openStreams = new Set<EventStream>();
after(() => {
  for (const s of openStreams) s.close();
});

export interface SseEvent {
  event: string;
  data: string;
}

export interface EventStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: SseEvent[];
  comments: string[];
  ended: Promise<void>;
  /** The first event (at or after index `from`) that matches, waiting for it if need be. */
  next(match: (e: SseEvent) => boolean, from?: number): Promise<SseEvent>;
  close(): void;
}

/** A minimal EventSource: enough of the text/event-stream format to check the contract. */
export function openEvents(url: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/events`, { timeout: 10_000 }, (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      let buffer = "";
      const ended = new Promise<void>((done) => res.once("close", () => done()));
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = { event: "message", data: [] as string[] };
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else if (line.startsWith("event: ")) fields.event = line.slice(7);
            else if (line.startsWith("data: ")) fields.data.push(line.slice(6));
          }
          if (fields.data.length > 0)
            events.push({ event: fields.event, data: fields.data.join("\n") });
        }
      });
      const stream: EventStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        comments,
        ended,
        next: (match, from = 0) =>
          eventually("a matching event", async () => events.slice(from).find(match)),
        close: () => req.destroy(),
      };
      openStreams.add(stream);
      ended.then(() => openStreams.delete(stream));
      resolve(stream);
    });
    req.once("error", reject);
    req.once("timeout", () => req.destroy(new Error("no answer from GET /events")));
  });
}

/** Matches a `stock` event whose data passes `check`. */
export const stockEvent =
  (check: (stock: Record<string, number>) => boolean) =>
  (e: SseEvent): boolean =>
    e.event === "stock" && check(JSON.parse(e.data) as Record<string, number>);
