/** The foxtrot meter's per-second buckets: counts by dialect, a fixed window, bounded memory. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Meter } from "../src/page/meter";

describe("Meter", () => {
  it("counts picks per whole second by dialect; quiet seconds are zeros", () => {
    const meter = new Meter(5);
    meter.add("v1", 10_000);
    meter.add("v1", 10_999);
    meter.add("v2", 12_500);
    assert.deepEqual(meter.series(14_200), [
      { t: 9, v1: 0, v2: 0 },
      { t: 10, v1: 2, v2: 0 },
      { t: 11, v1: 0, v2: 0 },
      { t: 12, v1: 0, v2: 1 },
      { t: 13, v1: 0, v2: 0 },
    ]);
  });

  it("forgets seconds that left the window, however long it runs", () => {
    const meter = new Meter(3);
    for (let s = 0; s < 10_000; s++) meter.add(s % 2 ? "v1" : "v2", s * 1000);
    const buckets = (meter as unknown as { buckets: Map<number, unknown> }).buckets;
    assert.ok(buckets.size <= 3, `${buckets.size} buckets kept`);
    assert.deepEqual(meter.at(9_999), { t: 9_999, v1: 1, v2: 0 });
  });
});
