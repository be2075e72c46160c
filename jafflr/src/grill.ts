import { setTimeout as sleep } from "node:timers/promises";
import { problem } from "./problems";

export const DONENESS = ["light", "medium", "well-done", "burnt"] as const;
export type Doneness = (typeof DONENESS)[number];

/** Seconds on the grill, as the original stall cooked them. */
export const COOK_SECONDS: Record<Doneness, number> = {
  light: 1,
  medium: 2,
  "well-done": 5,
  burnt: 10,
};

export interface GrillOptions {
  slots: number;
  /** Orders allowed to wait for a slot; one more is refused with 503. */
  queue: number;
  /** Multiplies every cook time; 0 cooks instantly (tests, benchmarks). */
  timeScale: number;
}

/** A held grill slot: the order picks and cooks while holding it, then releases it. */
export interface Slot {
  cook(doneness: Doneness): Promise<void>;
  release(): void;
}

/**
 * Fixed slots behind a bounded FIFO queue. An order reserves its place *before* picking, so an
 * order the grill refuses never takes anything from chillybin.
 */
export class Grill {
  readonly slots: number;
  readonly queueLimit: number;
  private busy = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly opts: GrillOptions) {
    this.slots = opts.slots;
    this.queueLimit = opts.queue;
  }

  /** Orders holding a slot (picking or cooking). */
  get toasting(): number {
    return this.busy;
  }

  /** Orders queued for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** A slot in arrival order; a 503 problem when the queue is full; aborting `signal` leaves the queue. */
  async reserve(signal?: AbortSignal): Promise<Slot> {
    signal?.throwIfAborted();
    if (this.busy < this.slots && this.queue.length === 0) {
      this.busy++;
      return this.slot();
    }
    if (this.queue.length >= this.queueLimit) {
      // A rough wait: the queue ahead, drained `slots` at a time at a medium cook each.
      const rounds = Math.ceil((this.queue.length + 1) / this.slots);
      throw problem(
        "grill-busy",
        `All ${this.slots} grill slots are busy and ${this.queue.length} orders are waiting; try again shortly.`,
        { retryAfter: Math.max(1, Math.ceil((rounds * this.cookMs("medium")) / 1000)) },
      );
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.queue.splice(this.queue.indexOf(grant), 1);
        reject(signal?.reason);
      };
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(grant);
    });
    return this.slot();
  }

  /** Cook time in ms for a doneness at this grill's time scale. */
  cookMs(doneness: Doneness): number {
    return COOK_SECONDS[doneness] * 1000 * this.opts.timeScale;
  }

  private slot(): Slot {
    let released = false;
    return {
      cook: async (doneness) => {
        if (this.cookMs(doneness) > 0) await sleep(this.cookMs(doneness));
      },
      release: () => {
        if (released) return;
        released = true;
        // The slot passes straight to the next waiter, so a newcomer cannot jump the queue.
        const next = this.queue.shift();
        if (next) next();
        else this.busy--;
      },
    };
  }
}
