/**
 * Many requests at the same moment against a real database: exactly as many succeed as the
 * stock allows, the arithmetic is exact, and nothing ever fails with a 500 or a deadlock, also
 * when a restock commits while an order waits for its rows.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { holdLocks, lockWaiters, ok, post, type Reply, snapshot, useTestApp } from "./helpers";

const app = useTestApp({ poolMax: 20 });
function statuses(replies: Reply[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of replies) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

test("200 simultaneous v2 orders of three items against 50 units: 50 orders, exact stock", async () => {
  await ok(post(app.url, "/restock", { cheese: 50, ham: 60, bread: 200 }));
  const items = [
    { ingredient: "bread", quantity: 2 },
    { ingredient: "cheese", quantity: 1 },
    { ingredient: "ham", quantity: 1 },
  ];
  const replies = await Promise.all(
    Array.from({ length: 200 }, (_, i) => post(app.url, "/v2/pick", { customer: `c${i}`, items })),
  );
  assert.deepEqual(statuses(replies), { 200: 50, 409: 150 });
  const after = await snapshot(app.pool);
  assert.deepEqual(after.stock, { ...after.stock, cheese: 0, ham: 10, bread: 100 });
  assert.deepEqual([after.orders, after.items], [50, 150]);
  const winners = replies
    .filter((r) => r.status === 200)
    .map((r) => (r.body as { customer: string }).customer);
  const { rows } = await app.pool.query<{ customer: string }>("SELECT customer FROM orders");
  assert.deepEqual(new Set(rows.map((r) => r.customer)), new Set(winners));
});

test("overlapping orders listing ingredients in opposite orders, with restocks, never deadlock", async () => {
  const names = ["bread", "cheese", "ham", "pineapple", "tomato"];
  await ok(post(app.url, "/restock", Object.fromEntries(names.map((n) => [n, 10_000]))));
  const forwards = names.map((ingredient) => ({ ingredient, quantity: 1 }));
  const replies = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      i % 10 === 9
        ? post(app.url, "/restock", { tomato: 10_000, bread: 10_000 })
        : post(app.url, "/v2/pick", {
            customer: "gita",
            items: i % 2 ? forwards : [...forwards].reverse(),
          }),
    ),
  );
  assert.deepEqual(statuses(replies), { 200: 200 });
  const after = await snapshot(app.pool);
  // 180 orders; cheese, ham and pineapple are never restocked.
  assert.deepEqual(
    [after.orders, after.stock.cheese, after.stock.ham, after.stock.pineapple],
    [180, 9820, 9820, 9820],
  );
});

test("a restock that commits while an order waits for the bread: the order takes it from the new stock", async () => {
  await ok(post(app.url, "/restock", { bread: 0, cheese: 5 }));
  const restock = await holdLocks(app, "UPDATE ingredients SET quantity = 10 WHERE name = 'bread'");
  try {
    const items = [2, 1].map((quantity, i) => ({ ingredient: ["bread", "cheese"][i], quantity }));
    const order = post(app.url, "/v2/pick", { customer: "mei", items });
    await lockWaiters(app, 1, "the order to wait");
    await restock.query("COMMIT");
    assert.equal((await order).status, 200, (await order).text);
  } finally {
    await restock.end();
  }
  const { stock } = await snapshot(app.pool);
  assert.deepEqual([stock.bread, stock.cheese], [8, 4]);
});
