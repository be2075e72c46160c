import type { ServerResponse } from "node:http";
import { HttpProblem, type Lifecycle, type Logger, promClient } from "tpi";
import type { Grill } from "../grill";
import type { ToastieOutcome } from "../toastie";
import { METER_WINDOW_SECONDS, Meter, type MeterPoint } from "./meter";
import { sseEvent } from "./sse-parser";
import { ChillybinWatch, type Stock, type WatchOptions } from "./upstream";

/**
 * What every open stall page sees, kept once per jafflr: the grill, the cold store (from the one
 * shared watch of chillybin's events), the recent toasties and the foxtrot meter; and the pages'
 * event streams (GET /stall/events). The watch and the ticking timer exist only while at least
 * one page is open, so a jafflr nobody looks at costs chillybin nothing.
 */
export interface StallHubDeps {
  chillybinUrl: string;
  logger: Logger;
  lifecycle: Lifecycle;
  grill: Pick<Grill, "slots" | "toasting" | "waiting" | "queueLimit">;
  registry: promClient.Registry;
  /** Overrides for the watch's timeouts and backoff (tests). */
  watch?: Partial<Omit<WatchOptions, "chillybinUrl" | "logger" | "handlers">>;
}

export interface GrillState {
  slots: number;
  toasting: number;
  waiting: number;
  queue: number;
}

export interface ColdState {
  /** Whether jafflr currently hears chillybin's events (stock is stale while not). */
  connected: boolean;
  reason?: string;
}

export interface Snapshot {
  grill: GrillState;
  stock: Stock | null;
  cold: ColdState;
  toasties: ToastieOutcome[];
  meter: { windowSeconds: number; points: MeterPoint[] };
}

export const RECENT_TOASTIES = 20;
/** Grill changes are noticed within this; the meter ticks on whole seconds. */
const TICK_MS = 200;
const HEARTBEAT_MS = 15_000;
/** A page that reads this far behind is cut off; it reconnects and catches up from a snapshot. */
const MAX_BUFFERED_BYTES = 256 * 1024;

export class StallHub {
  private readonly streams = new Set<ServerResponse>();
  private readonly recent: ToastieOutcome[] = [];
  private readonly meter = new Meter();
  private stock: Stock | null = null;
  private cold: ColdState = { connected: false, reason: "connecting to chillybin" };
  private watch: ChillybinWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private grillKey = "";
  private second = 0;
  private lastWrite = 0;
  private readonly watchConnects: promClient.Counter;

  constructor(private readonly deps: StallHubDeps) {
    const hub = this;
    new promClient.Gauge({
      name: "stall_page_streams",
      help: "Stall pages connected to GET /stall/events.",
      registers: [deps.registry],
      collect() {
        this.set(hub.streams.size);
      },
    });
    new promClient.Gauge({
      name: "stall_chillybin_watching",
      help: "1 while jafflr watches chillybin's GET /events for its stall pages (one watch, shared).",
      registers: [deps.registry],
      collect() {
        this.set(hub.watch ? 1 : 0);
      },
    });
    this.watchConnects = new promClient.Counter({
      name: "stall_chillybin_watch_connects_total",
      help: "Times the shared watch of chillybin's events connected (first time and reconnects).",
      registers: [deps.registry],
    });
    // Ended, not destroyed: the page sees a clean end and reconnects (to another jafflr); the
    // drain waits for every connection to close, so they end as soon as it begins.
    deps.lifecycle.onShutdown(() => {
      for (const res of this.streams) res.end();
    });
  }

  /** onToastie: every toastie this jafflr answered, done or failed, newest first. */
  toastie(outcome: ToastieOutcome): void {
    this.recent.unshift(outcome);
    this.recent.length = Math.min(this.recent.length, RECENT_TOASTIES);
    this.broadcast("toastie", outcome);
  }

  snapshot(): Snapshot {
    return {
      grill: this.grillState(),
      stock: this.stock,
      cold: this.cold,
      toasties: [...this.recent],
      meter: { windowSeconds: METER_WINDOW_SECONDS, points: this.meter.series(Date.now()) },
    };
  }

  /** GET /stall/events: a snapshot, then every change, until the page leaves or jafflr drains. */
  open(res: ServerResponse): void {
    if (this.deps.lifecycle.shuttingDown) {
      throw new HttpProblem(503, "Service Unavailable", {
        detail: "jafflr is shutting down; the page connects again shortly.",
        headers: { "Retry-After": "1" },
      });
    }
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      // Proxies such as nginx would otherwise buffer the stream.
      "X-Accel-Buffering": "no",
    });
    const first = this.streams.size === 0;
    this.streams.add(res);
    res.once("close", () => {
      this.streams.delete(res);
      if (this.streams.size === 0) this.sleep();
    });
    if (first) this.wake();
    // retry: EventSource reconnects after 1 s when a stream ends (e.g. this jafflr drained).
    res.write(`retry: 1000\n\n${sseEvent("snapshot", this.snapshot())}`);
  }

  /** Streams open now (tests and the metric). */
  get pages(): number {
    return this.streams.size;
  }

  get watching(): boolean {
    return this.watch !== undefined;
  }

  private wake(): void {
    const { logger } = this.deps;
    this.grillKey = JSON.stringify(this.grillState());
    this.second = Math.floor(Date.now() / 1000);
    this.lastWrite = Date.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.cold = { connected: false, reason: "connecting to chillybin" };
    this.watch = new ChillybinWatch({
      connectTimeoutMs: 2_000,
      ...this.deps.watch,
      chillybinUrl: this.deps.chillybinUrl,
      logger,
      handlers: {
        stock: (stock) => {
          this.stock = stock;
          this.broadcast("stock", stock);
        },
        pick: (pick) => this.meter.add(pick.via, Date.now()),
        status: (connected, reason) => {
          if (connected) this.watchConnects.inc();
          this.cold = connected ? { connected } : { connected, reason };
          this.broadcast("cold", this.cold);
        },
      },
    });
    this.watch.start();
  }

  /** The last page left: no timer, no watch, no stale stock kept for the next page. */
  private sleep(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    const watch = this.watch;
    this.watch = undefined;
    this.stock = null;
    watch?.stop().catch((err) => this.deps.logger.warn({ err }, "stopping the watch failed"));
  }

  private tick(): void {
    const grill = JSON.stringify(this.grillState());
    if (grill !== this.grillKey) {
      this.grillKey = grill;
      this.broadcast("grill", this.grillState());
    }
    const now = Date.now();
    const second = Math.floor(now / 1000);
    // Every second that has ended since the last tick, so a slow event loop skips no point.
    for (let t = Math.max(this.second, second - METER_WINDOW_SECONDS); t < second; t++) {
      this.broadcast("meter", this.meter.at(t));
    }
    this.second = second;
    if (now - this.lastWrite >= HEARTBEAT_MS) this.write(": heartbeat\n\n");
  }

  private grillState(): GrillState {
    const { grill } = this.deps;
    return {
      slots: grill.slots,
      toasting: grill.toasting,
      waiting: grill.waiting,
      queue: grill.queueLimit,
    };
  }

  private broadcast(event: string, data: unknown): void {
    if (this.streams.size > 0) this.write(sseEvent(event, data));
  }

  private write(text: string): void {
    this.lastWrite = Date.now();
    for (const res of this.streams) {
      if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
      else res.write(text);
    }
  }
}
