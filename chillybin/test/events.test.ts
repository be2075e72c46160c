/**
 * GET /events: the Server-Sent Events contract jafflr's stall page relies on — the stock on
 * connect, a stock event after every change by any instance, a pick event per pick, heartbeats,
 * a cap on open streams, and streams that end when the service drains.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { serve } from "tpi";
import { createApp } from "../src/app";
import { DEFAULT_STOCK } from "../src/stock";
import {
  appDeps,
  assertProblem,
  eventually,
  feedLive,
  get,
  ok,
  openEvents,
  post,
  startApp,
  stockEvent,
  useTestApp,
} from "./helpers";

const app = useTestApp({ events: { maxStreams: 3, heartbeatMs: 50 } });

test("on connect: text/event-stream, not cached, the whole stock; then heartbeat comments", async () => {
  const stream = await openEvents(app.url);
  try {
    assert.equal(stream.status, 200);
    assert.match(String(stream.headers["content-type"]), /^text\/event-stream/);
    assert.equal(stream.headers["cache-control"], "no-store");
    const first = await stream.next(() => true);
    assert.deepEqual([first.event, JSON.parse(first.data)], ["stock", DEFAULT_STOCK]);
    await eventually("a heartbeat", async () => stream.comments.includes("heartbeat") || undefined);
  } finally {
    stream.close();
  }
});

test("picks and restocks made through ANY instance: pick events and the new stock; refusals: none", async () => {
  const other = await startApp(app.db.url);
  const stream = await openEvents(app.url);
  try {
    await stream.next(() => true);
    await eventually("the other instance's feed", () => feedLive(other.url));
    const items = [
      { ingredient: "bread", quantity: 1 },
      { ingredient: "cheese", quantity: 2 },
    ];
    const order = await ok<{ id: string }>(
      post(other.url, "/v2/pick", { customer: "gita 👩‍🍳", items: [...items].reverse() }),
    );
    const pick = await stream.next((e) => e.event === "pick");
    assert.deepEqual(JSON.parse(pick.data), {
      via: "v2",
      items,
      customer: "gita 👩‍🍳",
      orderId: order.id,
    });
    await stream.next(stockEvent((s) => s.cheese === 8 && s.bread === 9));

    const restocked = stream.events.length;
    await ok(post(other.url, "/restock", { ham: 50, truffle: 2 }));
    const restock = stockEvent((s) => s.ham === 50 && s.truffle === 2);
    await stream.next(restock, restocked);
    // A refused order announces nothing: the restock after it is the next event.
    const refused = stream.events.length;
    const short = { customer: "gita", ingredient: "truffle", quantity: 3 };
    assertProblem(await post(app.url, "/v2/pick", short), 409);
    await ok(post(app.url, "/restock", { truffle: 1 }));
    const marker = stockEvent((s) => s.truffle === 1);
    await stream.next(marker, refused);
    const since = stream.events.slice(restocked).map((e) => e.event);
    assert.ok(
      since.every((e) => e === "stock"),
      since.join(),
    );
  } finally {
    stream.close();
    await other.close();
  }
});

test("at most maxStreams at once: one more is a 503 problem with Retry-After", async () => {
  const open = await Promise.all([1, 2, 3].map(() => openEvents(app.url)));
  try {
    assert.ok(open.every((s) => s.status === 200));
    const refused = await get(app.url, "/events");
    assertProblem(refused, 503);
    assert.match(refused.headers["retry-after"] ?? "", /^\d+$/);
  } finally {
    for (const s of open) s.close();
  }
  // Closed streams free their places.
  await eventually("a free place", async () => {
    const again = await openEvents(app.url);
    again.close();
    return again.status === 200 || undefined;
  });
});

test("draining on shutdown ends open streams and does not wait for them", async () => {
  const deps = appDeps(app.db.url, { poolMax: 2 });
  const serving = await serve(createApp(deps), {
    config: { HOST: "127.0.0.1", PORT: 0, SHUTDOWN_TIMEOUT_MS: 10_000, SHUTDOWN_DELAY_MS: 0 },
    logger: deps.logger,
    lifecycle: deps.lifecycle,
    handleSignals: false,
    resources: [
      { name: "stock feed", close: () => deps.feed.close() },
      { name: "db pool", close: () => deps.pool.end() },
    ],
  });
  const stream = await openEvents(serving.url);
  await stream.next(() => true);
  assert.equal(await serving.shutdown("test"), 0, "drained before the deadline, streams and all");
  await stream.ended;
});
