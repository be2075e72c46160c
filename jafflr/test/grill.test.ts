import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HttpProblem } from "tpi";
import { COOK_SECONDS, Grill, type Slot } from "../src/grill";

const tick = () => new Promise((r) => setImmediate(r));

describe("Grill", () => {
  it("hands out free slots at once and counts them", async () => {
    const grill = new Grill({ slots: 2, queue: 2, timeScale: 0 });
    const a = await grill.reserve();
    await grill.reserve();
    assert.equal(grill.toasting, 2);
    assert.equal(grill.waiting, 0);
    a.release();
    a.release(); // a second release is a no-op, not a slot given away twice
    assert.equal(grill.toasting, 1);
  });

  it("queues in arrival order and refuses beyond the queue with 503 + Retry-After", async () => {
    const grill = new Grill({ slots: 1, queue: 3, timeScale: 1 });
    const first = await grill.reserve();
    const served: number[] = [];
    const waiters = [1, 2, 3].map((n) =>
      grill.reserve().then((slot) => {
        served.push(n);
        return slot;
      }),
    );
    await tick();
    assert.equal(grill.waiting, 3);

    await assert.rejects(grill.reserve(), (err: unknown) => {
      assert.ok(err instanceof HttpProblem);
      assert.equal(err.status, 503);
      assert.match(err.options.headers?.["Retry-After"] ?? "", /^[1-9]\d*$/);
      return true;
    });
    assert.equal(grill.waiting, 3, "a refused order takes no place in the queue");

    first.release();
    let slot: Slot = await (waiters[0] as Promise<Slot>);
    assert.deepEqual(served, [1]);
    assert.equal(grill.toasting, 1, "the slot passed straight to the next in line");

    // A newcomer while others wait goes to the back, even at the moment a slot frees up.
    const late = grill.reserve().then((s) => {
      served.push(4);
      return s;
    });
    slot.release();
    slot = await (waiters[1] as Promise<Slot>);
    slot.release();
    slot = await (waiters[2] as Promise<Slot>);
    slot.release();
    (await late).release();
    assert.deepEqual(served, [1, 2, 3, 4]);
    assert.equal(grill.toasting, 0);
    assert.equal(grill.waiting, 0);
  });

  it("drops a waiter whose customer left, without giving it a slot", async () => {
    const grill = new Grill({ slots: 1, queue: 5, timeScale: 0 });
    const held = await grill.reserve();
    const leaving = new AbortController();
    const gone = grill.reserve(leaving.signal);
    const staying = grill.reserve();
    await tick();
    assert.equal(grill.waiting, 2);
    leaving.abort(new Error("client went away"));
    await assert.rejects(gone, /client went away/);
    assert.equal(grill.waiting, 1);
    held.release();
    (await staying).release();
    assert.equal(grill.toasting, 0);
  });

  it("refuses at once with a zero-length queue", async () => {
    const grill = new Grill({ slots: 1, queue: 0, timeScale: 0 });
    const held = await grill.reserve();
    await assert.rejects(
      grill.reserve(),
      (err: unknown) => err instanceof HttpProblem && err.status === 503,
    );
    held.release();
  });

  it("cooks for the doneness's time times the scale", async () => {
    assert.deepEqual(COOK_SECONDS, { light: 1, medium: 2, "well-done": 5, burnt: 10 });
    const grill = new Grill({ slots: 1, queue: 0, timeScale: 0.01 });
    assert.equal(grill.cookMs("light"), 10);
    assert.equal(grill.cookMs("burnt"), 100);
    assert.equal(new Grill({ slots: 1, queue: 0, timeScale: 0 }).cookMs("burnt"), 0);

    const slot = await grill.reserve();
    const start = process.hrtime.bigint();
    await slot.cook("burnt");
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    slot.release();
    // A lower bound only: the cook must actually take its time (upper bounds are for benchmarks).
    assert.ok(ms >= 95, `burnt at scale 0.01 cooked for ${ms} ms`);
  });
});
