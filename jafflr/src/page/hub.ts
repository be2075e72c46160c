import type { IncomingMessage, ServerResponse } from "node:http";
import { createChannel, createSession } from "better-sse";
import { HttpProblem, promClient } from "tpi";
import type { AppDeps } from "../app";
import type { ToastieOutcome } from "../toastie";
import { Stock, watchChillybin } from "./upstream";

export type { Stock };
export type MeterPoint = { t: number } & Record<"v1" | "v2", number>;
/** What GET /stall/events sends first, and what GET / renders; each later event is one of its parts. */
export interface Snapshot {
  grill: { slots: number; toasting: number; waiting: number; queue: number };
  stock: Stock | null;
  /** Whether jafflr hears chillybin's events (stock is stale while not). */
  cold: { connected: boolean; reason?: string };
  toasties: ToastieOutcome[];
  meter: { windowSeconds: number; bucketSeconds: number; points: MeterPoint[] };
}

const RECENT_TOASTIES = 20;
/** The foxtrot meter: toasties done, by how they were picked, per BUCKET seconds for WINDOW. */
const [WINDOW, BUCKET] = [600, 10];
/** Grill changes are noticed within this. */
const TICK_MS = 200;
/** A page that reads this far behind is cut off; it reconnects and catches up from a snapshot. */
const MAX_BUFFERED_BYTES = 64 * 1024;
const CONNECTING = { connected: false, reason: "connecting to chillybin" };
const bucketNow = () => Math.floor(Date.now() / 1000 / BUCKET) * BUCKET;

/** What every open stall page sees, kept once per jafflr, and the pages' streams (one channel).
 * The watch and the timer run only while a page is open: an unwatched jafflr costs chillybin
 * nothing. The meter and the recent toasties are kept always, so a page opens on the last minutes. */
export function stallHub(deps: AppDeps) {
  const { config, logger, lifecycle, grill, metrics, chillybin, onToastie } = deps;
  const maxStreams = config.STALL_STREAMS_MAX ?? 100;
  const channel = createChannel<Record<string, never>, { res: ServerResponse }>();
  const toasties: ToastieOutcome[] = [];
  const counts = new Map<number, MeterPoint>();
  let stock: Stock | null = null;
  let cold: Snapshot["cold"] = CONNECTING;
  let [stopWatch, timer]: [(() => void)?, NodeJS.Timeout?] = [];
  let [grillKey, sentUpTo, opening] = ["", 0, 0];

  const grillState = () => {
    const { slots, toasting, waiting, queueLimit: queue } = grill;
    return { slots, toasting, waiting, queue };
  };
  const at = (t: number): MeterPoint => counts.get(t) ?? { t, v1: 0, v2: 0 };
  // Each event's JSON is made once for every page (the sessions' serializer is String).
  const send = (event: string, data: unknown) =>
    channel.broadcast(JSON.stringify(data), event, {
      filter: ({ state: { res } }) => {
        if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
        return !res.destroyed;
      },
    });
  const meter = (): Snapshot["meter"] => {
    const from = bucketNow() - WINDOW + BUCKET;
    const points = Array.from({ length: WINDOW / BUCKET }, (_, i) => at(from + i * BUCKET));
    return { windowSeconds: WINDOW, bucketSeconds: BUCKET, points };
  };
  const snapshot = (): Snapshot => ({ grill: grillState(), stock, cold, toasties, meter: meter() });

  const registers = [metrics.registry];
  const gauge = (name: string, help: string) => new promClient.Gauge({ name, help, registers });
  const streams = gauge("stall_page_streams", "Stall pages connected to GET /stall/events.");
  const watching = gauge(
    "stall_chillybin_watching",
    "1 while jafflr watches chillybin's GET /events for its stall pages (one watch, shared).",
  );

  const tick = () => {
    const now = grillState();
    const key = JSON.stringify(now);
    if (key !== grillKey) send("grill", now);
    grillKey = key;
    if (sentUpTo !== bucketNow()) send("meter", meter()); // the meter moves on every 10 s
    sentUpTo = bucketNow();
  };

  channel.on("session-registered", () => {
    streams.set(channel.sessionCount);
    if (channel.sessionCount !== 1) return;
    watching.set(1);
    [grillKey, sentUpTo, cold] = [JSON.stringify(grillState()), bucketNow(), CONNECTING];
    timer = setInterval(tick, TICK_MS);
    stopWatch = watchChillybin({
      chillybinUrl: config.CHILLYBIN_URL,
      logger,
      stock: (next) => {
        stock = next;
        send("stock", next);
      },
      status: (connected, reason) => {
        cold = connected ? { connected } : { connected, reason };
        send("cold", cold);
      },
    });
  });
  // The last page left: no timer, no watch, no stale stock kept for the next page.
  channel.on("session-deregistered", () => {
    streams.set(channel.sessionCount);
    if (channel.sessionCount > 0) return;
    watching.set(0);
    clearInterval(timer);
    stopWatch?.();
    [stopWatch, stock] = [undefined, null];
  });
  // Ended, not destroyed: the page sees a clean end and reconnects (to another jafflr); the
  // drain waits for every connection to close, so they end as soon as it begins.
  lifecycle.onShutdown(() => {
    for (const session of channel.activeSessions) session.state.res.end();
  });

  return {
    /** Every toastie this jafflr answered, done or failed; the app's own onToastie hears it too. */
    toastie(outcome: ToastieOutcome) {
      toasties.unshift(outcome);
      toasties.length = Math.min(toasties.length, RECENT_TOASTIES);
      send("toastie", outcome);
      const via = outcome.status === 200 && outcome.pickedVia;
      if (via) {
        // Counted as toasties_total counts them: once each, whichever way it was picked.
        const t = bucketNow();
        counts.set(t, { ...at(t), [via]: at(t)[via] + 1 });
        for (const old of counts.keys()) if (old <= t - WINDOW) counts.delete(old);
        send("meter", meter());
      }
      onToastie?.(outcome);
    },
    /** For GET /: with no page open there is no watch, so the stock is asked for once. */
    async view(): Promise<Snapshot> {
      if (stock) return snapshot();
      const reply = await chillybin.call({ method: "GET", path: "/" }, 1_000);
      const fresh = reply.answered ? Stock.safeParse(reply.answer.body) : undefined;
      if (fresh?.success) return { ...snapshot(), stock: fresh.data, cold: { connected: true } };
      const reason = reply.answered
        ? `GET / answered ${reply.answer.status}`
        : reply.failure.reason;
      return { ...snapshot(), cold: { connected: false, reason } };
    },
    async open(req: IncomingMessage, res: ServerResponse) {
      if (lifecycle.shuttingDown || channel.sessionCount + opening >= maxStreams) {
        // As chillybin's GET /events: the page retries after a while, on this or another jafflr.
        throw new HttpProblem(503, "Service Unavailable", {
          detail: lifecycle.shuttingDown
            ? "jafflr is shutting down; the page connects again shortly."
            : `Too many stall pages are open here (at most ${maxStreams}); the page retries shortly.`,
          // Closed after answering: a flood of clients that never read must not keep sockets.
          headers: { "Retry-After": lifecycle.shuttingDown ? "1" : "2", Connection: "close" },
        });
      }
      // retry: EventSource reconnects after 1 s when a stream ends (e.g. this jafflr drained).
      const headers = { "Cache-Control": "no-store" };
      const options = { retry: 1000, headers, serializer: String, state: { res } };
      opening++; // streams being set up count too: a burst of opens must not overshoot
      const session = await createSession(req, res, options).finally(() => opening--);
      channel.register(session);
      session.push(JSON.stringify(snapshot()), "snapshot");
    },
  };
}
