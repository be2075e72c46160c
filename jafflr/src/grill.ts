import { setTimeout as sleep } from "node:timers/promises";
import { grillBusy } from "./problems";

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

interface Waiter {
  grant: () => void;
}

/**
 * The grill: a fixed number of slots with a bounded FIFO queue in front. An order reserves its
 * place here *before* picking, so an order the grill refuses never takes anything from chillybin.
 */
export class Grill {
  readonly slots: number;
  readonly queueLimit: number;
  private readonly timeScale: number;
  private busy = 0;
  private readonly queue: Waiter[] = [];

  constructor(opts: GrillOptions) {
    this.slots = opts.slots;
    this.queueLimit = opts.queue;
    this.timeScale = opts.timeScale;
  }

  /** Orders holding a slot (picking or cooking). */
  get toasting(): number {
    return this.busy;
  }

  /** Orders queued for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Resolves with a slot in arrival order. Throws a 503 problem at once when the queue is full.
   * Aborting `signal` (the client went away) leaves the queue without ever getting a slot.
   */
  reserve(signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.busy < this.slots && this.queue.length === 0) {
      this.busy++;
      return Promise.resolve(this.slot());
    }
    if (this.queue.length >= this.queueLimit) {
      return Promise.reject(
        grillBusy(
          `All ${this.slots} grill slots are busy and ${this.queue.length} orders are waiting; try again shortly.`,
          this.retryAfterSeconds(),
        ),
      );
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(this.slot());
        },
      };
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Cook time in ms for a doneness at this grill's time scale. */
  cookMs(doneness: Doneness): number {
    return COOK_SECONDS[doneness] * 1000 * this.timeScale;
  }

  private slot(): Slot {
    let released = false;
    return {
      cook: async (doneness) => {
        const ms = this.cookMs(doneness);
        if (ms > 0) await sleep(ms);
      },
      release: () => {
        if (released) return;
        released = true;
        const next = this.queue.shift();
        // The slot passes straight to the next waiter, so a newcomer cannot jump the queue.
        if (next) next.grant();
        else this.busy--;
      },
    };
  }

  /** A rough wait: the queue ahead, drained `slots` at a time at a medium cook each. */
  private retryAfterSeconds(): number {
    const rounds = Math.ceil((this.queue.length + 1) / this.slots);
    return Math.max(1, Math.ceil((rounds * this.cookMs("medium")) / 1000));
  }
}
