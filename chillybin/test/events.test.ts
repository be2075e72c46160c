/**
 * GET /events: the Server-Sent Events contract jafflr's stall page relies on — the stock on
 * connect, a stock event after every change by any instance, a pick event per pick (v1 and v2),
 * heartbeats, a cap on open streams, and streams that end when the service drains.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMetrics, Lifecycle, serve } from "tpi";
import { createApp } from "../src/app";
import { createPool } from "../src/db";
import { DEFAULT_STOCK } from "../src/stock";
import { StockFeed } from "../src/stock-feed";
import {
  act,
  arrange,
  eventually,
  isProblem,
  openEvents,
  type SseEvent,
  silentLogger,
  startApp,
  stockEvent,
  type TestApp,
  useTestApp,
} from "./helpers";

const app = useTestApp({ events: { maxStreams: 3, heartbeatMs: 50 } });

const stockData = (e: SseEvent) => JSON.parse(e.data) as Record<string, number>;

test("on connect: text/event-stream, not cached, and the whole stock", async () => {
  const stream = await openEvents(app.url);
  try {
    assert.equal(stream.status, 200);
    assert.match(String(stream.headers["content-type"]), /^text\/event-stream/);
    assert.equal(stream.headers["cache-control"], "no-store");
    const first = await stream.next(() => true);
    assert.equal(first.event, "stock");
    assert.deepEqual(stockData(first), DEFAULT_STOCK);
  } finally {
    stream.close();
  }
});

test("picks and restocks made through ANY instance: pick events and the new stock", async () => {
  const other: TestApp = await startApp(app.db.url);
  const stream = await openEvents(app.url);
  try {
    await stream.next(() => true);
    await eventually("the other instance's feed", async () =>
      /^chillybin_stock_feed_connected(\{[^}]*\})? 1$/m.test(
        (await act(other.url).get("/metrics")).text,
      )
        ? true
        : undefined,
    );

    // v2, through the other instance
    const order = await arrange(other.url).order({
      customer: "gita 👩‍🍳",
      items: [
        { ingredient: "cheese", quantity: 2 },
        { ingredient: "bread", quantity: 1 },
      ],
    });
    const v2 = await stream.next((e) => e.event === "pick");
    assert.deepEqual(JSON.parse(v2.data), {
      via: "v2",
      items: [
        { ingredient: "bread", quantity: 1 },
        { ingredient: "cheese", quantity: 2 },
      ],
      customer: "gita 👩‍🍳",
      orderId: order.id,
    });
    await stream.next(stockEvent((s) => s.cheese === 8 && s.bread === 9));

    // a restock: the stock, and no pick
    const before = stream.events.length;
    await arrange(other.url).setStock({ ham: 50, truffle: 2 });
    await stream.next(
      stockEvent((s) => s.ham === 50 && s.truffle === 2),
      before,
    );
    assert.equal(stream.events.slice(before).filter((e) => e.event === "pick").length, 0);

    // refused orders change nothing and announce nothing
    const refused = stream.events.length;
    const short = await act(app.url).postJson("/v2/pick", {
      customer: "gita",
      ingredient: "truffle",
      quantity: 3,
    });
    assert.equal(short.status, 409);
    await arrange(app.url).setStock({ truffle: 1 }); // a marker that arrives after anything the refusal could have sent
    await stream.next(
      stockEvent((s) => s.truffle === 1),
      refused,
    );
    assert.deepEqual(
      stream.events.slice(refused).map((e) => e.event),
      ["stock"],
    );
  } finally {
    stream.close();
    await other.close();
  }
});

test("a heartbeat comment keeps an idle stream open", async () => {
  const stream = await openEvents(app.url);
  try {
    await eventually("a heartbeat", async () =>
      stream.comments.includes("heartbeat") ? true : undefined,
    );
  } finally {
    stream.close();
  }
});

test("at most maxStreams at once: one more is a 503 problem with Retry-After", async () => {
  const open = await Promise.all([1, 2, 3].map(() => openEvents(app.url)));
  try {
    assert.deepEqual(
      open.map((s) => s.status),
      [200, 200, 200],
    );
    const refused = await act(app.url).get("/events");
    assert.equal(refused.status, 503);
    assert.ok(isProblem(refused));
    assert.match(String(refused.headers["retry-after"]), /^\d+$/);
  } finally {
    for (const s of open) s.close();
  }
  // Closed streams free their places.
  await eventually("a free place", async () => {
    const again = await openEvents(app.url);
    again.close();
    return again.status === 200 ? true : undefined;
  });
});

test("draining on shutdown ends open streams and does not wait for them", async () => {
  const settings = {
    DATABASE_URL: app.db.url,
    PG_POOL_MAX: 2,
    PG_CONNECT_TIMEOUT_MS: 30_000,
    PG_STATEMENT_TIMEOUT_MS: 30_000,
  };
  const pool = createPool(settings, silentLogger);
  const metrics = createMetrics({ service: "chillybin", version: "test" });
  const feed = new StockFeed({ settings, logger: silentLogger, metrics });
  feed.start();
  const lifecycle = new Lifecycle();
  const service = createApp({
    pool,
    feed,
    logger: silentLogger,
    metrics,
    lifecycle,
    version: "test",
  });
  const serving = await serve(service, {
    config: { HOST: "127.0.0.1", PORT: 0, SHUTDOWN_TIMEOUT_MS: 10_000, SHUTDOWN_DELAY_MS: 0 },
    logger: silentLogger,
    lifecycle,
    handleSignals: false,
    resources: [
      { name: "stock feed", close: () => feed.close() },
      { name: "db pool", close: () => pool.end() },
    ],
  });
  const stream = await openEvents(serving.url);
  await stream.next(() => true);
  const code = await serving.shutdown("test");
  assert.equal(code, 0, "drained before the deadline, streams and all");
  await stream.ended;
});
