/**
 * Every endpoint against a table of bad inputs: each must get the right 4xx as an RFC 9457
 * problem, and leave stock and orders exactly as they were.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type request from "supertest";
import { act, type BadInputCase, describeBadInput, useBadInputApp } from "./helpers";

const app = useBadInputApp();

const TEN_KB = "a".repeat(10 * 1024);
// node sends an array header value as one header line per element; superagent's types say string.
const TWO_KEYS = ["k-one", "k-two"] as unknown as string;
const SQL = "cheese'; DROP TABLE ingredients; --";
const json = (
  agent: request.Agent,
  method: "post" | "get",
  path: string,
  raw: string,
  type = "application/json",
) => agent[method](path).set("Content-Type", type).send(raw);
const pickV2 = (body: unknown) => (a: request.Agent) => a.post("/v2/pick").send(body as object);
const restock = (body: unknown) => (a: request.Agent) => a.post("/restock").send(body as object);
const item = (ingredient: unknown, quantity: unknown) => ({ ingredient, quantity });

const cases: Record<string, BadInputCase[]> = {
  "POST /v2/pick": [
    {
      name: "text/plain",
      status: 415,
      send: (a) => json(a, "post", "/v2/pick", '{"customer":"gita"}', "text/plain"),
    },
    {
      name: "form-encoded",
      status: 415,
      send: (a) =>
        json(
          a,
          "post",
          "/v2/pick",
          "customer=gita&ingredient=cheese&quantity=1",
          "application/x-www-form-urlencoded",
        ),
    },
    { name: "no body", status: 415, send: (a) => a.post("/v2/pick") },
    {
      name: "malformed JSON",
      status: 400,
      send: (a) => json(a, "post", "/v2/pick", '{"customer":"gita",'),
    },
    { name: "JSON array", status: 400, send: (a) => json(a, "post", "/v2/pick", "[]") },
    { name: "JSON null", status: 400, send: (a) => json(a, "post", "/v2/pick", "null") },
    { name: "JSON string", status: 400, send: (a) => json(a, "post", "/v2/pick", '"cheese"') },
    { name: "empty object", status: 400, send: pickV2({}) },
    { name: "missing customer", status: 400, send: pickV2({ ingredient: "cheese", quantity: 1 }) },
    {
      name: "empty customer",
      status: 400,
      send: pickV2({ customer: "", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "blank customer",
      status: 400,
      send: pickV2({ customer: "   ", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "65-char customer",
      status: 400,
      send: pickV2({ customer: "g".repeat(65), ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "control char in customer",
      status: 400,
      send: pickV2({ customer: "gi\u0000ta", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "newline in customer",
      status: 400,
      send: pickV2({ customer: "gita\nadmin", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "bidi override in customer",
      status: 400,
      send: pickV2({ customer: "\u202egita", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "customer with a trailing space",
      status: 400,
      send: pickV2({ customer: "gita ", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "numeric customer",
      status: 400,
      send: pickV2({ customer: 42, ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "missing quantity",
      status: 400,
      send: pickV2({ customer: "gita", ingredient: "cheese" }),
    },
    {
      name: "missing ingredient in items",
      status: 400,
      send: pickV2({ customer: "gita", items: [{ quantity: 1 }] }),
    },
    {
      name: "negative quantity",
      status: 400,
      send: pickV2({ customer: "gita", ingredient: "cheese", quantity: -5 }),
    },
    {
      name: "zero quantity",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", 0)] }),
    },
    {
      name: "quantity 101",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", 101)] }),
    },
    {
      name: "huge quantity",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", 1e308)] }),
    },
    {
      name: "float quantity",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", 1.5)] }),
    },
    {
      name: "1e3 quantity",
      status: 400,
      send: (a) =>
        json(a, "post", "/v2/pick", '{"customer":"gita","ingredient":"cheese","quantity":1e3}'),
    },
    {
      name: "string quantity",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", "2")] }),
    },
    {
      name: "empty-string quantity",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", "")] }),
    },
    {
      name: "null quantity",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", null)] }),
    },
    {
      name: "boolean quantity",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", true)] }),
    },
    { name: "no items", status: 400, send: pickV2({ customer: "gita", items: [] }) },
    {
      name: "21 items",
      status: 400,
      send: pickV2({
        customer: "gita",
        items: Array.from({ length: 21 }, (_, i) => item(`i${i}`, 1)),
      }),
    },
    {
      name: "items not an array",
      status: 400,
      send: pickV2({ customer: "gita", items: { cheese: 1 } }),
    },
    {
      name: "item not an object",
      status: 400,
      send: pickV2({ customer: "gita", items: ["cheese"] }),
    },
    {
      name: "extra field in an item",
      status: 400,
      send: pickV2({ customer: "gita", items: [{ ...item("cheese", 1), price: 3 }] }),
    },
    {
      name: "extra top-level field",
      status: 400,
      send: pickV2({ customer: "gita", ingredient: "cheese", quantity: 1, rush: true }),
    },
    {
      name: "both forms at once",
      status: 400,
      send: pickV2({
        customer: "gita",
        ingredient: "cheese",
        quantity: 1,
        items: [item("bread", 1)],
      }),
    },
    {
      name: "duplicates adding up past 100",
      status: 400,
      send: pickV2({ customer: "gita", items: [item("cheese", 60), item("cheese", 41)] }),
    },
    {
      name: "10 KB ingredient",
      status: 400,
      send: pickV2({ customer: "gita", items: [item(TEN_KB, 1)] }),
    },
    {
      name: "SQL metacharacters",
      status: 400,
      send: pickV2({ customer: "gita", items: [item(SQL, 1)] }),
    },
    {
      name: "numeric ingredient",
      status: 400,
      send: pickV2({ customer: "gita", items: [item(7, 1)] }),
    },
    {
      name: "unknown ingredient",
      status: 422,
      send: pickV2({ customer: "gita", items: [item("cheese", 1), item("anchovy", 1)] }),
    },
    {
      name: "more than there is",
      status: 409,
      send: pickV2({ customer: "gita", items: [item("cheese", 1), item("bread", 7)] }),
    },
    {
      name: "oversize body (20 KB)",
      status: 413,
      send: pickV2({ customer: "gita", items: [item("cheese", 1)], pad: "x".repeat(20 * 1024) }),
    },
    {
      name: "Idempotency-Key with spaces",
      status: 400,
      send: (a) =>
        a
          .post("/v2/pick")
          .set("Idempotency-Key", "not a key")
          .send({ customer: "gita", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "Idempotency-Key of 300 chars",
      status: 400,
      send: (a) =>
        a
          .post("/v2/pick")
          .set("Idempotency-Key", "k".repeat(300))
          .send({ customer: "gita", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "two Idempotency-Key headers",
      status: 400,
      send: (a) =>
        a
          .post("/v2/pick")
          .set("Idempotency-Key", TWO_KEYS)
          .send({ customer: "gita", ingredient: "cheese", quantity: 1 }),
    },
    {
      name: "empty Idempotency-Key",
      status: 400,
      send: (a) =>
        a
          .post("/v2/pick")
          .set("Idempotency-Key", "")
          .send({ customer: "gita", ingredient: "cheese", quantity: 1 }),
    },
    { name: "GET", status: 405, send: (a) => a.get("/v2/pick") },
  ],
  "GET /orders": [
    { name: "limit 0", status: 400, send: (a) => a.get("/orders?limit=0") },
    { name: "limit 101", status: 400, send: (a) => a.get("/orders?limit=101") },
    { name: "negative limit", status: 400, send: (a) => a.get("/orders?limit=-1") },
    { name: "float limit", status: 400, send: (a) => a.get("/orders?limit=1.5") },
    { name: "empty limit", status: 400, send: (a) => a.get("/orders?limit=") },
    { name: "empty customer", status: 400, send: (a) => a.get("/orders?customer=") },
    {
      name: "65-char customer",
      status: 400,
      send: (a) => a.get(`/orders?customer=${"g".repeat(65)}`),
    },
    {
      name: "customer twice",
      status: 400,
      send: (a) => a.get("/orders?customer=gita&customer=gordon"),
    },
    { name: "extra parameter", status: 400, send: (a) => a.get("/orders?sort=asc") },
    { name: "POST", status: 405, send: (a) => a.post("/orders").send({ customer: "gita" }) },
  ],
  "GET /orders/:id": [
    { name: "not a UUID", status: 400, send: (a) => a.get("/orders/42") },
    {
      name: "SQL metacharacters",
      status: 400,
      send: (a) => a.get(`/orders/${encodeURIComponent(SQL)}`),
    },
    { name: "10 KB id", status: 400, send: (a) => a.get(`/orders/${TEN_KB}`) },
    {
      name: "unknown order",
      status: 404,
      send: (a) => a.get("/orders/7d3f8a52-0c4e-4b8e-9a51-2f6b1c0d9e7a"),
    },
    {
      name: "DELETE",
      status: 405,
      send: (a) => a.delete("/orders/7d3f8a52-0c4e-4b8e-9a51-2f6b1c0d9e7a"),
    },
  ],
  "POST /restock": [
    {
      name: "text/plain",
      status: 415,
      send: (a) => json(a, "post", "/restock", '{"cheese":5}', "text/plain"),
    },
    { name: "malformed JSON", status: 400, send: (a) => json(a, "post", "/restock", '{"cheese":') },
    { name: "JSON array", status: 400, send: restock([["cheese", 5]]) },
    { name: "empty object", status: 400, send: restock({}) },
    { name: "negative level", status: 400, send: restock({ cheese: -1 }) },
    { name: "float level", status: 400, send: restock({ cheese: 2.5 }) },
    { name: "string level", status: 400, send: restock({ cheese: "5" }) },
    { name: "null level", status: 400, send: restock({ cheese: null }) },
    { name: "level above 10000", status: 400, send: restock({ cheese: 10_001 }) },
    {
      name: "1e3 written as 1e9",
      status: 400,
      send: (a) => json(a, "post", "/restock", '{"cheese":1e9}'),
    },
    { name: "one bad among good", status: 400, send: restock({ cheese: 50, bread: -1 }) },
    { name: "uppercase name", status: 400, send: restock({ Cheese: 5 }) },
    { name: "10 KB name", status: 400, send: restock({ [TEN_KB.slice(0, 10_000)]: 5 }) },
    { name: "SQL metacharacters in a name", status: 400, send: restock({ [SQL]: 5 }) },
    {
      name: "101 ingredients",
      status: 400,
      send: restock(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`i${i}`, 1]))),
    },
    {
      name: "oversize body (20 KB)",
      status: 413,
      send: (a) => json(a, "post", "/restock", `{"cheese":5,"pad":"${"x".repeat(20 * 1024)}"}`),
    },
    { name: "GET", status: 405, send: (a) => a.get("/restock") },
  ],
  "GET /": [
    { name: "POST", status: 405, send: (a) => a.post("/").send({ cheese: 1 }) },
    { name: "unknown route", status: 404, send: (a) => a.get("/v3/pick") },
  ],
};

for (const [endpoint, table] of Object.entries(cases)) {
  describeBadInput(endpoint, table, app);
}

test("a 400 says what is wrong, field by field", async () => {
  const reply = await act(app.url).send(
    pickV2({ customer: "", items: [item("Cheese", 0)], rush: true }),
  );
  assert.equal(reply.status, 400);
  const body = reply.body as { errors: { pointer: string; detail: string }[]; detail: string };
  const pointers = body.errors.map((e) => e.pointer).sort();
  assert.deepEqual(pointers, ["/customer", "/items/0/ingredient", "/items/0/quantity", "/rush"]);
  assert.match(body.detail, /quantity must be an integer from 1 to 100/);
});

test("a bad Idempotency-Key is named as a header; a bad query parameter as a parameter", async () => {
  const key = await act(app.url).send((a) =>
    a
      .post("/v2/pick")
      .set("Idempotency-Key", TWO_KEYS)
      .send({ customer: "gita", ingredient: "cheese", quantity: 1 }),
  );
  assert.equal(key.status, 400);
  assert.deepEqual((key.body as { errors: unknown }).errors, [
    { header: "Idempotency-Key", detail: "send exactly one Idempotency-Key header" },
  ]);
  const limit = await act(app.url).get("/orders?limit=0");
  const body = limit.body as { errors: { parameter: string; detail: string }[]; detail: string };
  assert.deepEqual(
    body.errors.map((e) => e.parameter),
    ["limit"],
  );
  assert.equal(body.detail, body.errors.map((e) => e.detail).join("; "));
});
