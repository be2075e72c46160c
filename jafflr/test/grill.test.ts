import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HttpProblem } from "tpi";
import { Grill } from "../src/grill";

const tick = () => new Promise((r) => setImmediate(r));
const busy = (err: unknown) =>
  err instanceof HttpProblem &&
  err.status === 503 &&
  /^[1-9]\d*$/.test(err.options.headers?.["Retry-After"] ?? "");

describe("Grill", () => {
  it("serves in arrival order, passing a freed slot to the next in line; refuses beyond the queue", async () => {
    const grill = new Grill({ GRILL_SLOTS: 1, GRILL_QUEUE: 3, COOK_TIME_SCALE: 1 });
    const first = await grill.reserve();
    first.release();
    first.release(); // a second release is a no-op, not a slot given away twice
    assert.equal(grill.toasting, 0);
    const held = await grill.reserve();
    const served: number[] = [];
    const waiters = [1, 2, 3].map(async (n) => {
      const slot = await grill.reserve();
      served.push(n);
      return slot;
    });
    await tick();
    assert.deepEqual([grill.toasting, grill.waiting], [1, 3]);
    await assert.rejects(grill.reserve(), busy);
    assert.equal(grill.waiting, 3, "a refused order takes no place in the queue");
    held.release();
    for (const w of waiters) (await w).release();
    assert.deepEqual(served, [1, 2, 3]);
    assert.deepEqual([grill.toasting, grill.waiting], [0, 0]);
    const none = new Grill({ GRILL_SLOTS: 1, GRILL_QUEUE: 0, COOK_TIME_SCALE: 0 });
    await none.reserve();
    await assert.rejects(none.reserve(), busy, "a zero-length queue refuses at once");
  });

  it("drops a waiter whose customer left, without giving it a slot", async () => {
    const grill = new Grill({ GRILL_SLOTS: 1, GRILL_QUEUE: 5, COOK_TIME_SCALE: 0 });
    const held = await grill.reserve();
    const leaving = new AbortController();
    const gone = grill.reserve(leaving.signal);
    const staying = grill.reserve();
    await tick();
    leaving.abort(new Error("client went away"));
    await assert.rejects(gone, /client went away/);
    assert.equal(grill.waiting, 1);
    held.release();
    (await staying).release();
    assert.equal(grill.toasting, 0);
  });

  it("cooks for the doneness's seconds times the scale", async () => {
    const grill = new Grill({ GRILL_SLOTS: 1, GRILL_QUEUE: 0, COOK_TIME_SCALE: 0.01 });
    assert.deepEqual(
      ["light", "medium", "well-done", "burnt"].map((d) => grill.cookMs(d as "light")),
      [10, 20, 50, 100],
    );
    const slot = await grill.reserve();
    const start = performance.now();
    await slot.cook("burnt");
    // A lower bound only: the cook takes its time (upper bounds are for benchmarks).
    assert.ok(performance.now() - start >= 95);
  });
});
