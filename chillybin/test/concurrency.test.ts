/**
 * Many requests at the same moment against a real database: exactly as many succeed as the
 * stock allows, the arithmetic is exact, and nothing ever fails with a 500 or a deadlock.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { act, arrange, type Reply, snapshot, useTestApp } from "./helpers";

const app = useTestApp({ poolMax: 20 });

function statusCounts(replies: Reply[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const r of replies) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

test("200 simultaneous v2 orders of three items against 50 units: 50 orders, exact stock", async () => {
  await arrange(app.url).setStock({ cheese: 50, ham: 60, bread: 200 });
  const client = act(app.url);
  const replies = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      client.postJson("/v2/pick", {
        customer: `c${i}`,
        items: [
          { ingredient: "bread", quantity: 2 },
          { ingredient: "cheese", quantity: 1 },
          { ingredient: "ham", quantity: 1 },
        ],
      }),
    ),
  );
  assert.deepEqual(statusCounts(replies), { 200: 50, 409: 150 });
  const after = await snapshot(app.pool);
  assert.equal(after.stock.cheese, 0);
  assert.equal(after.stock.ham, 10);
  assert.equal(after.stock.bread, 100);
  assert.equal(after.orders, 50, "one order per success");
  assert.equal(after.orderItems, 150);
  const winners = new Set(
    replies.filter((r) => r.status === 200).map((r) => (r.body as { customer: string }).customer),
  );
  const recorded = await app.pool.query<{ customer: string }>("SELECT customer FROM orders");
  assert.deepEqual(new Set(recorded.rows.map((r) => r.customer)), winners);
});

test("overlapping orders listing ingredients in opposite orders, with restocks, never deadlock", async () => {
  const names = ["bread", "cheese", "ham", "pineapple", "tomato"];
  await arrange(app.url).setStock(Object.fromEntries(names.map((n) => [n, 10_000])));
  const client = act(app.url);
  const forwards = names.map((ingredient) => ({ ingredient, quantity: 1 }));
  const backwards = [...forwards].reverse();
  const replies = await Promise.all(
    Array.from({ length: 200 }, (_, i) => {
      if (i % 10 === 9) return client.postJson("/restock", { tomato: 10_000, bread: 10_000 });
      return client.postJson("/v2/pick", { customer: "gita", items: i % 2 ? forwards : backwards });
    }),
  );
  assert.deepEqual(statusCounts(replies), { 200: 200 });
  const after = await snapshot(app.pool);
  assert.equal(after.orders, 180);
  // 180 orders; cheese, ham and pineapple are never restocked.
  assert.equal(after.stock.cheese, 10_000 - 180);
  assert.equal(after.stock.pineapple, 10_000 - 180);
  assert.equal(after.stock.ham, 10_000 - 180);
});
