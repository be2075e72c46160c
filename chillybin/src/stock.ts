import { createHash, timingSafeEqual } from "node:crypto";
import type { Request, RequestHandler } from "express";
import type pg from "pg";
import { HttpProblem, parseRequest, z } from "tpi";
import * as p from "./problems";

/** Short lowercase words, as jafflr's menu uses them; the database stores nothing else. */
const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const NAME_RULE = "1-32 lowercase letters, digits, - or _, starting with a letter";
/** A field's message: "is required" when missing, else what it must be. */
export const rule = (what: string, must: string) => ({
  error: (i: { input: unknown }) =>
    `${what} ${i.input === undefined ? "is required" : `must be ${must}`}`,
});
export const ingredientName = (what: string) => z.string(rule(what, NAME_RULE)).regex(NAME);

/** Code-unit order, the same as PostgreSQL's "C" collation that every multi-row lock uses. */
export const compareNames = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Ingredient name → quantity on hand, in name order. */
const Stock = z.record(z.string(), z.number().int().min(0)).openapi("Stock");
type Stock = z.infer<typeof Stock>;

/** What `POST /restock` with no body resets to: jafflr's menu at 10, as the first migration seeds. */
const MENU = "bread cheese ham pineapple sheese tomato vegemite".split(" ");
export const DEFAULT_STOCK = Object.freeze(Object.fromEntries(MENU.map((n) => [n, 10])));

const LEVEL_RULE = "each stock level must be an integer from 0 to 10000";
const RestockBody = z
  .record(
    z.string().regex(NAME, `ingredient names must be ${NAME_RULE}`),
    z.number({ error: LEVEL_RULE }).int().min(0).max(10_000),
    { error: 'the body must be a JSON object of stock levels, e.g. {"cheese": 50}' },
  )
  .refine((levels) => Object.keys(levels).length >= 1, {
    error: 'name at least one ingredient, e.g. {"cheese": 50}; send no body to reset the stall',
  })
  .refine((levels) => Object.keys(levels).length <= 100, "at most 100 ingredients per restock")
  .openapi({ minProperties: 1, maxProperties: 100, description: `Names: ${NAME_RULE}.` });

/** The levels, sorted as rows are locked; undefined (reset) without a body, as `curl -X POST` sends. */
export function parseRestock(req: Request): Stock | undefined {
  const length = Number(req.headers["content-length"] ?? 0); // Node refuses a malformed one
  if (req.headers["transfer-encoding"] === undefined && !(length > 0)) return;
  if (!req.is(["application/json", "application/*+json"])) {
    throw new HttpProblem(415, "Unsupported Media Type", {
      detail: "Send stock levels as JSON with Content-Type: application/json, or no body to reset.",
    });
  }
  const levels = Object.entries(parseRequest(RestockBody, req.body, "body"));
  return Object.fromEntries(levels.sort(([a], [b]) => compareNames(a, b)));
}

export async function listStock(db: Pick<pg.Pool | pg.Client, "query">): Promise<Stock> {
  const { rows } = await db.query<{ name: string; quantity: number }>({
    name: "list-stock",
    text: `SELECT name, quantity FROM ingredients ORDER BY name COLLATE "C"`,
  });
  return Object.fromEntries(rows.map((r) => [r.name, r.quantity]));
}

/** Upserts in name order, like every other multi-row lock (no deadlock), and reads the whole stock back. */
export async function setStock(pool: pg.Pool, levels: Stock = DEFAULT_STOCK) {
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
    values: [Object.keys(levels), Object.values(levels)],
  });
  const stock: Stock = Object.fromEntries(rows.map((r) => [r.name, r.quantity]));
  return { stock, xid: rows[0]?.xid };
}

const challenge = { "WWW-Authenticate": 'Bearer realm="chillybin"' };
const stock = (description: string) => ({ description, content: p.json(Stock) });
p.route("GET /", "getStock", "The whole stock: ingredient name → quantity, in name order.", {
  responses: { 200: stock("The stock."), 503: p.responses.forQuery[503] },
});
p.route("POST /restock", "restock", "No body: reset the defaults; JSON: set those levels.", {
  security: [{}, { adminToken: [] }],
  request: { body: { required: false, content: p.json(RestockBody) } },
  responses: {
    200: stock("The whole stock right after."),
    401: {
      ...p.problems("CHILLYBIN_ADMIN_TOKEN is set and no Bearer token was sent.", p.Unauthorized),
      headers: { "WWW-Authenticate": p.header(challenge["WWW-Authenticate"]) },
    },
    403: p.problems("The Bearer token is not the admin token.", p.Forbidden),
    ...p.responses.forJson,
  },
});
p.registry.registerComponent("securitySchemes", "adminToken", { type: "http", scheme: "bearer" });

export function requireAdmin(token: string | undefined): RequestHandler {
  if (token === undefined) return (_req, _res, next) => next();
  const sha256 = (s: string) => createHash("sha256").update(s).digest();
  const expected = sha256(token);
  return (req, _res, next) => {
    const match = /^Bearer +(\S+) *$/i.exec(req.get("Authorization") ?? "");
    const why = "Restocking needs Authorization: Bearer <CHILLYBIN_ADMIN_TOKEN>.";
    if (!match) throw p.fail(p.Unauthorized, why, { headers: challenge });
    // Hashed first, so the comparison is constant-time whatever the lengths.
    if (timingSafeEqual(sha256(match[1] as string), expected)) return next();
    throw p.fail(p.Forbidden, "That token may not restock.");
  };
}
