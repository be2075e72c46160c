/**
 * Bad input gets a 4xx problem and changes nothing: a table of malformed requests (media types,
 * encodings, sizes, framing, methods, routes, auth: what only a real process shows; each field's
 * rules are the services' own tests), then seeded random invalid requests (fast-check) that
 * plant a poison in a plausible request. Each answer must be a 4xx application/problem+json,
 * never a 5xx or a stack trace, and the stock and the orders must be exactly as they were.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type RawReply, type SendOptions, send, sendRaw } from "./load";

export type Service = "chillybin" | "jafflr";
/** What is sent (node:http, or raw bytes for what it refuses to send) and the status it must get. */
export type Row = [Service, string, SendOptions | Buffer, number | number[]];
export type Generated = [Service, SendOptions];

export const ADMIN_TOKEN = "reliability-admin-token-0123456789";
const AUTH = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const JSON_TYPE = { "Content-Type": "application/json" };
const ORDER = JSON.stringify({ customer: "gita", items: [{ ingredient: "cheese", quantity: 1 }] });
const TOASTIE = JSON.stringify({ customer: "gordon", ingredients: ["cheese"] });
const KB20 = "x".repeat(20 * 1024);
const DEEP = `${'{"a":'.repeat(2_000)}1${"}".repeat(2_000)}`;

export const get = (path: string, headers?: Record<string, string>) => ({ path, headers });
export const post = (path: string, body = "", headers: SendOptions["headers"] = {}) => ({
  method: "POST",
  path,
  body,
  headers,
});
const json = (path: string, body: unknown, headers = {}) =>
  post(path, typeof body === "string" ? body : JSON.stringify(body), { ...JSON_TYPE, ...headers });
/** Request bytes with Host, Content-Length and Connection: close. */
const raw = (line: string, headers: string[], body = "") =>
  Buffer.from(
    [
      line,
      "Host: x",
      ...headers,
      `Content-Length: ${body.length}`,
      "Connection: close",
      "",
      body,
    ].join("\r\n"),
    "latin1",
  );

export const CORPUS: Row[] = [
  ["chillybin", "v2: no Content-Type", post("/v2/pick", ORDER), 415],
  ["chillybin", "v2: text/plain", post("/v2/pick", ORDER, { "Content-Type": "text/plain" }), 415],
  [
    "chillybin",
    "v2: charset latin1",
    json("/v2/pick", ORDER, { "Content-Type": "application/json; charset=latin1" }),
    415,
  ],
  [
    "chillybin",
    "v2: claims gzip, is not",
    json("/v2/pick", ORDER, { "Content-Encoding": "gzip" }),
    400,
  ],
  [
    "chillybin",
    "v2: unknown encoding",
    json("/v2/pick", ORDER, { "Content-Encoding": "x-squash" }),
    415,
  ],
  ["chillybin", "v2: malformed JSON", json("/v2/pick", '{"customer":"gita","items":['), 400],
  ["chillybin", "v2: 20 KB body", json("/v2/pick", { note: KB20 }), 413],
  ["chillybin", "v2: 2000-deep object", json("/v2/pick", DEEP), 400],
  [
    "chillybin",
    "v2: __proto__ key",
    json("/v2/pick", ORDER.replace("{", '{"__proto__":{"a":1},')),
    400,
  ],
  ["chillybin", "v2: unknown ingredient", json("/v2/pick", ORDER.replace("cheese", "caviar")), 422],
  [
    "chillybin",
    "v2: Idempotency-Key twice",
    post("/v2/pick", ORDER, [
      ["Content-Type", "application/json"],
      ["Idempotency-Key", "a"],
      ["Idempotency-Key", "b"],
    ]),
    400,
  ],
  [
    "chillybin",
    "v2: Latin-1 Idempotency-Key",
    raw(
      "POST /v2/pick HTTP/1.1",
      ["Content-Type: application/json", "Idempotency-Key: caf\xe9"],
      ORDER,
    ),
    400,
  ],
  ["chillybin", "v2: GET", get("/v2/pick"), 405],
  ["chillybin", "restock: no Authorization", post("/restock"), 401],
  [
    "chillybin",
    "restock: wrong token",
    post("/restock", "", { Authorization: "Bearer not-it" }),
    403,
  ],
  ["chillybin", "restock: Basic", post("/restock", "", { Authorization: "Basic YTph" }), 401],
  [
    "chillybin",
    "restock: token and junk",
    post("/restock", "", { Authorization: `${AUTH.Authorization} x` }),
    401,
  ],
  [
    "chillybin",
    "restock: __proto__ key",
    json("/restock", '{"__proto__":{"cheese":1}}', AUTH),
    400,
  ],
  ["chillybin", "orders: customer as an array", get("/orders?customer[]=gita"), 400],
  ["chillybin", "orders: POST", json("/orders", {}), 405],
  ["chillybin", "order: id not a UUID", get("/orders/42"), 400],
  ["chillybin", "order: unknown UUID", get("/orders/00000000-0000-4000-8000-000000000000"), 404],
  ["chillybin", "order: broken percent-encoding", get("/orders/%ZZ"), 400],
  ["chillybin", "POST /", json("/", { cheese: 1000 }), 405],
  ["chillybin", "unknown route", get("/admin"), 404],
  ["chillybin", "path traversal", get("/../../etc/passwd"), 404],
  [
    "chillybin",
    "a problem though HTML is asked for",
    get("/orders/42", { Accept: "text/html" }),
    400,
  ],
  ["jafflr", "toastie: neither body nor query", post("/toastie"), 400],
  [
    "jafflr",
    "toastie: body and query",
    { ...json("/toastie", TOASTIE), path: "/toastie?i=cheese" },
    400,
  ],
  ["jafflr", "toastie: 20 KB body", json("/toastie", { note: KB20 }), 413],
  ["jafflr", "toastie: 2000-deep object", json("/toastie", DEEP), 400],
  [
    "jafflr",
    "toastie: form-urlencoded",
    post("/toastie", "i=cheese", { "Content-Type": "application/x-www-form-urlencoded" }),
    415,
  ],
  [
    "jafflr",
    "toastie: claims gzip, is not",
    json("/toastie", TOASTIE, { "Content-Encoding": "gzip" }),
    400,
  ],
  [
    "jafflr",
    "toastie: Latin-1 Idempotency-Key",
    raw(
      "POST /toastie HTTP/1.1",
      ["Content-Type: application/json", "Idempotency-Key: cl\xe9"],
      TOASTIE,
    ),
    400,
  ],
  [
    "jafflr",
    "toastie query: doneness twice",
    post("/toastie?i=cheese&doneness=light&doneness=burnt"),
    400,
  ],
  ["jafflr", "toastie query: broken percent-encoding", post("/toastie?i=%ZZ"), 400],
  ["jafflr", "toastie query: i as an object", post("/toastie?i[a]=cheese"), 400],
  ["jafflr", "toastie: GET without cheese", get("/toastie?i=ham"), 400],
  ["jafflr", "toastie: PATCH", { method: "PATCH", path: "/toastie?i=cheese" }, 405],
  [
    "jafflr",
    "toastie: unknown ingredient, gordon",
    json("/toastie", { customer: "gordon", ingredients: ["caviar", "cheese"] }),
    422,
  ],
  [
    "jafflr",
    "toastie: unknown ingredient, gita",
    json("/toastie", { customer: "gita", ingredients: ["cheese", "caviar"] }),
    422,
  ],
  ["jafflr", "POST /", json("/", {}), 405],
  ["jafflr", "unknown route", get("/grill/settings"), 404],
  // Node's HTTP parser refuses these before the application: a bare 400/431, not a problem.
  ...(["chillybin", "jafflr"] as const).flatMap((service): Row[] => [
    [service, "parser: NUL in a header", raw("GET / HTTP/1.1", ["X-Note: a\0b"]), 400],
    [service, "parser: space in the target", raw("GET /a b HTTP/1.1", []), 400],
    [service, "parser: no Host", Buffer.from("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), 400],
    [
      service,
      "parser: Content-Length and chunked (smuggling)",
      raw("POST /v2/pick HTTP/1.1", ["Transfer-Encoding: chunked"], "0\r\n\r\n"),
      400,
    ],
    [service, "parser: 20 KB header", raw("GET / HTTP/1.1", [`X-Big: ${KB20}`]), 431],
  ]),
];

// ── random invalid requests: a plausible request with at least one poison planted ──

const NAMES = ["bread", "cheese", "ham", "tomato", "vegemite"];
const name = fc.constantFrom(...NAMES);
const customer = fc.constantFrom("gita", "gordon", "anna-maria", "Ω chef 👩‍🍳", "o'brien");
const badQuantity = fc.oneof(
  fc.integer({ max: 0 }),
  fc.integer({ min: 101 }),
  fc.double({ noInteger: true }),
  fc.constantFrom(null, "1", [], {}, 1e308),
);
const badName = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !/^[a-z][a-z0-9_-]{0,31}$/.test(s)),
  fc.constantFrom(
    "Cheese",
    " cheese",
    "a".repeat(33),
    "ch\0eese",
    "cheese'; DROP TABLE ingredients; --",
  ),
  fc.constantFrom(null, 7, ["cheese"]),
);
const badCustomer = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    " gita",
    "gita ",
    "gi\0ta",
    "gita\r\nX-Admin: 1",
    "\u202e",
    "\u2028",
    42,
    null,
  ),
  fc.string({ unit: "grapheme", minLength: 65, maxLength: 80 }).filter((s) => [...s].length > 64),
);
/** A key the endpoint does not know (no brackets: the query parser reads `a[b]` as `a`). */
const unknownKey = (known: string[]) =>
  fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((k) => !known.includes(k) && k !== "__proto__" && !/[[\]]/.test(k));
const notAnObject = fc.oneof(
  fc.array(fc.jsonValue(), { maxLength: 3 }),
  fc.string({ maxLength: 5 }),
  fc.constant(null),
);
type Poison = (value: Record<string, unknown>) => unknown;
const set =
  (key: string) =>
  (value: unknown): Poison =>
  (o) => ({ ...o, [key]: value });
const extraKey = (known: string[]) =>
  fc.tuple(unknownKey(known), fc.jsonValue()).map(([k, v]) => set(k)(v));
/** How the body is sent: as JSON (the poison is in it), cut short, or as another media type. */
const encoding = fc.oneof(
  { weight: 4, arbitrary: fc.constant((text: string) => [text, "application/json"]) },
  {
    weight: 1,
    arbitrary: fc
      .nat()
      .map((cut) => (text: string) => [
        text.slice(0, 1 + (cut % (text.length - 1))),
        "application/json",
      ]),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("text/plain", "application/xml")
      .map((type) => (text: string) => [text, type]),
  },
);
const body = (
  service: Service,
  path: string,
  valid: fc.Arbitrary<Record<string, unknown>>,
  poisons: fc.Arbitrary<Poison>[],
  headers = {},
) =>
  fc
    .tuple(
      valid,
      fc.oneof(
        ...poisons,
        notAnObject.map((v) => () => v),
      ),
      encoding,
    )
    .map(([value, poison, encode]): Generated => {
      const [text = "", type = ""] = encode(JSON.stringify(poison(value)));
      return [service, post(path, text, { "Content-Type": type, ...headers })];
    });
const query = (
  service: Service,
  method: string,
  path: string,
  valid: fc.Arbitrary<[string, string][]>,
  poisons: fc.Arbitrary<(p: [string, string][]) => [string, string][]>[],
) =>
  fc
    .tuple(valid, fc.oneof(...poisons))
    .map(
      ([params, poison]): Generated => [
        service,
        { method, path: `${path}?${new URLSearchParams(poison(params))}` },
      ],
    );
const addParam = (key: fc.Arbitrary<string>, value: fc.Arbitrary<string>) =>
  fc.tuple(key, value).map(
    ([k, v]) =>
      (p: [string, string][]) =>
        [...p, [k, v]] as [string, string][],
  );

export { addParam, query, unknownKey };

const items = fc.array(fc.record({ ingredient: name, quantity: fc.integer({ min: 1, max: 3 }) }), {
  minLength: 1,
  maxLength: 4,
});
const itemPoison = (field: string, bad: fc.Arbitrary<unknown>) =>
  fc.tuple(fc.nat(), bad).map(
    ([k, v]): Poison =>
      (o) => {
        const list = [...(o.items as object[])];
        list[k % list.length] = { ...list[k % list.length], [field]: v };
        return { ...o, items: list };
      },
  );
const toastie = fc.record({
  customer,
  ingredients: fc.array(name, { maxLength: 3 }).map((rest) => ["cheese", ...rest]),
  doneness: fc.constantFrom("light", "medium", "burnt"),
});

export const INVALID: Record<string, fc.Arbitrary<Generated>> = {
  "chillybin POST /v2/pick": body("chillybin", "/v2/pick", fc.record({ customer, items }), [
    badCustomer.map(set("customer")),
    itemPoison("quantity", badQuantity),
    itemPoison("ingredient", badName),
    extraKey(["customer", "items"]),
    fc
      .constantFrom([], "cheese", Array(21).fill({ ingredient: "cheese", quantity: 1 }))
      .map(set("items")),
  ]),
  "chillybin POST /restock": body(
    "chillybin",
    "/restock",
    fc.dictionary(name, fc.nat(100), { minKeys: 1, maxKeys: 3 }),
    [
      fc
        .tuple(
          name,
          fc.oneof(
            fc.integer({ max: -1 }),
            fc.integer({ min: 10_001 }),
            fc.constantFrom(null, "10", 1.5),
          ),
        )
        .map(([k, v]) => set(k)(v)),
      badName
        .filter((n): n is string => typeof n === "string" && n !== "__proto__")
        .map((k) => set(k)(1)),
      fc.constant(() => ({})),
    ],
    AUTH,
  ),
  "chillybin GET /orders": query("chillybin", "GET", "/orders", fc.constant([]), [
    addParam(
      fc.constant("limit"),
      fc.string({ maxLength: 5 }).filter((s) => !/^(100|[1-9][0-9]?)$/.test(s)),
    ),
    addParam(fc.constant("customer"), fc.constantFrom("", " gita", "x".repeat(65))),
    addParam(unknownKey(["customer", "limit"]), fc.string({ maxLength: 8 })),
  ]),
  "jafflr POST /toastie (JSON)": body("jafflr", "/toastie", toastie, [
    badCustomer.map(set("customer")),
    fc
      .oneof(
        fc
          .string({ maxLength: 8 })
          .filter((s) => !["light", "medium", "well-done", "burnt"].includes(s)),
        fc.constantFrom(5, null),
      )
      .map(set("doneness")),
    fc.tuple(fc.nat(), badName).map(
      ([k, bad]): Poison =>
        (o) => ({ ...o, ingredients: (o.ingredients as unknown[]).with(k % 2, bad) }),
    ),
    fc.constantFrom([], ["ham"], Array(11).fill("cheese"), "cheese").map(set("ingredients")),
    extraKey(["customer", "ingredients", "doneness"]),
  ]),
  "jafflr POST /toastie (query)": query(
    "jafflr",
    "POST",
    "/toastie",
    toastie.map((t) => [
      ...t.ingredients.map((i): [string, string] => ["i", i]),
      ["customer", t.customer],
    ]),
    [
      addParam(
        fc.constant("i"),
        fc
          .string({ unit: "grapheme", maxLength: 40 })
          .filter((s) => !/^[a-z][a-z0-9_-]{0,31}$/.test(s)),
      ),
      addParam(fc.constantFrom("doneness", "customer"), fc.constant("x")).map(
        (f) => (p: [string, string][]) => f(f(p)),
      ),
      addParam(fc.constantFrom("i[x]", "doneness[]"), fc.constant("cheese")),
      addParam(unknownKey(["i", "customer", "doneness"]), fc.string({ maxLength: 8 })),
    ],
  ),
};

/**
 * The table's and the generators' tests. `urls` and `books` are read when the tests run: the
 * services' addresses, and what must not change (stock and orders).
 */
export function badInputTests(
  stall: () => { urls: Record<Service, string>; books: () => Promise<unknown> },
  rows: Row[],
  generators: Record<string, fc.Arbitrary<Generated>>,
) {
  const unchanged = async (request: () => Promise<RawReply>, expected?: number[]) => {
    const before = await stall().books();
    assertProblem(await request(), expected);
    assert.deepEqual(await stall().books(), before, "stock and orders unchanged");
  };
  describe("bad input gets a 4xx problem and changes nothing", () => {
    for (const [service, title, request, expect] of rows) {
      test(`${service}: ${title} → ${expect}`, () => {
        const url = stall().urls[service];
        const sending = () =>
          Buffer.isBuffer(request) ? sendRaw(url, request) : send(url, request);
        return unchanged(sending, [expect].flat());
      });
    }
    for (const [endpoint, generator] of Object.entries(generators)) {
      test(`${endpoint}: random invalid requests (fast-check, seeded)`, () =>
        fc.assert(
          fc.asyncProperty(generator, ([service, request]) =>
            unchanged(() => send(stall().urls[service], request)),
          ),
          { seed: 20251125, numRuns: 25 },
        ));
    }
  });
}

/** The expected 4xx (any 4xx when not given), as a problem unless node's parser answered. */
function assertProblem(reply: RawReply, expected?: number[]) {
  const got = `${reply.status || reply.error} ${reply.headers["content-type"]} ${reply.text.slice(0, 400)}`;
  assert.ok(reply.status >= 400 && reply.status < 500, `a 4xx, never a 5xx: ${got}`);
  if (expected) assert.ok(expected.includes(reply.status), `expected ${expected}, got ${got}`);
  assert.doesNotMatch(reply.text, /\n\s+at |node_modules|\.[jt]s:\d+/, `no stack trace: ${got}`);
  // Node's parser answers a bare 400/431; a HEAD answer has no body to read.
  if (reply.headers["content-type"] || reply.text) {
    assert.match(reply.headers["content-type"] ?? "", /^application\/problem\+json/, got);
  }
  if (reply.text) assert.equal(reply.json?.status, reply.status, got);
  if (reply.status === 405) assert.ok(reply.headers.allow, `405 says what is allowed: ${got}`);
  if (reply.status === 401) assert.match(reply.headers["www-authenticate"] ?? "", /^Bearer/, got);
}
