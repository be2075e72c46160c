/**
 * v1: `GET /pick?name=cheese&quantity=2`, deprecated, kept until chillybin_v1_pick_calls_total
 * reaches zero. Foxtrot step 3 deletes this file and the one line in app.ts that mounts it.
 */
import type { Express } from "express";
import { deprecated, methodNotAllowed, parseRequest, z } from "tpi";
import type { AppDeps } from "./app";
import { QUANTITY_RULE } from "./orders";
import * as p from "./problems";
import { ingredientName, rule } from "./stock";

/** RFC 9745 Deprecation (since when) and RFC 8594 Sunset (until when). */
export const V1_DEPRECATED_AT = new Date(Date.UTC(2026, 10, 1));
export const V1_SUNSET_AT = new Date(Date.UTC(2027, 5, 30));

// A state-changing GET does not guess: quantity is required (the original answered 400 too).
const PickQuery = z.strictObject({
  name: ingredientName("name"),
  quantity: z.string(rule("quantity", QUANTITY_RULE)).regex(/^(100|[1-9][0-9]?)$/),
});
/** 410, the original's status for "ran out". v1 has no typed problems: about:blank. */
const Gone = p.problem(410, "Gone", { short: p.shortage }, "about:blank");

// The original's statement, kept verbatim (the bench runs it under pgbench as the baseline).
const PICK_ONE =
  "UPDATE ingredients SET quantity = quantity - $2 WHERE name = $1 AND quantity >= $2 RETURNING quantity";

export function mountPickV1(app: Express, deps: Pick<AppDeps, "pool" | "metrics" | "feed">) {
  const { pool, feed } = deps;
  const deprecation = deprecated({
    metrics: deps.metrics,
    counter: "chillybin_v1_pick_calls_total",
    help: "Calls to the deprecated GET /pick, by caller (User-Agent product token). Zero for long enough means v1 can be deleted.",
    deprecatedAt: V1_DEPRECATED_AT,
    sunsetAt: V1_SUNSET_AT,
    successor: "/v2/pick",
    // Callers named in the counter; any other is "other".
    knownCallers: "jafflr curl wget go-http-client python-requests node undici autocannon k6".split(
      " ",
    ),
  });
  app.head("/pick", deprecation, methodNotAllowed(["GET"])); // HEAD must never pick
  app.get("/pick", deprecation, async (req, res) => {
    const { name: ingredient, quantity } = parseRequest(PickQuery, req.query, "query");
    const item = { ingredient, quantity: Number(quantity) };
    // One statement, which also announces the pick to GET /events; its WHERE clause and the CHECK
    // (quantity >= 0) make overselling impossible. Only a refusal pays a second query.
    const picked = await pool.query<{ xid: string }>({
      name: "pick-one",
      text: `WITH picked AS (${PICK_ONE})
           SELECT quantity, txid_current()::text AS xid, pg_notify('stock_changed', $3) AS announced
           FROM picked`,
      values: [ingredient, item.quantity, JSON.stringify({ pick: { via: "v1", items: [item] } })],
    });
    if (picked.rows[0]) {
      feed.wrote(picked.rows[0].xid);
      return void res.type("text/plain").send("ok");
    }
    const { rows } = await pool.query<{ quantity: number }>({
      name: "ingredient-quantity",
      text: "SELECT quantity FROM ingredients WHERE name = $1",
      values: [ingredient],
    });
    if (!rows[0]) throw p.unknownIngredients([ingredient]);
    const short = { ingredient, requested: item.quantity, available: rows[0].quantity };
    const detail = `Not enough ${ingredient} (${short.available} left, ${short.requested} wanted); nothing was picked.`;
    throw p.fail(Gone, detail, { extensions: { short: [short] } });
  });
  app.all("/pick", deprecation, methodNotAllowed(["GET"]));
}

// Every answer on a deprecated path carries its 200's headers (in the document too), HEAD's 405 as well.
const v1Headers = {
  Deprecation: p.header("RFC 9745: deprecated since (@epoch-seconds).", { pattern: "^@[0-9]+$" }),
  Sunset: p.header("RFC 8594: the date v1 may go away (HTTP-date)."),
  Link: p.header('</v2/pick>; rel="successor-version"'),
  "Cache-Control": p.header("no-store", { const: "no-store" }),
};
p.route("GET /pick", "pickV1", "v1, the original's: pick one ingredient; use POST /v2/pick.", {
  deprecated: true,
  description: `Deprecated since ${V1_DEPRECATED_AT.toISOString()}, sunset ${V1_SUNSET_AT.toISOString()}.`,
  request: { query: PickQuery },
  responses: {
    200: {
      description: "Picked.",
      content: { "text/plain": { schema: z.literal("ok") } },
      headers: v1Headers,
    },
    400: p.problems("Invalid request.", p.InvalidRequest),
    410: p.problems("Not enough stock; nothing picked (the original's status).", Gone),
    422: p.problems("chillybin does not stock this ingredient.", p.UnknownIngredient),
    503: p.unavailable("The database cannot be reached."),
  },
});
