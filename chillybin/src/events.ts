/**
 * GET /events — Server-Sent Events: the whole stock on connect, then after every change made by
 * any chillybin instance another `stock` event, and a `pick` event for every pick (v1 or v2).
 * jafflr's stall page subscribes to this once per jafflr, so the contract is exactly:
 *
 *   event: stock   data: {"bread":10,"cheese":9,…}
 *   event: pick    data: {"via":"v1"|"v2","items":[{"ingredient","quantity"}],"customer"?,"orderId"?}
 *   : heartbeat    (a comment, every 15 s, so proxies keep the connection open)
 */
import type { Express, Response } from "express";
import type pg from "pg";
import { HttpProblem, type Lifecycle, methodNotAllowed } from "tpi";
import { listStock } from "./stock";
import type { FeedEvent, StockFeed } from "./stock-feed";

export interface EventsOptions {
  pool: pg.Pool;
  feed: StockFeed;
  lifecycle: Lifecycle;
  /** Streams open at once; one more gets a 503 problem (default 100). */
  maxStreams?: number;
  heartbeatMs?: number;
}

/** A client that has not read this much is not reading: end its stream rather than buffer more. */
const MAX_UNREAD_BYTES = 1024 * 1024;

export function mountEvents(app: Express, opts: EventsOptions): void {
  const { pool, feed, lifecycle } = opts;
  const maxStreams = opts.maxStreams ?? 100;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const streams = new Set<Response>();
  let heartbeat: NodeJS.Timeout | undefined;

  // One heartbeat for all streams, running only while any is open.
  const startHeartbeat = () => {
    heartbeat = setInterval(() => {
      for (const res of streams) send(res, ": heartbeat\n\n");
    }, heartbeatMs);
    heartbeat.unref();
  };
  const stopHeartbeat = () => {
    clearInterval(heartbeat);
    heartbeat = undefined;
  };
  // The drain waits for every connection to close: open streams end as soon as it begins.
  lifecycle.onShutdown(() => {
    for (const res of streams) res.end();
  });

  const send = (res: Response, chunk: string) => {
    if (res.writableLength > MAX_UNREAD_BYTES) res.end();
    else res.write(chunk);
  };

  app.get("/events", async (req, res) => {
    if (lifecycle.shuttingDown || streams.size >= maxStreams) {
      throw new HttpProblem(503, "Service Unavailable", {
        detail: lifecycle.shuttingDown
          ? "This instance is shutting down; reconnect to get another one."
          : `Too many event streams are open here (at most ${maxStreams}); retry shortly.`,
        headers: { "Retry-After": "2" },
      });
    }
    // Before any header is sent, so a database outage is still a 503 problem.
    const stock = feed.currentJson() ?? JSON.stringify(await listStock(pool));
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      // Tells nginx-style proxies not to buffer the stream.
      "X-Accel-Buffering": "no",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    res.write(`event: stock\ndata: ${stock}\n\n`);
    streams.add(res);
    if (streams.size === 1) startHeartbeat();
    const unsubscribe = feed.subscribe((event: FeedEvent) => {
      send(res, `event: ${event.type}\ndata: ${event.json}\n\n`);
    });
    res.once("close", () => {
      unsubscribe();
      streams.delete(res);
      if (streams.size === 0) stopHeartbeat();
    });
  });
  app.all("/events", methodNotAllowed(["GET"]));
}
