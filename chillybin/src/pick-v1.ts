/**
 * v1: `GET /pick?name=cheese&quantity=2` — the original's one-ingredient pick, deprecated and kept
 * beside /v2/pick until its traffic (chillybin_v1_pick_calls_total) reaches zero. Foxtrot step 3
 * deletes this file and the one line in app.ts that mounts it; nothing else imports it.
 */
import type { Express } from "express";
import type pg from "pg";
import { deprecated, HttpProblem, type Metrics, methodNotAllowed, z } from "tpi";
import {
  header,
  ingredientNameSchema,
  type OpenApi,
  problem,
  ref,
  reply,
  shortage,
  typed,
  unavailable,
} from "./openapi";
import { type Shortage, unknownIngredients } from "./problems";
import type { StockFeed } from "./stock-feed";
import { ingredientName, parse, QUANTITY_RULE } from "./validation";

/** RFC 9745 Deprecation (since when) and RFC 8594 Sunset (until when). */
export const V1_DEPRECATED_AT = new Date(Date.UTC(2026, 10, 1));
export const V1_SUNSET_AT = new Date(Date.UTC(2027, 5, 30));

export interface PickV1Deps {
  pool: pg.Pool;
  metrics: Metrics;
  feed: StockFeed;
  openapi: OpenApi;
}

export function mountPickV1(app: Express, { pool, metrics, feed, openapi }: PickV1Deps): void {
  openapi.add(describePickV1());
  const deprecation = deprecated({
    metrics,
    counter: "chillybin_v1_pick_calls_total",
    help: "Calls to the deprecated GET /pick, by caller (User-Agent product token). Zero for long enough means v1 can be deleted.",
    deprecatedAt: V1_DEPRECATED_AT,
    sunsetAt: V1_SUNSET_AT,
    successor: "/v2/pick",
    knownCallers: KNOWN_CALLERS,
  });
  app.head("/pick", deprecation, methodNotAllowed(["GET"])); // HEAD must never pick
  app.get("/pick", deprecation, async (req, res) => {
    const item = parsePickQuery(req.query);
    const outcome = await pickOne(pool, item);
    if (outcome.status === "unknown") throw unknownIngredients([item.ingredient]);
    if (outcome.status === "short") {
      throw gone({
        ingredient: item.ingredient,
        requested: item.quantity,
        available: outcome.available,
      });
    }
    feed.wrote(outcome.xid);
    res.type("text/plain").send("ok");
  });
  app.all("/pick", deprecation, methodNotAllowed(["GET"]));
}

// ---------- the query ----------

const QUANTITY_PARAM = /^(100|[1-9][0-9]?)$/;

// A state-changing GET does not guess: quantity is required (the original answered 400 too).
const pickQuery = z.strictObject({
  name: ingredientName("name"),
  quantity: z
    .string({
      error: (iss) =>
        iss.input === undefined ? "quantity is required" : `quantity must be ${QUANTITY_RULE}`,
    })
    .regex(QUANTITY_PARAM, `quantity must be ${QUANTITY_RULE}`)
    .transform(Number),
});

function parsePickQuery(query: unknown): { ingredient: string; quantity: number } {
  const { name, quantity } = parse(pickQuery, query, "query");
  return { ingredient: name, quantity };
}

// ---------- the statement ----------

type PickOutcome =
  | { status: "picked"; left: number; xid: string }
  | { status: "unknown" }
  | { status: "short"; available: number };

// The original's statement, kept verbatim (the bench runs it under pgbench as the baseline).
const PICK_ONE =
  "UPDATE ingredients SET quantity = quantity - $2 WHERE name = $1 AND quantity >= $2 RETURNING quantity";

/**
 * One ingredient in one statement, which also announces the pick to every instance's GET /events.
 * The WHERE clause and the CHECK (quantity >= 0) make overselling impossible without an explicit
 * transaction; only failures pay a second query.
 */
async function pickOne(
  pool: pg.Pool,
  item: { ingredient: string; quantity: number },
): Promise<PickOutcome> {
  const picked = await pool.query<{ quantity: number; xid: string }>({
    name: "pick-one",
    text: `WITH picked AS (${PICK_ONE})
           SELECT quantity, txid_current()::text AS xid, pg_notify('stock_changed', $3) AS announced
           FROM picked`,
    values: [
      item.ingredient,
      item.quantity,
      JSON.stringify({ pick: { via: "v1", items: [item] } }),
    ],
  });
  const row = picked.rows[0];
  if (row) return { status: "picked", left: row.quantity, xid: row.xid };
  const current = await pool.query<{ quantity: number }>({
    name: "ingredient-quantity",
    text: "SELECT quantity FROM ingredients WHERE name = $1",
    values: [item.ingredient],
  });
  const found = current.rows[0];
  return found ? { status: "short", available: found.quantity } : { status: "unknown" };
}

/**
 * 410 Gone: the original's status for "ran out", kept for its clients. v1 is the legacy dialect
 * with no typed problems of its own, so about:blank and the status phrase, plus `short`.
 */
function gone(short: Shortage): HttpProblem {
  return new HttpProblem(410, "Gone", {
    detail: `Not enough ${short.ingredient} (${short.available} left, ${short.requested} wanted); nothing was picked.`,
    extensions: { short: [short] },
  });
}

// ---------- who still calls it ----------

/** Callers named in chillybin_v1_pick_calls_total; any other is "other". */
export const KNOWN_CALLERS = [
  "jafflr",
  "curl",
  "wget",
  "go-http-client",
  "python-requests",
  "node",
  "undici",
  "autocannon",
  "k6",
];

// ---------- its part of GET /openapi.json ----------

function describePickV1() {
  const v1Headers = {
    Deprecation: header("Deprecation"),
    Sunset: header("Sunset"),
    Link: header("Link"),
    "Cache-Control": header("Cache-Control"),
  };
  return {
    paths: {
      "/pick": {
        get: {
          operationId: "pickV1",
          deprecated: true,
          summary: "v1 (the original's dialect): pick one ingredient. Use POST /v2/pick.",
          description: `Deprecated since ${V1_DEPRECATED_AT.toISOString()}, sunset ${V1_SUNSET_AT.toISOString()}. Every answer carries the deprecation headers; calls are counted by caller in chillybin_v1_pick_calls_total.`,
          parameters: [
            { name: "name", in: "query", required: true, schema: ingredientNameSchema },
            {
              name: "quantity",
              in: "query",
              required: true,
              schema: { type: "string", pattern: "^(100|[1-9][0-9]?)$" },
            },
          ],
          responses: {
            200: reply("Picked.", { "text/plain": { schema: { const: "ok" } } }, v1Headers),
            400: reply("Invalid request.", problem(ref("InvalidRequest")), v1Headers),
            410: reply(
              "Not enough stock; nothing picked (the original's status).",
              problem(ref("Gone")),
              v1Headers,
            ),
            422: reply(
              "chillybin does not stock this ingredient.",
              problem(ref("UnknownIngredient")),
              v1Headers,
            ),
            503: { ...unavailable, headers: { ...unavailable.headers, ...v1Headers } },
          },
        },
        head: {
          operationId: "headPickV1",
          deprecated: true,
          summary: "HEAD never picks.",
          responses: {
            405: reply("Method not allowed.", problem(ref("BlankProblem")), {
              Allow: header("Allow"),
              ...v1Headers,
            }),
          },
        },
      },
    },
    schemas: {
      Gone: typed("about:blank", 410, "Gone", { short: shortage }, ["short"]),
    },
    headers: {
      Deprecation: {
        description: "RFC 9745: deprecated since (@epoch-seconds).",
        schema: { type: "string", pattern: "^@[0-9]+$" },
      },
      Sunset: {
        description: "RFC 8594: the date v1 may go away (HTTP-date).",
        schema: { type: "string" },
      },
      Link: {
        description: 'The successor: </v2/pick>; rel="successor-version".',
        schema: { type: "string" },
      },
    },
  };
}
