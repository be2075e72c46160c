/** GET /events — Server-Sent Events, the contract jafflr's stall page relies on (see the route). */
import { createChannel, createEventBuffer, createSession, type Session } from "better-sse";
import type { RequestHandler, Response } from "express";
import { HttpProblem, z } from "tpi";
import type { AppDeps } from "./app";
import { BlankProblem, header, registry, route, unavailable } from "./problems";
import { listStock } from "./stock";

/** A client that has not read this much is not reading: end its stream rather than buffer more. */
const MAX_UNREAD_BYTES = 1024 * 1024;
const HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-store",
  "X-Accel-Buffering": "no", // nginx-style proxies: do not buffer the stream
};

type Options = Pick<AppDeps, "pool" | "feed" | "lifecycle"> & NonNullable<AppDeps["events"]>;

/** The GET handler; the feed, the heartbeat and the drain are set up once, here. */
export function streamEvents(opts: Options): RequestHandler {
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

  return async (req, res) => {
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
  };
}

function reading(session: Session<{ res: Response }>): boolean {
  if (session.state.res.writableLength <= MAX_UNREAD_BYTES) return true;
  session.state.res.end();
  return false;
}

const PickEvent = z.object({
  via: z.enum(["v1", "v2"]),
  items: z.array(z.object({ ingredient: z.string(), quantity: z.number().int() })),
  customer: z.string().optional(),
  orderId: z.string().optional(),
});
registry.register("PickEvent", PickEvent.openapi({ description: "The data of `event: pick`." }));
route("GET /events", "streamEvents", "Server-Sent Events: the stock, its changes, each pick.", {
  description:
    "`event: stock` (data: the Stock), `event: pick` (data: a PickEvent), a `: heartbeat` comment every 15 s; the stream ends when the instance drains.",
  responses: {
    200: {
      description: "The stream.",
      content: { "text/event-stream": { schema: { type: "string" } } },
      headers: { "Cache-Control": header("no-store", { const: "no-store" }) },
    },
    503: unavailable("Too many streams here, draining, or no database.", BlankProblem),
  },
});
