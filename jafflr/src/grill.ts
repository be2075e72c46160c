import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "./config";
import { problem } from "./problems";

export const DONENESS = ["light", "medium", "well-done", "burnt"] as const;
export type Doneness = (typeof DONENESS)[number];
/** Seconds on the grill, as the original stall cooked them. */
const COOK_SECONDS = { light: 1, medium: 2, "well-done": 5, burnt: 10 };

/** GRILL_QUEUE: orders that may wait for a slot; COOK_TIME_SCALE multiplies cook times (0: instant). */
export type GrillOptions = Pick<Config, "GRILL_SLOTS" | "GRILL_QUEUE" | "COOK_TIME_SCALE">;
export type Slot = Awaited<ReturnType<Grill["reserve"]>>;

/**
 * Fixed slots behind a bounded FIFO queue. An order reserves its place *before* picking, so an
 * order the grill refuses never takes anything from chillybin.
 */
export class Grill {
  readonly slots: number;
  readonly queueLimit: number;
  /** Orders holding a slot (picking or cooking). */
  toasting = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly opts: GrillOptions) {
    [this.slots, this.queueLimit] = [opts.GRILL_SLOTS, opts.GRILL_QUEUE];
  }

  /** Orders queued for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** A slot in arrival order; a 503 problem when the queue is full; aborting `signal` leaves the queue. */
  async reserve(signal?: AbortSignal) {
    signal?.throwIfAborted();
    const waiting = this.queue.length;
    if (this.toasting < this.slots && waiting === 0) this.toasting++;
    else if (waiting >= this.queueLimit) {
      // A rough wait: the queue ahead, drained `slots` at a time at a medium cook each.
      const rounds = Math.ceil((waiting + 1) / this.slots);
      const retryAfter = Math.max(1, Math.ceil((rounds * this.cookMs("medium")) / 1000));
      const detail = `All ${this.slots} grill slots are busy and ${waiting} orders are waiting; try again shortly.`;
      throw problem("grill-busy", detail, { retryAfter });
    } else {
      await new Promise((resolve, reject) => {
        const leave = () => {
          this.queue.splice(this.queue.indexOf(grant), 1);
          reject(signal?.reason);
        };
        const grant = () => resolve(signal?.removeEventListener("abort", leave));
        signal?.addEventListener("abort", leave, { once: true });
        this.queue.push(grant);
      });
    }
    let released = false;
    return {
      cook: async (doneness: Doneness) => {
        if (this.cookMs(doneness) > 0) await sleep(this.cookMs(doneness));
      },
      release: () => {
        // The slot passes straight to the next waiter, so a newcomer cannot jump the queue.
        if (!released) (this.queue.shift() ?? (() => this.toasting--))();
        released = true;
      },
    };
  }

  /** Cook time in ms for a doneness at this grill's time scale. */
  cookMs(doneness: Doneness): number {
    return COOK_SECONDS[doneness] * 1000 * this.opts.COOK_TIME_SCALE;
  }
}
