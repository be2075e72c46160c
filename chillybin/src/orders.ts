import { createHash } from "node:crypto";
import type pg from "pg";
import { HttpProblem } from "tpi";
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
  /** The transaction that picked (undefined for a replay), for the stock feed's read-your-writes. */
  xid?: string;
}

/**
 * v2 in ONE statement: lock the ingredients in name order ("C" collation, the order validation
 * sorted the items in — so orders for overlapping ingredients queue instead of deadlocking), check
 * every item against the locked (latest) quantities, and only if all are known and enough: insert
 * the order, decrement the stock, record the items and announce the pick. Either all of that
 * commits or nothing does; the CHECK (quantity >= 0) stays the last line of defence.
 *
 * The order is claimed with ON CONFLICT (idempotency_key) DO NOTHING after the locks, so a
 * concurrent duplicate (same key, same items) waits for the first one's ingredient locks, then
 * finds its key taken and replays it: a key can never pick twice.
 */
const PLACE_ORDER = `
WITH req AS (
  SELECT * FROM unnest($2::text[], $3::int[]) AS r(ingredient, quantity)
),
locked AS MATERIALIZED (
  SELECT name, quantity FROM ingredients WHERE name = ANY ($2::text[])
  ORDER BY name COLLATE "C" FOR UPDATE
),
verdict AS MATERIALIZED (
  SELECT
    ARRAY(SELECT r.ingredient FROM req r
          WHERE NOT EXISTS (SELECT FROM locked l WHERE l.name = r.ingredient)
          ORDER BY r.ingredient COLLATE "C") AS unknown,
    (SELECT json_agg(json_build_object('ingredient', r.ingredient, 'requested', r.quantity,
                                       'available', l.quantity) ORDER BY r.ingredient COLLATE "C")
       FROM req r JOIN locked l ON l.name = r.ingredient
      WHERE l.quantity < r.quantity) AS short
),
claim AS (
  INSERT INTO orders (customer, idempotency_key, request_hash)
  SELECT $1, $4, $5 FROM verdict WHERE cardinality(unknown) = 0 AND short IS NULL
  ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING id, created_at
),
taken AS (
  UPDATE ingredients AS s SET quantity = s.quantity - r.quantity
  FROM req r, claim
  WHERE s.name = r.ingredient
),
recorded AS (
  INSERT INTO order_items (order_id, ingredient, quantity)
  SELECT claim.id, r.ingredient, r.quantity FROM claim, req r
)
SELECT c.id, c.created_at, v.unknown, v.short,
  CASE WHEN c.id IS NOT NULL THEN pg_notify('stock_changed', json_build_object('pick',
    json_build_object('via', 'v2', 'items', $6::json, 'customer', $1::text, 'orderId', c.id))::text)
  END AS announced,
  txid_current()::text AS xid
FROM verdict v LEFT JOIN claim c ON true`;

interface PlaceOrderRow {
  id: string | null;
  created_at: Date | null;
  unknown: string[];
  short: Shortage[] | null;
  xid: string;
}

export async function placeOrder(
  pool: pg.Pool,
  request: OrderRequest,
  idempotencyKey?: string,
): Promise<PlacedOrder> {
  const requestHash = idempotencyKey === undefined ? null : hashRequest(request);
  const { rows } = await pool.query<PlaceOrderRow>({
    name: "place-order",
    text: PLACE_ORDER,
    values: [
      request.customer,
      request.items.map((i) => i.ingredient),
      request.items.map((i) => i.quantity),
      idempotencyKey ?? null,
      requestHash,
      JSON.stringify(request.items),
    ],
  });
  const row = rows[0] as PlaceOrderRow;
  if (row.id !== null && row.created_at !== null) {
    return {
      order: toOrder(row.id, request.customer, row.created_at, request.items),
      replayed: false,
      xid: row.xid,
    };
  }
  // Nothing picked. A key already used by a committed order wins over today's stock, as the
  // first attempt's answer must be replayed whatever happened since.
  if (idempotencyKey !== undefined) {
    const earlier = await replay(pool, idempotencyKey, requestHash as string);
    if (earlier) return { order: earlier, replayed: true };
  }
  if (row.unknown.length > 0) throw unknownIngredients(row.unknown);
  if (row.short) throw outOfStock(row.short);
  throw new Error("order neither placed nor refused (its idempotency key vanished)");
}

/** The order an earlier request placed under this key, if any; 422 when it was a different order. */
async function replay(pool: pg.Pool, key: string, requestHash: string): Promise<Order | undefined> {
  const { rows } = await pool.query<{ id: string; request_hash: string }>({
    name: "order-by-key",
    text: "SELECT id, request_hash FROM orders WHERE idempotency_key = $1",
    values: [key],
  });
  const row = rows[0];
  if (!row) return undefined;
  if (row.request_hash !== requestHash) {
    throw new HttpProblem(422, "Idempotency-Key reused", {
      type: PROBLEM_TYPES.idempotencyKeyReused,
      detail:
        "This Idempotency-Key was already used for a different order; use a new key for a new order.",
    });
  }
  return getOrder(pool, row.id);
}

/** The same order in any JSON key order or item order (after merging) hashes the same. */
function hashRequest(request: OrderRequest): string {
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
