import type pg from "pg";
import { withTransaction } from "./db";
import type { Item } from "./validation";

/** Ingredient name → quantity on hand, in name order. */
export type Stock = Record<string, number>;

/**
 * What `POST /restock` with no body resets to: the original's cheese, bread and vegemite at 10,
 * plus the rest of jafflr's menu. The first migration seeds the same levels.
 */
export const DEFAULT_STOCK: Readonly<Stock> = Object.freeze({
  bread: 10,
  cheese: 10,
  ham: 10,
  pineapple: 10,
  sheese: 10,
  tomato: 10,
  vegemite: 10,
});

// "C" collation: byte order, the same everywhere, and the order every statement locks rows in.
const LIST_STOCK = `SELECT name, quantity FROM ingredients ORDER BY name COLLATE "C"`;

type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

export async function listStock(db: Queryable): Promise<Stock> {
  const { rows } = await db.query<{ name: string; quantity: number }>({
    name: "list-stock",
    text: LIST_STOCK,
  });
  return Object.fromEntries(rows.map((r) => [r.name, r.quantity]));
}

/**
 * Sets the given levels (creating unknown ingredients) and returns the whole stock as it is
 * right after. Rows are upserted in name order, like every other multi-row lock, so a restock
 * and concurrent orders cannot deadlock.
 */
export function setStock(pool: pg.Pool, levels: Item[]): Promise<Stock> {
  return withTransaction(pool, async (client) => {
    await client.query({
      name: "set-stock",
      text: `INSERT INTO ingredients (name, quantity)
             SELECT name, quantity FROM unnest($1::text[], $2::int[]) AS l(name, quantity)
             ORDER BY name COLLATE "C"
             ON CONFLICT (name) DO UPDATE SET quantity = EXCLUDED.quantity`,
      values: [levels.map((l) => l.ingredient), levels.map((l) => l.quantity)],
    });
    return listStock(client);
  });
}

export function resetStock(pool: pg.Pool): Promise<Stock> {
  return setStock(
    pool,
    Object.entries(DEFAULT_STOCK).map(([ingredient, quantity]) => ({ ingredient, quantity })),
  );
}
