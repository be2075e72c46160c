/**
 * GET /events — Server-Sent Events, the contract jafflr's stall page relies on: `event: stock`
 * (the whole stock) on connect and after every change by any instance, `event: pick` for every
 * pick (v1 or v2), and a `: heartbeat` comment every 15 s so proxies keep the connection open.
 */
import { createChannel, createEventBuffer, createSession, type Session } from "better-sse";
import type { Express, Response } from "express";
import type pg from "pg";
import { HttpProblem, type Lifecycle, methodNotAllowed, z } from "tpi";
import { BlankProblem, header, registry, unavailable } from "./problems";
import { listStock } from "./stock";
import type { StockFeed } from "./stock-feed";

/** A client that has not read this much is not reading: end its stream rather than buffer more. */
const MAX_UNREAD_BYTES = 1024 * 1024;
const HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-store",
  "X-Accel-Buffering": "no", // nginx-style proxies: do not buffer the stream
};

export function mountEvents(
  app: Express,
  opts: {
    pool: pg.Pool;
    feed: StockFeed;
    lifecycle: Lifecycle;
    maxStreams?: number;
    heartbeatMs?: number;
  },
): void {
  const { pool, feed, lifecycle, maxStreams = 100, heartbeatMs = 15_000 } = opts;
  const channel = createChannel<Record<string, never>, { res: Response }>();
  feed.onEvent = (type, json) => channel.broadcast(json, type, { filter: reading });
  const heartbeat = createEventBuffer().comment(" heartbeat").dispatch();
  setInterval(() => {
    for (const session of channel.activeSessions) if (reading(session)) session.batch(heartbeat);
  }, heartbeatMs).unref();
  // The drain waits for every connection to close: open streams end as soon as it begins.
  lifecycle.onShutdown(() => {
    for (const session of channel.activeSessions) session.state.res.end();
  });

  app.get("/events", async (req, res) => {
    if (lifecycle.shuttingDown || channel.sessionCount >= maxStreams) {
      throw new HttpProblem(503, "Service Unavailable", {
        detail: lifecycle.shuttingDown
          ? "This instance is shutting down; reconnect to get another one."
          : `Too many event streams are open here (at most ${maxStreams}); retry shortly.`,
        headers: { "Retry-After": "2" },
      });
    }
    // Before any header is sent, so a database outage is still a 503 problem.
    const stock = feed.currentJson() ?? JSON.stringify(await listStock(pool));
    if (req.method === "HEAD") return void res.writeHead(200, HEADERS).end();
    const session = await createSession(req, res, {
      headers: HEADERS,
      retry: null,
      keepAlive: null,
      serializer: String, // the feed's data is JSON already, serialised once for every stream
      state: { res },
    });
    if (!session.isConnected) return; // gone before its first event
    session.push(feed.currentJson() ?? stock, "stock");
    channel.register(session);
  });
  app.all("/events", methodNotAllowed(["GET"]));
}

function reading(session: Session<{ res: Response }>): boolean {
  if (session.state.res.writableLength <= MAX_UNREAD_BYTES) return true;
  session.state.res.end();
  return false;
}

registry.registerPath({
  method: "get",
  path: "/events",
  operationId: "streamEvents",
  summary:
    "Server-Sent Events: the stock on connect and after every change (any instance), and every pick.",
  description:
    "`event: stock` with data = the Stock object; `event: pick` with data = a PickEvent. A comment (`: heartbeat`) every 15 s. The stream ends when the instance drains; reconnect.",
  responses: {
    200: {
      description: "The stream.",
      content: { "text/event-stream": { schema: { type: "string" } } },
      headers: { "Cache-Control": header("no-store", { const: "no-store" }) },
    },
    503: unavailable(
      "Too many streams open on this instance, it is shutting down, or the database cannot be reached.",
      BlankProblem,
    ),
  },
});
registry.register(
  "PickEvent",
  z
    .object({
      via: z.enum(["v1", "v2"]),
      items: z.array(z.object({ ingredient: z.string(), quantity: z.number().int() })),
      customer: z.string().optional(),
      orderId: z.string().optional(),
    })
    .openapi({ description: "The data of an `event: pick` on GET /events." }),
);
