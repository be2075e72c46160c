import type pg from "pg";
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

type Queryable = Pick<pg.Pool | pg.PoolClient | pg.Client, "query">;

export async function listStock(db: Queryable): Promise<Stock> {
  const { rows } = await db.query<{ name: string; quantity: number }>({
    name: "list-stock",
    // "C" collation: byte order, the same everywhere, and the order every statement locks rows in.
    text: `SELECT name, quantity FROM ingredients ORDER BY name COLLATE "C"`,
  });
  return Object.fromEntries(rows.map((r) => [r.name, r.quantity]));
}

/**
 * Sets the given levels (creating unknown ingredients) and returns the whole stock as it is
 * right after, in one statement. Rows are upserted in name order, like every other multi-row
 * lock, so a restock and concurrent orders cannot deadlock. `xid` is the writing transaction,
 * for the stock feed's read-your-writes.
 */
export async function setStock(
  pool: pg.Pool,
  levels: Item[],
): Promise<{ stock: Stock; xid: string }> {
  const { rows } = await pool.query<{ name: string; quantity: number; xid: string }>({
    name: "set-stock",
    text: `WITH written AS (
             INSERT INTO ingredients (name, quantity)
             SELECT name, quantity FROM unnest($1::text[], $2::int[]) AS l(name, quantity)
             ORDER BY name COLLATE "C"
             ON CONFLICT (name) DO UPDATE SET quantity = EXCLUDED.quantity
             RETURNING name, quantity
           )
           SELECT s.name, s.quantity, txid_current()::text AS xid FROM (
             SELECT name, quantity FROM written
             UNION ALL
             SELECT name, quantity FROM ingredients WHERE name <> ALL ($1::text[])
           ) s ORDER BY s.name COLLATE "C"`,
    values: [levels.map((l) => l.ingredient), levels.map((l) => l.quantity)],
  });
  return {
    stock: Object.fromEntries(rows.map((r) => [r.name, r.quantity])),
    xid: rows[0]?.xid ?? "",
  };
}

export function resetStock(pool: pg.Pool): Promise<{ stock: Stock; xid: string }> {
  return setStock(
    pool,
    Object.entries(DEFAULT_STOCK).map(([ingredient, quantity]) => ({ ingredient, quantity })),
  );
}
