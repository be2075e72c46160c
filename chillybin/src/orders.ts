import { createHash } from "node:crypto";
import type pg from "pg";
import { HttpProblem } from "tpi";
import { withTransaction } from "./db";
import { outOfStock, PROBLEM_TYPES, type Shortage, unknownIngredients } from "./problems";
import type { Item, OrderRequest } from "./validation";

/** An order as the API shows it. */
export interface Order {
  id: string;
  customer: string;
  items: Item[];
  createdAt: string;
}

export interface PlacedOrder {
  order: Order;
  /** True when an earlier request with the same Idempotency-Key already placed this order. */
  replayed: boolean;
}

/**
 * v2: pick every item and record one order, or change nothing.
 *
 * With an Idempotency-Key the order row is inserted *first*: a concurrent duplicate blocks on
 * the unique index until this transaction ends, then either sees our committed order (and
 * replays it) or, if we rolled back, goes ahead itself. So a key can never pick twice.
 */
export async function placeOrder(
  pool: pg.Pool,
  request: OrderRequest,
  idempotencyKey?: string,
): Promise<PlacedOrder> {
  const requestHash = idempotencyKey === undefined ? null : hashRequest(request);
  const placed = await withTransaction(pool, async (client) => {
    const inserted = await client.query<{ id: string; created_at: Date }>({
      name: "insert-order",
      text: `INSERT INTO orders (customer, idempotency_key, request_hash) VALUES ($1, $2, $3)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING id, created_at`,
      values: [request.customer, idempotencyKey ?? null, requestHash],
    });
    const row = inserted.rows[0];
    if (!row) return undefined; // the key is taken by a committed order: replay it below

    await takeStock(client, request.items);
    await client.query({
      name: "insert-order-items",
      text: `INSERT INTO order_items (order_id, ingredient, quantity)
             SELECT $1, ingredient, quantity FROM unnest($2::text[], $3::int[]) AS i(ingredient, quantity)`,
      values: [
        row.id,
        request.items.map((i) => i.ingredient),
        request.items.map((i) => i.quantity),
      ],
    });
    return toOrder(row.id, request.customer, row.created_at, request.items);
  });
  if (placed) return { order: placed, replayed: false };
  return {
    order: await replay(pool, idempotencyKey as string, requestHash as string),
    replayed: true,
  };
}

/**
 * Locks the rows in name order ("C" collation, the order validation sorted the items in) so two
 * orders for overlapping ingredients queue behind each other instead of deadlocking, checks
 * every item, then decrements them all. Throws 422/409 problems; the caller rolls back.
 */
async function takeStock(client: pg.PoolClient, items: Item[]): Promise<void> {
  const names = items.map((i) => i.ingredient);
  const { rows } = await client.query<{ name: string; quantity: number }>({
    name: "lock-ingredients",
    text: `SELECT name, quantity FROM ingredients WHERE name = ANY($1::text[])
           ORDER BY name COLLATE "C" FOR UPDATE`,
    values: [names],
  });
  const available = new Map(rows.map((r) => [r.name, r.quantity]));
  const unknown = names.filter((n) => !available.has(n));
  if (unknown.length > 0) throw unknownIngredients(unknown);
  const short: Shortage[] = items
    .map((i) => ({
      ingredient: i.ingredient,
      requested: i.quantity,
      available: available.get(i.ingredient) ?? 0,
    }))
    .filter((s) => s.available < s.requested);
  if (short.length > 0) throw outOfStock(short);
  await client.query({
    name: "take-stock",
    text: `UPDATE ingredients AS s SET quantity = s.quantity - i.quantity
           FROM unnest($1::text[], $2::int[]) AS i(ingredient, quantity)
           WHERE s.name = i.ingredient`,
    values: [names, items.map((i) => i.quantity)],
  });
}

async function replay(pool: pg.Pool, key: string, requestHash: string): Promise<Order> {
  const { rows } = await pool.query<{ id: string; request_hash: string }>({
    name: "order-by-key",
    text: "SELECT id, request_hash FROM orders WHERE idempotency_key = $1",
    values: [key],
  });
  const row = rows[0];
  if (!row) throw new Error("idempotency key conflicted but its order is gone");
  if (row.request_hash !== requestHash) {
    throw new HttpProblem(422, "Idempotency-Key reused", {
      type: PROBLEM_TYPES.idempotencyKeyReused,
      detail:
        "This Idempotency-Key was already used for a different order; use a new key for a new order.",
    });
  }
  const order = await getOrder(pool, row.id);
  if (!order) throw new Error("idempotency key conflicted but its order is gone");
  return order;
}

/** The same order in any JSON key order or item order (after merging) hashes the same. */
export function hashRequest(request: OrderRequest): string {
  const canonical = JSON.stringify([
    request.customer,
    request.items.map((i) => [i.ingredient, i.quantity]),
  ]);
  return createHash("sha256").update(canonical).digest("hex");
}

interface OrderRow {
  id: string;
  customer: string;
  created_at: Date;
  items: Item[];
}

// Items aggregated in the same query, sorted like the request was, so a replay is byte-identical.
const ORDER_COLUMNS = `o.id, o.customer, o.created_at,
  (SELECT json_agg(json_build_object('ingredient', i.ingredient, 'quantity', i.quantity)
                   ORDER BY i.ingredient COLLATE "C")
     FROM order_items i WHERE i.order_id = o.id) AS items`;

export async function getOrder(db: pg.Pool, id: string): Promise<Order | undefined> {
  const { rows } = await db.query<OrderRow>({
    name: "get-order",
    text: `SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.id = $1`,
    values: [id],
  });
  const row = rows[0];
  return row && toOrder(row.id, row.customer, row.created_at, row.items ?? []);
}

/** Newest first; ties (same transaction timestamp) broken by id so the order is stable. */
export async function listOrders(
  db: pg.Pool,
  query: { customer?: string; limit: number },
): Promise<Order[]> {
  // Two statements rather than `$1 IS NULL OR …`, so each keeps its own index-friendly plan.
  const { rows } =
    query.customer === undefined
      ? await db.query<OrderRow>({
          name: "list-orders",
          text: `SELECT ${ORDER_COLUMNS} FROM orders o
                 ORDER BY o.created_at DESC, o.id DESC LIMIT $1`,
          values: [query.limit],
        })
      : await db.query<OrderRow>({
          name: "list-customer-orders",
          text: `SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.customer = $1
                 ORDER BY o.created_at DESC, o.id DESC LIMIT $2`,
          values: [query.customer, query.limit],
        });
  return rows.map((r) => toOrder(r.id, r.customer, r.created_at, r.items ?? []));
}

function toOrder(id: string, customer: string, createdAt: Date, items: Item[]): Order {
  return {
    id,
    customer,
    items: items.map((i) => ({ ingredient: i.ingredient, quantity: i.quantity })),
    createdAt: createdAt.toISOString(),
  };
}
