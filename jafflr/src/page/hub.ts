import type { IncomingMessage, ServerResponse } from "node:http";
import { createChannel, createSession } from "better-sse";
import { HttpProblem, promClient } from "tpi";
import type { AppDeps } from "../app";
import type { ToastieOutcome } from "../toastie";
import { type Stock, type Via, watchChillybin } from "./upstream";

export type { Stock };
export type MeterPoint = { t: number } & Record<Via, number>;
/** What GET /stall/events sends first; every later event carries one of its parts. */
export interface Snapshot {
  grill: { slots: number; toasting: number; waiting: number; queue: number };
  stock: Stock | null;
  /** Whether jafflr hears chillybin's events (stock is stale while not). */
  cold: { connected: boolean; reason?: string };
  toasties: ToastieOutcome[];
  meter: { windowSeconds: number; points: MeterPoint[] };
}

const RECENT_TOASTIES = 20;
const WINDOW = 300; // the foxtrot meter's seconds, one point (picks by dialect) each
/** Grill changes are noticed within this; the meter ticks on whole seconds. */
const TICK_MS = 200;
/** A page that reads this far behind is cut off; it reconnects and catches up from a snapshot. */
const MAX_BUFFERED_BYTES = 256 * 1024;
const CONNECTING = { connected: false, reason: "connecting to chillybin" };
const epochSecond = () => Math.floor(Date.now() / 1000);

/** What every open stall page sees, kept once per jafflr, and the pages' streams (one channel).
 * The watch and the timer run only while a page is open: an unwatched jafflr costs chillybin nothing. */
export function stallHub({ config, logger, lifecycle, grill, metrics, onToastie }: AppDeps) {
  const channel = createChannel<Record<string, never>, { res: ServerResponse }>();
  const recent: ToastieOutcome[] = [];
  const picks = new Map<number, MeterPoint>();
  let stock: Stock | null = null;
  let cold: Snapshot["cold"] = CONNECTING;
  let [stopWatch, timer]: [(() => void)?, NodeJS.Timeout?] = [];
  let [grillKey, sentUpTo] = ["", 0];

  const grillState = () => {
    const { slots, toasting, waiting, queueLimit: queue } = grill;
    return { slots, toasting, waiting, queue };
  };
  const at = (t: number): MeterPoint => picks.get(t) ?? { t, v1: 0, v2: 0 };
  const send = (event: string, data: unknown) =>
    channel.broadcast(data, event, {
      filter: ({ state: { res } }) => {
        if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
        return !res.destroyed;
      },
    });

  const registers = [metrics.registry];
  const gauge = (name: string, help: string) => new promClient.Gauge({ name, help, registers });
  const streams = gauge("stall_page_streams", "Stall pages connected to GET /stall/events.");
  const watching = gauge(
    "stall_chillybin_watching",
    "1 while jafflr watches chillybin's GET /events for its stall pages (one watch, shared).",
  );
  const connects = new promClient.Counter({
    name: "stall_chillybin_watch_connects_total",
    help: "Times the shared watch of chillybin's events connected (first time and reconnects).",
    registers,
  });

  const tick = () => {
    const now = grillState();
    const key = JSON.stringify(now);
    if (key !== grillKey) send("grill", now);
    grillKey = key;
    // Every second that ended since the last tick, so a slow event loop skips no point.
    const second = epochSecond();
    for (let t = Math.max(sentUpTo, second - WINDOW); t < second; t++) send("meter", at(t));
    for (const t of picks.keys()) if (t <= second - WINDOW) picks.delete(t);
    sentUpTo = second;
  };

  channel.on("session-registered", () => {
    streams.set(channel.sessionCount);
    if (channel.sessionCount !== 1) return;
    watching.set(1);
    [grillKey, sentUpTo, cold] = [JSON.stringify(grillState()), epochSecond(), CONNECTING];
    timer = setInterval(tick, TICK_MS);
    stopWatch = watchChillybin({
      chillybinUrl: config.CHILLYBIN_URL,
      logger,
      stock: (next) => {
        stock = next;
        send("stock", next);
      },
      pick: (via) => {
        const t = epochSecond();
        picks.set(t, { ...at(t), [via]: at(t)[via] + 1 });
      },
      status: (connected, reason) => {
        if (connected) connects.inc();
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
      recent.unshift(outcome);
      recent.length = Math.min(recent.length, RECENT_TOASTIES);
      send("toastie", outcome);
      onToastie?.(outcome);
    },
    async open(req: IncomingMessage, res: ServerResponse) {
      if (lifecycle.shuttingDown) {
        throw new HttpProblem(503, "Service Unavailable", {
          detail: "jafflr is shutting down; the page connects again shortly.",
          headers: { "Retry-After": "1" },
        });
      }
      // retry: EventSource reconnects after 1 s when a stream ends (e.g. this jafflr drained).
      const headers = { "Cache-Control": "no-store" };
      const session = await createSession(req, res, { retry: 1000, headers, state: { res } });
      channel.register(session);
      const from = epochSecond() - WINDOW;
      const points = Array.from({ length: WINDOW }, (_, i) => at(from + i));
      const meter = { windowSeconds: WINDOW, points };
      const snapshot: Snapshot = { grill: grillState(), stock, cold, toasties: recent, meter };
      session.push(snapshot, "snapshot");
    },
  };
}
