/** Idempotency-Key on POST /v2/pick: what lets jafflr retry an order without picking twice. */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { assertProblem, holdLocks, lockWaiters, ok, post, snapshot, useTestApp } from "./helpers";

const app = useTestApp();
const order = {
  customer: "gita",
  items: [
    { ingredient: "cheese", quantity: 1 },
    { ingredient: "bread", quantity: 2 },
  ],
};
const pick = (body: object, key: string) =>
  post(app.url, "/v2/pick", body, { "Idempotency-Key": key });

test("a retry (the same order, written in any key or item order) replays the first answer and picks nothing", async () => {
  const key = randomUUID();
  const first = await pick(order, key);
  assert.equal(first.headers["idempotent-replayed"], undefined);
  const afterFirst = await snapshot(app.pool);
  for (const retry of [order, { items: [...order.items].reverse(), customer: "gita" }]) {
    const again = await pick(retry, key);
    assert.equal(again.text, first.text, "byte-identical");
    assert.equal(again.headers["idempotent-replayed"], "true");
  }
  assert.deepEqual(await snapshot(app.pool), afterFirst);
  assert.deepEqual([afterFirst.stock.cheese, afterFirst.orders], [9, 1]);
  await ok(pick(order, randomUUID())); // another key, another order
  await ok(post(app.url, "/v2/pick", order)); // no key, another order
  assert.equal((await snapshot(app.pool)).orders, 3);
});

test("the same key for a different order: 422 idempotency-key-reused, nothing changed", async () => {
  const key = randomUUID();
  await ok(pick(order, key));
  const before = await snapshot(app.pool);
  for (const other of [
    { ...order, customer: "gordon" },
    { ...order, items: [{ ingredient: "cheese", quantity: 2 }] },
    { customer: "gita", ingredient: "cheese", quantity: 1 },
    { customer: "gita", ingredient: "caviar", quantity: 100 }, // what stock there is changes nothing
  ]) {
    assert.match(
      assertProblem(await pick(other, key), 422).type as string,
      /idempotency-key-reused$/,
    );
  }
  assert.deepEqual(await snapshot(app.pool), before);
});

test("a key still in flight, reused for a different order: 422 once the first is done, never 409", async () => {
  const key = randomUUID();
  // Hold the first order mid-statement: it has its key, and waits for the cheese.
  const holder = await holdLocks(app, "SELECT FROM ingredients WHERE name = 'cheese' FOR UPDATE");
  try {
    const first = pick(order, key);
    await lockWaiters(app, 1, "the first order to wait for the cheese");
    // Out of stock on its own: without waiting for the first, it would be a 409 at once.
    const second = pick({ customer: "gordon", ingredient: "ham", quantity: 11 }, key);
    await lockWaiters(app, 2, "the second to wait for the first");
    await holder.query("ROLLBACK");
    assert.equal((await first).status, 200);
    assert.match(assertProblem(await second, 422).type as string, /idempotency-key-reused$/);
  } finally {
    await holder.end();
  }
});

test("concurrent requests with one key: one order; the same order replayed, another 422", async () => {
  const key = randomUUID();
  const other = { customer: "gordon", items: [{ ingredient: "ham", quantity: 1 }] };
  const replies = await Promise.all(
    Array.from({ length: 30 }, (_, i) => pick(i % 3 ? order : other, key)),
  );
  const winner = replies.find((r) => r.status === 200)?.body as { customer: string };
  for (const [i, r] of replies.entries()) {
    assert.equal(r.status, (i % 3 ? order : other).customer === winner.customer ? 200 : 422);
  }
  assert.equal(new Set(replies.filter((r) => r.status === 200).map((r) => r.text)).size, 1);
  assert.equal(
    replies.filter((r) => r.status === 200 && !r.headers["idempotent-replayed"]).length,
    1,
  );
  assert.equal((await snapshot(app.pool)).orders, 1);
});

test("a key whose attempt was refused (out of stock) is not used up: the retry succeeds after a restock", async () => {
  const key = randomUUID();
  await ok(post(app.url, "/restock", { cheese: 0 }));
  assertProblem(await pick(order, key), 409);
  await ok(post(app.url, "/restock", { cheese: 5 }));
  const retry = await pick(order, key);
  assert.deepEqual([retry.status, retry.headers["idempotent-replayed"]], [200, undefined]);
  assert.equal((await snapshot(app.pool)).stock.cheese, 4);
});
