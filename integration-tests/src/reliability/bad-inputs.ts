/**
 * The bad-input corpus: malformed requests for every endpoint of both services — headers,
 * bodies, query strings, methods, encodings, sizes — each with the status it must get. Every one
 * of them must be a 4xx `application/problem+json` answer (never a 5xx) that changes nothing.
 *
 * Most go through node:http (`request`); what node:http refuses to send (Latin-1 or NUL bytes in
 * headers) is written to the socket as bytes (`raw`). `PROTOCOL_ERRORS` are requests node's own
 * HTTP parser rejects before the application sees them.
 */
import type { SendOptions } from "./raw-http";

export type Service = "chillybin" | "jafflr";

export interface BadInput {
  name: string;
  service: Service;
  /** Sent with node:http… */
  request?: SendOptions;
  /** …or as these bytes on a fresh connection. */
  raw?: Buffer;
  /** The status it must get (one of them, when the HTTP spec leaves room). */
  expect: number | number[];
}

/** The admin token the corpus's chillybin is started with (POST /restock needs it). */
export const ADMIN_TOKEN = "reliability-admin-token-0123456789";
const AUTH = { Authorization: `Bearer ${ADMIN_TOKEN}` };
/** A customer whose toasties go through v2 (the test's flag file says so) and one whose do not. */
export const V2_CUSTOMER = "gita";
export const V1_CUSTOMER = "gordon";

const JSON_TYPE = { "Content-Type": "application/json" };
const kb = (n: number) => "x".repeat(n * 1024);
const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
const deepArray = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
export const q = encodeURIComponent;
const VALID_ORDER = { customer: "gita", items: [{ ingredient: "cheese", quantity: 1 }] };

export const get = (path: string, headers?: Record<string, string>): SendOptions => ({
  method: "GET",
  path,
  headers,
});
export const method = (name: string, path: string): SendOptions => ({ method: name, path });
/** A POST whose body is sent exactly as given. */
const post = (
  path: string,
  body: string | Buffer,
  headers: SendOptions["headers"],
): SendOptions => ({
  method: "POST",
  path,
  headers,
  body,
});
/** A POST of `value` as JSON. */
const json = (path: string, value: unknown, headers: Record<string, string> = {}): SendOptions =>
  post(path, JSON.stringify(value), { ...JSON_TYPE, ...headers });
/** An order with one field replaced. */
const order = (patch: Record<string, unknown>) => ({ ...VALID_ORDER, ...patch });
const item = (ingredient: unknown, quantity: unknown) =>
  order({ items: [{ ingredient, quantity }] });
const toastie = (patch: Record<string, unknown>) => ({
  customer: V1_CUSTOMER,
  ingredients: ["cheese"],
  ...patch,
});

/** Request bytes with Host, Connection: close and a correct Content-Length. */
export function rawRequest(
  requestLine: string,
  headers: [string, string][],
  body: Buffer | string = "",
): Buffer {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
  const lines = [
    requestLine,
    "Host: reliability.test",
    ...headers.map(([k, v]) => `${k}: ${v}`),
    ...(payload.length > 0 || /^POST /.test(requestLine)
      ? [`Content-Length: ${payload.length}`]
      : []),
    "Connection: close",
  ];
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), payload]);
}

export const chillybin = (
  name: string,
  request: SendOptions,
  expect: number | number[],
): BadInput => ({
  name,
  service: "chillybin",
  request,
  expect,
});
const jafflr = (name: string, request: SendOptions, expect: number | number[]): BadInput => ({
  name,
  service: "jafflr",
  request,
  expect,
});

export const CORPUS: BadInput[] = [
  // ── chillybin POST /v2/pick: media types and encodings ──
  chillybin("v2: no Content-Type", post("/v2/pick", JSON.stringify(VALID_ORDER), {}), 415),
  chillybin(
    "v2: text/plain",
    post("/v2/pick", JSON.stringify(VALID_ORDER), { "Content-Type": "text/plain" }),
    415,
  ),
  chillybin(
    "v2: form-urlencoded",
    post("/v2/pick", "customer=gita&ingredient=cheese&quantity=1", {
      "Content-Type": "application/x-www-form-urlencoded",
    }),
    415,
  ),
  chillybin(
    "v2: multipart",
    post("/v2/pick", "--b\r\n\r\n{}\r\n--b--", {
      "Content-Type": "multipart/form-data; boundary=b",
    }),
    415,
  ),
  chillybin(
    "v2: charset latin1",
    post("/v2/pick", JSON.stringify(VALID_ORDER), {
      "Content-Type": "application/json; charset=latin1",
    }),
    415,
  ),
  // UTF-16 is a charset the JSON parser supports, so the UTF-8 bytes decode to garbage: 400 or 415 both say "not like that".
  chillybin(
    "v2: charset utf-16 with a UTF-8 body",
    post("/v2/pick", JSON.stringify(VALID_ORDER), {
      "Content-Type": "application/json; charset=utf-16",
    }),
    [400, 415],
  ),
  chillybin(
    "v2: claims gzip, is not",
    post("/v2/pick", JSON.stringify(VALID_ORDER), { ...JSON_TYPE, "Content-Encoding": "gzip" }),
    400,
  ),
  chillybin(
    "v2: claims brotli, is not",
    post("/v2/pick", JSON.stringify(VALID_ORDER), { ...JSON_TYPE, "Content-Encoding": "br" }),
    400,
  ),
  chillybin(
    "v2: unknown Content-Encoding",
    post("/v2/pick", JSON.stringify(VALID_ORDER), { ...JSON_TYPE, "Content-Encoding": "x-squash" }),
    415,
  ),
  chillybin("v2: empty body", post("/v2/pick", "", JSON_TYPE), 400),
  chillybin("v2: malformed JSON", post("/v2/pick", '{"customer":"gita","items":[', JSON_TYPE), 400),
  chillybin("v2: JSON null", post("/v2/pick", "null", JSON_TYPE), 400),
  chillybin("v2: JSON array", json("/v2/pick", [VALID_ORDER]), 400),
  chillybin("v2: JSON string", post("/v2/pick", '"cheese"', JSON_TYPE), 400),
  chillybin("v2: 20 KB body", json("/v2/pick", order({ note: kb(20) })), 413),
  chillybin("v2: 2000-deep object", post("/v2/pick", deepObject(2_000), JSON_TYPE), 400),
  chillybin("v2: 5000-deep array", post("/v2/pick", deepArray(5_000), JSON_TYPE), 400),
  // ── …its fields ──
  chillybin(
    "v2: quantity 1e308",
    post("/v2/pick", '{"customer":"gita","ingredient":"cheese","quantity":1e308}', JSON_TYPE),
    400,
  ),
  chillybin("v2: quantity as a string", json("/v2/pick", item("cheese", "1")), 400),
  chillybin("v2: float quantity", json("/v2/pick", item("cheese", 1.5)), 400),
  chillybin("v2: negative quantity", json("/v2/pick", item("cheese", -1)), 400),
  chillybin(
    "v2: quantity 1e3",
    post("/v2/pick", '{"customer":"gita","ingredient":"cheese","quantity":1e3}', JSON_TYPE),
    400,
  ),
  chillybin("v2: zero quantity", json("/v2/pick", item("cheese", 0)), 400),
  chillybin("v2: items not an array", json("/v2/pick", order({ items: "cheese" })), 400),
  chillybin("v2: no items", json("/v2/pick", order({ items: [] })), 400),
  chillybin(
    "v2: 21 items",
    json(
      "/v2/pick",
      order({
        items: Array.from({ length: 21 }, (_, i) => ({ ingredient: `i${i}`, quantity: 1 })),
      }),
    ),
    400,
  ),
  chillybin(
    "v2: duplicate items adding up to more than 100",
    json(
      "/v2/pick",
      order({
        items: [
          { ingredient: "cheese", quantity: 60 },
          { ingredient: "cheese", quantity: 60 },
        ],
      }),
    ),
    400,
  ),
  chillybin("v2: empty customer", json("/v2/pick", order({ customer: "" })), 400),
  chillybin(
    "v2: 65-character customer",
    json("/v2/pick", order({ customer: "g".repeat(65) })),
    400,
  ),
  chillybin("v2: NUL in the customer", json("/v2/pick", order({ customer: "gi\u0000ta" })), 400),
  chillybin(
    "v2: newline in the customer",
    json("/v2/pick", order({ customer: "gita\nadmin" })),
    400,
  ),
  chillybin(
    "v2: right-to-left override in the customer",
    json("/v2/pick", order({ customer: "\u202egita" })),
    400,
  ),
  chillybin("v2: customer as a number", json("/v2/pick", order({ customer: 42 })), 400),
  chillybin(
    "v2: SQL metacharacters in an ingredient",
    json("/v2/pick", item("cheese'); DELETE FROM orders; --", 1)),
    400,
  ),
  chillybin("v2: full-width ingredient name", json("/v2/pick", item("ｃｈｅｅｓｅ", 1)), 400),
  chillybin("v2: unknown ingredient", json("/v2/pick", item("caviar", 1)), 422),
  chillybin("v2: unknown field", json("/v2/pick", order({ discount: 100 })), 400),
  chillybin(
    "v2: both order shapes at once",
    json("/v2/pick", order({ ingredient: "cheese", quantity: 1 })),
    400,
  ),
  chillybin(
    "v2: __proto__ key",
    post(
      "/v2/pick",
      '{"customer":"gita","items":[{"ingredient":"cheese","quantity":1}],"__proto__":{"admin":true}}',
      JSON_TYPE,
    ),
    400,
  ),
  // ── …the Idempotency-Key header ──
  chillybin(
    "v2: empty Idempotency-Key",
    json("/v2/pick", VALID_ORDER, { "Idempotency-Key": "" }),
    400,
  ),
  chillybin(
    "v2: 256-character Idempotency-Key",
    json("/v2/pick", VALID_ORDER, { "Idempotency-Key": "k".repeat(256) }),
    400,
  ),
  chillybin(
    "v2: Idempotency-Key with a space",
    json("/v2/pick", VALID_ORDER, { "Idempotency-Key": "two words" }),
    400,
  ),
  chillybin(
    "v2: Idempotency-Key sent twice",
    post("/v2/pick", JSON.stringify(VALID_ORDER), [
      ["Content-Type", "application/json"],
      ["Idempotency-Key", "first"],
      ["Idempotency-Key", "second"],
    ]),
    400,
  ),
  {
    name: "v2: Latin-1 byte in the Idempotency-Key",
    service: "chillybin",
    raw: rawRequest(
      "POST /v2/pick HTTP/1.1",
      [
        ["Content-Type", "application/json"],
        ["Idempotency-Key", "caf\xe9"],
      ],
      JSON.stringify(VALID_ORDER),
    ),
    expect: 400,
  },
  chillybin("v2: GET", get("/v2/pick"), 405),
  chillybin("v2: PUT", { ...json("/v2/pick", VALID_ORDER), method: "PUT" }, 405),

  // ── chillybin POST /restock (CHILLYBIN_ADMIN_TOKEN set) ──
  chillybin("restock: no Authorization", post("/restock", "", {}), 401),
  chillybin(
    "restock: wrong token",
    post("/restock", "", { Authorization: "Bearer not-the-token-at-all" }),
    403,
  ),
  chillybin(
    "restock: Basic instead of Bearer",
    post("/restock", "", { Authorization: "Basic YWRtaW46YWRtaW4=" }),
    401,
  ),
  chillybin(
    "restock: Bearer without a token",
    post("/restock", "", { Authorization: "Bearer" }),
    401,
  ),
  chillybin(
    "restock: token followed by junk",
    post("/restock", "", { Authorization: `Bearer ${ADMIN_TOKEN} extra` }),
    401,
  ),
  chillybin("restock: negative level", json("/restock", { cheese: -1 }, AUTH), 400),
  chillybin("restock: float level", json("/restock", { cheese: 1.5 }, AUTH), 400),
  chillybin("restock: level as a string", json("/restock", { cheese: "10" }, AUTH), 400),
  chillybin("restock: level null", json("/restock", { cheese: null }, AUTH), 400),
  chillybin("restock: level above 10000", json("/restock", { cheese: 10_001 }, AUTH), 400),
  chillybin("restock: bad ingredient name", json("/restock", { "Cheese!": 1 }, AUTH), 400),
  chillybin("restock: JSON array", json("/restock", [{ cheese: 1 }], AUTH), 400),
  chillybin("restock: empty object", json("/restock", {}, AUTH), 400),
  chillybin(
    "restock: 101 ingredients",
    json(
      "/restock",
      Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`item${i}`, 1])),
      AUTH,
    ),
    400,
  ),
  chillybin(
    "restock: __proto__ key",
    post("/restock", '{"__proto__":{"cheese":1}}', { ...JSON_TYPE, ...AUTH }),
    400,
  ),
  chillybin(
    "restock: text/plain body",
    post("/restock", '{"cheese":1}', { "Content-Type": "text/plain", ...AUTH }),
    415,
  ),
  chillybin("restock: GET", get("/restock"), 405),

  // ── chillybin GET /orders, GET /orders/:id, GET /, unknown routes ──
  chillybin("orders: limit 0", get("/orders?limit=0"), 400),
  chillybin("orders: limit 101", get("/orders?limit=101"), 400),
  chillybin("orders: limit 1e1", get("/orders?limit=1e1"), 400),
  chillybin("orders: negative limit", get("/orders?limit=-1"), 400),
  chillybin("orders: empty customer", get("/orders?customer="), 400),
  chillybin("orders: customer as an array", get("/orders?customer[]=gita"), 400),
  chillybin("orders: unknown parameter", get("/orders?sort=asc"), 400),
  chillybin("orders: POST", json("/orders", {}), 405),
  chillybin("order: id that is not a UUID", get("/orders/42"), 400),
  chillybin("order: unknown UUID", get("/orders/00000000-0000-4000-8000-000000000000"), 404),
  chillybin("order: broken percent-encoding in the id", get("/orders/%ZZ"), 400),
  chillybin("order: SQL metacharacters in the id", get(`/orders/${q("' OR '1'='1")}`), 400),
  chillybin("order: DELETE", method("DELETE", "/orders/00000000-0000-4000-8000-000000000000"), 405),
  chillybin("stock: POST /", json("/", { cheese: 1000 }), 405),
  chillybin("stock: PUT /", { ...json("/", { cheese: 1000 }), method: "PUT" }, 405),
  chillybin("unknown route", get("/admin"), 404),
  chillybin("path traversal", get("/../../etc/passwd"), 404),
  chillybin("POST /health", method("POST", "/health"), 404),

  // ── jafflr POST /toastie: the order ──
  jafflr("toastie: neither body nor query", post("/toastie", "", {}), 400),
  jafflr("toastie: no cheese", json("/toastie", toastie({ ingredients: ["ham", "tomato"] })), 400),
  jafflr(
    "toastie: 11 ingredients",
    json("/toastie", toastie({ ingredients: Array(11).fill("cheese") })),
    400,
  ),
  jafflr("toastie: no ingredients", json("/toastie", toastie({ ingredients: [] })), 400),
  jafflr(
    "toastie: ingredients as a string",
    json("/toastie", toastie({ ingredients: "cheese" })),
    400,
  ),
  jafflr(
    "toastie: ingredients as numbers",
    json("/toastie", toastie({ ingredients: [1, 2] })),
    400,
  ),
  jafflr(
    "toastie: SQL metacharacters in an ingredient",
    json("/toastie", toastie({ ingredients: ["cheese", "ham'--"] })),
    400,
  ),
  jafflr(
    "toastie: upper-case ingredient",
    json("/toastie", toastie({ ingredients: ["Cheese"] })),
    400,
  ),
  jafflr(
    "toastie: 10 KB ingredient",
    json("/toastie", toastie({ ingredients: ["cheese", "a".repeat(10 * 1024)] })),
    400,
  ),
  jafflr("toastie: unknown doneness", json("/toastie", toastie({ doneness: "raw" })), 400),
  jafflr("toastie: doneness as a number", json("/toastie", toastie({ doneness: 5 })), 400),
  jafflr(
    "toastie: 65-character customer",
    json("/toastie", toastie({ customer: "c".repeat(65) })),
    400,
  ),
  jafflr(
    "toastie: NUL in the customer",
    json("/toastie", toastie({ customer: "gor\u0000don" })),
    400,
  ),
  jafflr("toastie: empty customer", json("/toastie", toastie({ customer: "" })), 400),
  jafflr(
    "toastie: customer 1e3",
    post("/toastie", '{"ingredients":["cheese"],"customer":1e3}', JSON_TYPE),
    400,
  ),
  jafflr("toastie: unknown field", json("/toastie", toastie({ price: 0 })), 400),
  jafflr(
    "toastie: body and query at once",
    { ...json("/toastie", toastie({})), path: "/toastie?i=cheese" },
    400,
  ),
  jafflr("toastie: JSON array", json("/toastie", [toastie({})]), 400),
  jafflr("toastie: malformed JSON", post("/toastie", '{"ingredients":["cheese"', JSON_TYPE), 400),
  jafflr("toastie: 2000-deep object", post("/toastie", deepObject(2_000), JSON_TYPE), 400),
  jafflr("toastie: 20 KB body", json("/toastie", toastie({ note: kb(20) })), 413),
  // ── …the original's query form ──
  jafflr(
    "toastie query: doneness twice",
    post("/toastie?i=cheese&doneness=light&doneness=burnt", "", {}),
    400,
  ),
  jafflr(
    "toastie query: customer twice",
    post("/toastie?i=cheese&customer=a&customer=b", "", {}),
    400,
  ),
  jafflr("toastie query: i as an object", post("/toastie?i[a]=cheese", "", {}), 400),
  jafflr("toastie query: 11 ingredients", post(`/toastie?${"i=cheese&".repeat(11)}`, "", {}), 400),
  jafflr("toastie query: unknown parameter", post("/toastie?i=cheese&tip=100", "", {}), 400),
  jafflr("toastie query: broken percent-encoding", post("/toastie?i=%ZZ", "", {}), 400),
  jafflr("toastie query: NUL in an ingredient", post("/toastie?i=cheese%00", "", {}), 400),
  // ── …media types, encodings, headers, methods ──
  jafflr(
    "toastie: text/plain",
    post("/toastie", JSON.stringify(toastie({})), { "Content-Type": "text/plain" }),
    415,
  ),
  jafflr(
    "toastie: form-urlencoded",
    post("/toastie", "i=cheese", { "Content-Type": "application/x-www-form-urlencoded" }),
    415,
  ),
  jafflr(
    "toastie: charset latin1",
    post("/toastie", JSON.stringify(toastie({})), {
      "Content-Type": "application/json; charset=latin1",
    }),
    415,
  ),
  jafflr(
    "toastie: claims gzip, is not",
    post("/toastie", JSON.stringify(toastie({})), { ...JSON_TYPE, "Content-Encoding": "gzip" }),
    400,
  ),
  jafflr(
    "toastie: 256-character Idempotency-Key",
    json("/toastie", toastie({}), { "Idempotency-Key": "k".repeat(256) }),
    400,
  ),
  jafflr(
    "toastie: Idempotency-Key sent twice",
    post("/toastie", JSON.stringify(toastie({ customer: V2_CUSTOMER })), [
      ["Content-Type", "application/json"],
      ["Idempotency-Key", "one"],
      ["Idempotency-Key", "two"],
    ]),
    400,
  ),
  {
    name: "toastie: Latin-1 byte in the Idempotency-Key",
    service: "jafflr",
    raw: rawRequest(
      "POST /toastie HTTP/1.1",
      [
        ["Content-Type", "application/json"],
        ["Idempotency-Key", "cl\xe9"],
      ],
      JSON.stringify(toastie({ customer: V2_CUSTOMER })),
    ),
    expect: 400,
  },
  // GET is the original's (deprecated) order form: a bad order there is refused as by POST.
  jafflr("toastie: GET without cheese", get("/toastie?i=ham"), 400),
  jafflr("toastie: PATCH", method("PATCH", "/toastie?i=cheese"), 405),
  jafflr("toastie: PUT", { ...json("/toastie", toastie({})), method: "PUT" }, 405),
  // ── …orders the cold store cannot fill: refused before anything is taken ──
  jafflr(
    "toastie: unknown ingredient first (v1 customer)",
    json("/toastie", toastie({ ingredients: ["caviar", "cheese"] })),
    422,
  ),
  jafflr(
    "toastie: unknown ingredient (v2 customer, atomic)",
    json("/toastie", toastie({ customer: V2_CUSTOMER, ingredients: ["cheese", "caviar"] })),
    422,
  ),
  // ── jafflr's other routes ──
  jafflr("status: POST /", json("/", {}), 405),
  jafflr("unknown route", get("/grill/settings"), 404),
  jafflr("DELETE /ready", method("DELETE", "/ready"), 404),
];

/**
 * Requests node's HTTP parser rejects before the application runs (it answers a bare 400/431
 * and closes the connection). They must never reach a handler or change anything.
 */
export const PROTOCOL_ERRORS: BadInput[] = (["chillybin", "jafflr"] as const).flatMap((service) =>
  [
    {
      name: "NUL byte in a header",
      raw: rawRequest("GET / HTTP/1.1", [["X-Note", "a\0b"]]),
      expect: 400,
    },
    { name: "space in the request target", raw: rawRequest("GET /a b HTTP/1.1", []), expect: 400 },
    {
      name: "no Host header",
      raw: Buffer.from("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
      expect: 400,
    },
    { name: "unknown method", raw: rawRequest("BREW / HTTP/1.1", []), expect: 400 },
    {
      name: "Content-Length and Transfer-Encoding together (request smuggling)",
      raw: Buffer.from(
        "POST /v2/pick HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
      ),
      expect: 400,
    },
    {
      name: "invalid chunk size",
      raw: Buffer.from(
        "POST /toastie HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
      ),
      expect: 400,
    },
    { name: "20 KB header", raw: rawRequest("GET / HTTP/1.1", [["X-Big", kb(20)]]), expect: 431 },
  ].map((c) => ({ ...c, service, name: `${service}: ${c.name}` })),
);
