import { z } from "tpi";
import { type FieldError, invalidRequest } from "./problems";

/** Short lowercase words, as jafflr's menu uses them; the database stores nothing else. */
const INGREDIENT_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const MAX_PICK_QUANTITY = 100;
export const MAX_ORDER_ITEMS = 20;
export const MAX_STOCK_LEVEL = 10_000;
export const MAX_RESTOCK_ENTRIES = 100;
const DEFAULT_ORDERS_LIMIT = 20;
export const MAX_ORDERS_LIMIT = 100;

const NAME_RULE = "1-32 lowercase letters, digits, - or _, starting with a letter";
export const QUANTITY_RULE = `an integer from 1 to ${MAX_PICK_QUANTITY}`;
const CUSTOMER_RULE = "1-64 printable characters, not blank, no leading or trailing spaces";

export interface Item {
  ingredient: string;
  quantity: number;
}

/** A v2 order after validation: items merged by ingredient and sorted by name. */
export interface OrderRequest {
  customer: string;
  items: Item[];
}

// ---------- shared field schemas ----------

const required = (what: string, rule: string) => (iss: { input: unknown }) =>
  iss.input === undefined ? `${what} is required` : `${what} must be ${rule}`;

export const ingredientName = (what: string) =>
  z
    .string({ error: required(what, NAME_RULE) })
    .regex(INGREDIENT_NAME, `${what} must be ${NAME_RULE}`);

const quantity = (what: string) =>
  z
    .number({ error: required(what, QUANTITY_RULE) })
    .int(`${what} must be ${QUANTITY_RULE}`)
    .min(1, `${what} must be ${QUANTITY_RULE}`)
    .max(MAX_PICK_QUANTITY, `${what} must be ${QUANTITY_RULE}`);

/**
 * Counted in code points, as PostgreSQL's char_length does. No control, format or separator
 * characters (so no NULs, newlines or bidi overrides) except the zero-width joiner inside emoji
 * like 👩‍🍳; no leading or trailing whitespace, which also rules out blank names.
 */
function isValidCustomer(s: string): boolean {
  const length = [...s].length;
  return (
    length >= 1 &&
    length <= 64 &&
    s.trim() === s &&
    /^[^\p{C}\p{Zl}\p{Zp}]+$/u.test(s.replaceAll("\u200d", ""))
  );
}

const customer = z
  .string({ error: required("customer", CUSTOMER_RULE) })
  .refine(isValidCustomer, `customer must be ${CUSTOMER_RULE}`);

// ---------- POST /v2/pick ----------

const singleItemOrder = z.strictObject({
  customer,
  ingredient: ingredientName("ingredient"),
  quantity: quantity("quantity"),
});

const itemSchema = z.strictObject(
  { ingredient: ingredientName("ingredient"), quantity: quantity("quantity") },
  { error: "each item must be an object {ingredient, quantity}" },
);

const wholeOrder = z.strictObject({
  customer,
  items: z
    .array(itemSchema, { error: "items must be an array of {ingredient, quantity}" })
    .min(1, "items must list at least one ingredient")
    .max(MAX_ORDER_ITEMS, `items must list at most ${MAX_ORDER_ITEMS} ingredients`),
});

/**
 * Two accepted shapes: the original's one-ingredient form and a whole order. Items naming the
 * same ingredient twice are merged (quantities added) — a recipe may list bread twice — and the
 * merged quantity must still be within 1..100.
 */
export function parseOrderRequest(body: unknown): OrderRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalidRequest([{ pointer: "", detail: "the body must be a JSON object" }]);
  }
  if ("items" in body) {
    const order = parse(wholeOrder, body, "body");
    return { customer: order.customer, items: mergeItems(order.items) };
  }
  if ("ingredient" in body) {
    const order = parse(singleItemOrder, body, "body");
    return {
      customer: order.customer,
      items: [{ ingredient: order.ingredient, quantity: order.quantity }],
    };
  }
  throw invalidRequest([
    {
      pointer: "",
      detail:
        'send {"customer", "items": [{"ingredient", "quantity"}]} or {"customer", "ingredient", "quantity"}',
    },
  ]);
}

function mergeItems(items: Item[]): Item[] {
  const totals = new Map<string, number>();
  for (const { ingredient, quantity } of items) {
    totals.set(ingredient, (totals.get(ingredient) ?? 0) + quantity);
  }
  const errors: FieldError[] = [];
  for (const [ingredient, total] of totals) {
    if (total > MAX_PICK_QUANTITY) {
      errors.push({
        pointer: "/items",
        detail: `items ask for ${total} ${ingredient} in total; at most ${MAX_PICK_QUANTITY} per ingredient`,
      });
    }
  }
  if (errors.length > 0) throw invalidRequest(errors);
  return [...totals]
    .map(([ingredient, quantity]) => ({ ingredient, quantity }))
    .sort((a, b) => compareNames(a.ingredient, b.ingredient));
}

/** Code-unit order, the same as PostgreSQL's "C" collation used for locking. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Idempotency-Key: an opaque token (a UUID in practice) of visible ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The header's values as sent (`headersDistinct`), so two Idempotency-Key headers are refused, not joined. */
export function parseIdempotencyKey(values: string[] | undefined): string | undefined {
  if (values === undefined) return undefined;
  const [key] = values;
  if (values.length !== 1 || key === undefined || !IDEMPOTENCY_KEY.test(key)) {
    throw invalidRequest([
      {
        header: "Idempotency-Key",
        detail:
          values.length > 1
            ? "send exactly one Idempotency-Key header"
            : "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)",
      },
    ]);
  }
  return key;
}

// ---------- POST /restock ----------

const stockLevel = z
  .number({ error: `each stock level must be an integer from 0 to ${MAX_STOCK_LEVEL}` })
  .int(`each stock level must be an integer from 0 to ${MAX_STOCK_LEVEL}`)
  .min(0, `each stock level must be an integer from 0 to ${MAX_STOCK_LEVEL}`)
  .max(MAX_STOCK_LEVEL, `each stock level must be an integer from 0 to ${MAX_STOCK_LEVEL}`);

const restockBody = z
  .record(z.string().regex(INGREDIENT_NAME, `ingredient names must be ${NAME_RULE}`), stockLevel, {
    error: 'the body must be a JSON object of stock levels, e.g. {"cheese": 50}',
  })
  .refine((levels) => !Array.isArray(levels), {
    error: 'the body must be a JSON object of stock levels, e.g. {"cheese": 50}',
  })
  .refine((levels) => Object.keys(levels).length >= 1, {
    error: 'name at least one ingredient, e.g. {"cheese": 50}; send no body to reset the stall',
  })
  .refine((levels) => Object.keys(levels).length <= MAX_RESTOCK_ENTRIES, {
    error: `at most ${MAX_RESTOCK_ENTRIES} ingredients per restock`,
  });

/** Stock levels to set, sorted by name (the order rows are locked in). */
export function parseRestockBody(body: unknown): Item[] {
  if (Array.isArray(body)) {
    throw invalidRequest([
      {
        pointer: "",
        detail: 'the body must be a JSON object of stock levels, e.g. {"cheese": 50}',
      },
    ]);
  }
  const levels = parse(restockBody, body, "body");
  return Object.entries(levels)
    .map(([ingredient, quantity]) => ({ ingredient, quantity }))
    .sort((a, b) => compareNames(a.ingredient, b.ingredient));
}

// ---------- GET /orders, GET /orders/:id ----------

const ordersQuery = z.strictObject({
  customer: customer.optional(),
  limit: z
    .string({ error: `limit must be an integer from 1 to ${MAX_ORDERS_LIMIT}` })
    .regex(/^(100|[1-9][0-9]?)$/, `limit must be an integer from 1 to ${MAX_ORDERS_LIMIT}`)
    .transform(Number)
    .optional(),
});

export interface OrdersQuery {
  customer?: string;
  limit: number;
}

export function parseOrdersQuery(query: unknown): OrdersQuery {
  const { customer, limit } = parse(ordersQuery, query, "query");
  return { ...(customer === undefined ? {} : { customer }), limit: limit ?? DEFAULT_ORDERS_LIMIT };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseOrderId(id: string): string {
  if (!UUID.test(id)) {
    throw invalidRequest([{ parameter: "id", detail: "order ids are UUIDs" }]);
  }
  return id.toLowerCase();
}

// ---------- zod issues → RFC 9457 errors ----------

export function parse<T extends z.ZodType>(
  schema: T,
  input: unknown,
  where: "body" | "query",
): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw invalidRequest(result.error.issues.flatMap((issue) => toFieldErrors(issue, where)));
}

function toFieldErrors(issue: z.core.$ZodIssue, where: "body" | "query"): FieldError[] {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) =>
      locate(
        [...path, key],
        where,
        `unknown ${where === "query" ? "parameter" : "field"} "${clip(key)}"`,
      ),
    );
  }
  if (issue.code === "invalid_key") {
    return [
      locate(
        path,
        where,
        `"${clip(path.at(-1) ?? "")}": ${issue.issues[0]?.message ?? issue.message}`,
      ),
    ];
  }
  return [locate(path, where, issue.message)];
}

function locate(path: string[], where: "body" | "query", detail: string): FieldError {
  if (where === "query") return { parameter: clip(path[0] ?? ""), detail };
  return {
    pointer: path.map((p) => `/${clip(p).replace(/~/g, "~0").replace(/\//g, "~1")}`).join(""),
    detail,
  };
}

/** Never echo a 10 KB field name back at the client. */
function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
