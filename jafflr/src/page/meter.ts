/**
 * The foxtrot meter's numbers: chillybin picks per second, by dialect, over the last five minutes.
 * Whole-second buckets keyed by epoch second, so memory is bounded by the window however long a
 * page stays open, and a quiet second is simply absent (zero).
 */
export type Via = "v1" | "v2";

export interface MeterPoint {
  /** Epoch second the counts belong to. */
  t: number;
  v1: number;
  v2: number;
}

export const METER_WINDOW_SECONDS = 300;

export class Meter {
  private readonly buckets = new Map<number, MeterPoint>();

  constructor(private readonly windowSeconds = METER_WINDOW_SECONDS) {}

  add(via: Via, atMs: number): void {
    const t = Math.floor(atMs / 1000);
    let point = this.buckets.get(t);
    if (!point) {
      point = { t, v1: 0, v2: 0 };
      this.buckets.set(t, point);
      this.prune(t);
    }
    point[via] += 1;
  }

  /** The counts of one second (zeros when nothing was picked then). */
  at(t: number): MeterPoint {
    const point = this.buckets.get(t);
    return point ? { ...point } : { t, v1: 0, v2: 0 };
  }

  /** Every whole second of the window that has ended by `nowMs`, oldest first. */
  series(nowMs: number): MeterPoint[] {
    const last = Math.floor(nowMs / 1000) - 1;
    this.prune(last);
    const points: MeterPoint[] = [];
    for (let t = last - this.windowSeconds + 1; t <= last; t++) points.push(this.at(t));
    return points;
  }

  private prune(newest: number): void {
    for (const t of this.buckets.keys()) {
      if (t <= newest - this.windowSeconds) this.buckets.delete(t);
    }
  }
}
