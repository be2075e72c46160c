/** v2: POST /v2/pick — a whole order, atomically, safe to retry with an Idempotency-Key. */
import { createHash } from "node:crypto";
import type pg from "pg";
import { invalidRequest, parseRequest, z } from "tpi";
import * as p from "./problems";
import { compareNames, ingredientName, rule } from "./stock";

export const QUANTITY_RULE = "an integer from 1 to 100";
const CUSTOMER_RULE = "1-64 printable characters, not blank, no leading or trailing spaces";
const quantity = z.number(rule("quantity", QUANTITY_RULE)).int().min(1).max(100);

/** In code points, as PostgreSQL's char_length; no control/format/separator characters but ZWJ (👩‍🍳). */
const customer = z
  .string(rule("customer", CUSTOMER_RULE))
  .refine(
    (s) =>
      [...s].length <= 64 &&
      s.trim() === s &&
      /^[^\p{C}\p{Zl}\p{Zp}]+$/u.test(s.replaceAll("\u200d", "")),
    `customer must be ${CUSTOMER_RULE}`,
  )
  .openapi({ minLength: 1, maxLength: 64, description: `${CUSTOMER_RULE}; U+200D allowed` });

const Item = z
  .strictObject(
    { ingredient: ingredientName("ingredient"), quantity },
    { error: "each item must be an object {ingredient, quantity}" },
  )
  .openapi("Item");
type Item = z.infer<typeof Item>;
/** A whole order; items naming an ingredient twice (a recipe may list bread twice) are merged. */
const WholeOrder = z.strictObject({
  customer,
  items: z
    .array(Item, { error: "items must be an array of {ingredient, quantity}" })
    .min(1, "items must list at least one ingredient")
    .max(20, "items must list at most 20 ingredients")
    .transform((items, ctx) => {
      const totals = new Map<string, number>();
      for (const { ingredient: name, quantity } of items)
        totals.set(name, (totals.get(name) ?? 0) + quantity);
      for (const [name, total] of totals) {
        const message = `items ask for ${total} ${name} in total; at most 100 per ingredient`;
        if (total > 100) ctx.addIssue({ code: "custom", message });
      }
      const merged = [...totals].map(([ingredient, quantity]) => ({ ingredient, quantity }));
      return merged.sort((a, b) => compareNames(a.ingredient, b.ingredient));
    }),
});
/** The original's one-ingredient form. */
const SingleItemOrder = z
  .strictObject({ customer, ingredient: ingredientName("ingredient"), quantity })
  .transform(({ customer, ...item }) => ({ customer, items: [item] }));

export const Order = z
  .strictObject({
    id: z.string().openapi({ format: "uuid" }),
    customer: z.string(),
    items: z.array(Item),
    createdAt: z.string().openapi({ format: "date-time" }),
  })
  .openapi("Order");
export type Order = z.infer<typeof Order>;

/** Idempotency-Key: an opaque token (a UUID in practice) of visible ASCII characters. */
const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,255}$/);

p.route("POST /v2/pick", "pickV2", "An order, picked atomically; retry with its Idempotency-Key.", {
  request: {
    headers: z.object({ "Idempotency-Key": IdempotencyKey.optional() }),
    body: { required: true, content: p.json(z.union([WholeOrder, SingleItemOrder])) },
  },
  responses: {
    200: {
      description: "Picked and recorded (with Idempotent-Replayed: the first answer, replayed).",
      content: p.json(Order),
      headers: { "Idempotent-Replayed": p.header("A replay.", { const: "true" }) },
    },
    409: p.problems("Not enough of some items; nothing picked.", p.OutOfStock),
    422: p.problems(
      "An ingredient not stocked, or an Idempotency-Key already used for another order.",
      p.UnknownIngredient,
      p.IdempotencyKeyReused,
    ),
    ...p.responses.forJson,
  },
});

/** Which of the two forms the body takes. */
type NewOrder = { customer: string; items: Item[] };
export function parseOrder(body: unknown): NewOrder {
  const form =
    typeof body !== "object" || body === null || Array.isArray(body)
      ? "the body must be a JSON object"
      : "items" in body
        ? WholeOrder
        : "ingredient" in body
          ? SingleItemOrder
          : 'send {"customer", "items": [{"ingredient", "quantity"}]} or {"customer", "ingredient", "quantity"}';
  if (typeof form === "string") throw invalidRequest([{ pointer: "", detail: form }]);
  return parseRequest(form, body, "body");
}

/** The header's values as sent (`headersDistinct`), so two Idempotency-Key headers are refused, not joined. */
export function parseIdempotencyKey(values: string[] | undefined): string | undefined {
  if (values === undefined) return undefined;
  if (values.length === 1 && IdempotencyKey.safeParse(values[0]).success) return values[0];
  const detail =
    values.length > 1
      ? "send exactly one Idempotency-Key header"
      : "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)";
  throw invalidRequest([{ header: "Idempotency-Key", detail }]);
}

/**
 * v2 in ONE statement: lock the ingredients in name order ("C" collation, as the items were sorted,
 * so overlapping orders queue instead of deadlocking), check every item against the locked
 * quantities, and only if all are known and enough: insert, decrement, record, announce. The
 * decrement starts from the locked quantity: the UPDATE's own row can be the statement's snapshot,
 * older than a restock that committed while this waited for the lock.
 * With a key, a lock on it comes first: a second request with the same key waits for the first,
 * then finds its order (a replay, or 422) instead of answering 409 while the first is in flight.
 */
const PLACE_ORDER = `
WITH keyed AS MATERIALIZED (
  SELECT CASE WHEN $4::text IS NOT NULL THEN pg_advisory_xact_lock(hashtextextended($4, 0)) END
),
req AS (SELECT * FROM unnest($2::text[], $3::int[]) AS r(ingredient, quantity)),
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
  FROM keyed
),
claim AS (
  INSERT INTO orders (customer, idempotency_key, request_hash)
  SELECT $1, $4, $5 FROM verdict WHERE cardinality(unknown) = 0 AND short IS NULL
  ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING id, created_at
),
taken AS (
  UPDATE ingredients AS s SET quantity = l.quantity - r.quantity
  FROM req r JOIN locked l ON l.name = r.ingredient, claim WHERE s.name = r.ingredient
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

type Placed = { id: string; created_at: Date; unknown: string[]; short: p.Shortage[] | null };

/** The order, whether it is a replay, and the picking transaction (for read-your-writes). */
export async function placeOrder(pool: pg.Pool, { customer, items }: NewOrder, key?: string) {
  // The same order in any key or item order (after merging) hashes the same.
  const canonical = JSON.stringify([customer, items.map((i) => [i.ingredient, i.quantity])]);
  const hash = key && createHash("sha256").update(canonical).digest("hex");
  const names = items.map((i) => i.ingredient);
  const { rows } = await pool.query<Placed & { xid: string }>({
    name: "place-order",
    text: PLACE_ORDER,
    values: [customer, names, items.map((i) => i.quantity), key, hash, JSON.stringify(items)],
  });
  const row = rows[0] as Placed & { xid: string };
  if (row.id) return { order: toOrder({ ...row, customer, items }), replayed: false, xid: row.xid };
  // Nothing picked. A key already used by a committed order wins over today's stock: the first
  // attempt's answer is replayed whatever happened since.
  if (key) {
    const { rows: earlier } = await pool.query<OrderRow & { request_hash: string }>({
      name: "order-by-key",
      text: `SELECT o.request_hash, ${ORDER_COLUMNS} FROM orders o WHERE o.idempotency_key = $1`,
      values: [key],
    });
    const first = earlier[0];
    const reused =
      "This Idempotency-Key was already used for a different order; use a new key for a new order.";
    if (first && first.request_hash !== hash) throw p.fail(p.IdempotencyKeyReused, reused);
    if (first) return { order: toOrder(first), replayed: true };
  }
  if (row.unknown.length > 0) throw p.unknownIngredients(row.unknown);
  const short = row.short;
  if (!short) throw new Error("order neither placed nor refused (its idempotency key vanished)");
  const what = short.map((s) => `${s.ingredient} (${s.available} left, ${s.requested} wanted)`);
  const detail = `Not enough ${what.join(", ")}; nothing was picked.`;
  throw p.fail(p.OutOfStock, detail, { extensions: { short } });
}

const LIMIT_RULE = "limit must be an integer from 1 to 100";
const OrdersQuery = z.strictObject({
  customer: customer.optional(),
  limit: z
    .string({ error: LIMIT_RULE })
    .regex(/^(100|[1-9][0-9]?)$/, LIMIT_RULE)
    .optional()
    .openapi({ default: "20" }),
});
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type OrderRow = { id: string; customer: string; created_at: Date; items: Item[] | null };

// Items aggregated in the same query, sorted like the request was, so a replay is byte-identical.
const ORDER_COLUMNS = `o.id, o.customer, o.created_at,
  (SELECT json_agg(json_build_object('ingredient', i.ingredient, 'quantity', i.quantity)
                   ORDER BY i.ingredient COLLATE "C")
     FROM order_items i WHERE i.order_id = o.id) AS items`;

export async function getOrder(db: pg.Pool, id: string): Promise<Order | undefined> {
  if (!UUID.test(id)) throw invalidRequest([{ parameter: "id", detail: "order ids are UUIDs" }]);
  const { rows } = await db.query<OrderRow>({
    name: "get-order",
    text: `SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.id = $1`,
    values: [id.toLowerCase()],
  });
  return rows[0] && toOrder(rows[0]);
}

/** Newest first; ties (one transaction's timestamp) broken by id so the order is stable. */
export async function listOrders(db: pg.Pool, query: unknown): Promise<Order[]> {
  const { customer, limit = "20" } = parseRequest(OrdersQuery, query, "query");
  // Two statements rather than `$2 IS NULL OR …`, so each keeps its own index-friendly plan.
  const { rows } = await db.query<OrderRow>({
    name: customer === undefined ? "list-orders" : "list-customer-orders",
    text: `SELECT ${ORDER_COLUMNS} FROM orders o ${customer === undefined ? "" : "WHERE o.customer = $2"}
           ORDER BY o.created_at DESC, o.id DESC LIMIT $1`,
    values: customer === undefined ? [limit] : [limit, customer],
  });
  return rows.map(toOrder);
}

function toOrder({ id, customer, items, created_at }: OrderRow): Order {
  return { id, customer, items: items ?? [], createdAt: created_at.toISOString() };
}

p.route("GET /orders", "listOrders", "Orders, newest first.", {
  request: { query: OrdersQuery },
  responses: {
    200: {
      description: "The orders.",
      content: p.json(z.strictObject({ orders: z.array(Order) })),
    },
    ...p.responses.forQuery,
  },
});
p.route("GET /orders/{id}", "getOrder", "One order, exactly as placed.", {
  request: { params: z.object({ id: z.string().openapi({ format: "uuid" }) }) },
  responses: {
    200: { description: "The order.", content: p.json(Order) },
    404: p.problems("No such order.", p.OrderNotFound),
    ...p.responses.forQuery,
  },
});
