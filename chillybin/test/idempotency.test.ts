/** Idempotency-Key on POST /v2/pick: what lets jafflr retry an order without picking twice. */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { act, arrange, isProblem, snapshot, useTestApp } from "./helpers";

const app = useTestApp();

const order = {
  customer: "gita",
  items: [
    { ingredient: "cheese", quantity: 1 },
    { ingredient: "bread", quantity: 2 },
  ],
};

test("a retry with the same key and body returns the first response and picks nothing more", async () => {
  const key = randomUUID();
  const client = act(app.url);
  const first = await client.postJson("/v2/pick", order, { "Idempotency-Key": key });
  assert.equal(first.status, 200);
  assert.equal(first.headers["idempotent-replayed"], undefined);
  const afterFirst = await snapshot(app.pool);

  const retry = await client.postJson("/v2/pick", order, { "Idempotency-Key": key });
  assert.equal(retry.status, 200);
  assert.equal(retry.text, first.text, "byte-identical response");
  assert.equal(retry.headers["idempotent-replayed"], "true");
  assert.deepEqual(await snapshot(app.pool), afterFirst);
  assert.equal(afterFirst.stock.cheese, 9);
  assert.equal(afterFirst.orders, 1);
});

test("the same order written differently (key order, item order) is the same request", async () => {
  const key = randomUUID();
  const client = act(app.url);
  const first = await client.postJson("/v2/pick", order, { "Idempotency-Key": key });
  const reordered = { items: [...order.items].reverse(), customer: "gita" };
  const retry = await client.postJson("/v2/pick", reordered, { "Idempotency-Key": key });
  assert.equal(retry.status, 200);
  assert.deepEqual(retry.body, first.body);
  assert.equal((await snapshot(app.pool)).orders, 1);
});

test("the same key with a different body is a 422 problem and changes nothing", async () => {
  const key = randomUUID();
  await arrange(app.url).order(order, key);
  const before = await snapshot(app.pool);
  const client = act(app.url);
  for (const other of [
    { ...order, customer: "gordon" },
    { ...order, items: [{ ingredient: "cheese", quantity: 2 }] },
    { customer: "gita", ingredient: "cheese", quantity: 1 },
  ]) {
    const reply = await client.postJson("/v2/pick", other, { "Idempotency-Key": key });
    assert.equal(reply.status, 422);
    assert.ok(isProblem(reply));
  }
  assert.deepEqual(await snapshot(app.pool), before);
});

test("different keys are different orders", async () => {
  await arrange(app.url).order(order, randomUUID());
  await arrange(app.url).order(order, randomUUID());
  await arrange(app.url).order(order);
  const after = await snapshot(app.pool);
  assert.equal(after.orders, 3);
  assert.equal(after.stock.cheese, 7);
});

test("concurrent duplicates with the same key pick once and all get the same order", async () => {
  const key = randomUUID();
  const client = act(app.url);
  const replies = await Promise.all(
    Array.from({ length: 30 }, () =>
      client.postJson("/v2/pick", order, { "Idempotency-Key": key }),
    ),
  );
  assert.deepEqual(
    replies.map((r) => r.status),
    replies.map(() => 200),
  );
  assert.equal(new Set(replies.map((r) => r.text)).size, 1, "every reply is the one order");
  assert.equal(replies.filter((r) => r.headers["idempotent-replayed"] === undefined).length, 1);
  const after = await snapshot(app.pool);
  assert.equal(after.orders, 1);
  assert.equal(after.stock.cheese, 9);
  assert.equal(after.stock.bread, 8);
});

test("concurrent requests reusing one key for two different orders: one order, the others 422", async () => {
  const key = randomUUID();
  const client = act(app.url);
  const other = { customer: "gordon", items: [{ ingredient: "ham", quantity: 1 }] };
  const replies = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      client.postJson("/v2/pick", i % 2 ? order : other, { "Idempotency-Key": key }),
    ),
  );
  const winner = replies.find((r) => r.status === 200)?.body as { customer: string };
  assert.ok(winner);
  for (const [i, r] of replies.entries()) {
    const sameAsWinner = (i % 2 ? order : other).customer === winner.customer;
    assert.equal(r.status, sameAsWinner ? 200 : 422);
  }
  assert.equal((await snapshot(app.pool)).orders, 1);
});

test("a key whose attempt failed (out of stock) is not used up: the retry succeeds after a restock", async () => {
  const key = randomUUID();
  await arrange(app.url).setStock({ cheese: 0 });
  const client = act(app.url);
  const short = await client.postJson("/v2/pick", order, { "Idempotency-Key": key });
  assert.equal(short.status, 409);
  assert.equal((await snapshot(app.pool)).orders, 0);
  await arrange(app.url).setStock({ cheese: 5 });
  const retry = await client.postJson("/v2/pick", order, { "Idempotency-Key": key });
  assert.equal(retry.status, 200);
  assert.equal(retry.headers["idempotent-replayed"], undefined);
  assert.equal((await snapshot(app.pool)).stock.cheese, 4);
});
