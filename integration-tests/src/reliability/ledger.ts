/**
 * The stall's books as PostgreSQL holds them — read with SQL, not through the API under test —
 * and the arithmetic that checks them: what the successful requests took must be exactly what
 * left the stock, and every v2 success must be exactly one order.
 */
import type pg from "pg";

/** Ingredient → quantity. */
export type Quantities = Record<string, number>;

export interface Books {
  stock: Quantities;
  orders: number;
  /** Per ingredient, the sum over all order items. */
  orderedItems: Quantities;
  orderIds: Set<string>;
}

export async function readBooks(pool: pg.Pool): Promise<Books> {
  const [stock, orders, items] = await Promise.all([
    pool.query<{ name: string; quantity: number }>(
      `SELECT name, quantity FROM ingredients ORDER BY name COLLATE "C"`,
    ),
    pool.query<{ id: string }>("SELECT id::text AS id FROM orders"),
    pool.query<{ ingredient: string; total: string }>(
      "SELECT ingredient, sum(quantity)::text AS total FROM order_items GROUP BY ingredient",
    ),
  ]);
  return {
    stock: Object.fromEntries(stock.rows.map((r) => [r.name, r.quantity])),
    orders: orders.rowCount ?? orders.rows.length,
    orderedItems: Object.fromEntries(items.rows.map((r) => [r.ingredient, Number(r.total)])),
    orderIds: new Set(orders.rows.map((r) => r.id)),
  };
}

/** The sum of several `{ingredient: quantity}` maps. */
export function total(all: Iterable<Quantities>): Quantities {
  const sum: Quantities = {};
  for (const q of all) {
    for (const [name, n] of Object.entries(q)) sum[name] = (sum[name] ?? 0) + n;
  }
  return sum;
}

/** `before` minus `taken`, for every ingredient in `before`. */
export function minus(before: Quantities, taken: Quantities): Quantities {
  const left: Quantities = { ...before };
  for (const [name, n] of Object.entries(taken)) left[name] = (left[name] ?? 0) - n;
  return left;
}

/** What a toastie takes: its ingredients plus the two slices of bread jafflr adds. */
export function toastieTakes(ingredients: string[]): Quantities {
  return total([...ingredients, "bread", "bread"].map((name) => ({ [name]: 1 })));
}

/** What a v2 order's items take. */
export function itemsTake(items: { ingredient: string; quantity: number }[]): Quantities {
  return total(items.map((i) => ({ [i.ingredient]: i.quantity })));
}
