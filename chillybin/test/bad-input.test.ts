/** Every endpoint against bad inputs: the right 4xx as an RFC 9457 problem, and nothing changed. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type request from "supertest";
import { describeBadInput, get, post, send } from "./helpers";

type A = request.Agent;
const TEN_KB = "a".repeat(10 * 1024);
const SQL = "cheese'; DROP TABLE ingredients; --";
// node sends an array header value as one header line per element; superagent's types say string.
const TWO_KEYS = ["k-one", "k-two"] as unknown as string;
const raw =
  (path: string, body: string, type = "application/json") =>
  (a: A) =>
    a.post(path).set("Content-Type", type).send(body);
type Case = [string, number, (a: A) => request.Test];
const pick = (body: object, key?: string) => (a: A) =>
  a
    .post("/v2/pick")
    .set(key === undefined ? {} : { "Idempotency-Key": key })
    .send(body);
const one = (fields: object, key?: string) =>
  pick({ customer: "gita", ingredient: "cheese", quantity: 1, ...fields }, key);
const items = (...list: unknown[][]) =>
  pick({
    customer: "gita",
    items: list.map(([ingredient, quantity]) => ({ ingredient, quantity })),
  });
const restock = (body: object) => (a: A) => a.post("/restock").send(body);

const app = describeBadInput({
  "POST /v2/pick": [
    ["text/plain", 415, raw("/v2/pick", '{"customer":"gita"}', "text/plain")],
    ["form-encoded", 415, raw("/v2/pick", "customer=gita", "application/x-www-form-urlencoded")],
    ["no body", 415, (a) => a.post("/v2/pick")],
    ["malformed JSON", 400, raw("/v2/pick", '{"customer":"gita",')],
    ...["[]", "null", '"cheese"'].map((json): Case => [`JSON ${json}`, 400, raw("/v2/pick", json)]),
    ["empty object", 400, pick({})],
    ["no customer", 400, pick({ ingredient: "cheese", quantity: 1 })],
    ["no quantity", 400, pick({ customer: "gita", ingredient: "cheese" })],
    ...["", "   ", "g".repeat(65), "gi\u0000ta", "gita\nadmin", "\u202egita", "gita ", 42].map(
      (customer): Case => [`customer ${JSON.stringify(customer)}`, 400, one({ customer })],
    ),
    ["negative quantity", 400, one({ quantity: -5 })],
    [
      "1e3 quantity",
      400,
      raw("/v2/pick", '{"customer":"gita","ingredient":"cheese","quantity":1e3}'),
    ],
    ["extra field", 400, one({ rush: true })],
    ["both forms", 400, one({ items: [{ ingredient: "bread", quantity: 1 }] })],
    ["item without ingredient", 400, pick({ customer: "gita", items: [{ quantity: 1 }] })],
    ...[0, 101, 1e308, 1.5, "2", "", null, true].map(
      (q): Case => [`quantity ${JSON.stringify(q)}`, 400, items(["cheese", q])],
    ),
    ["no items", 400, items()],
    ["21 items", 400, items(...Array.from({ length: 21 }, (_, i) => [`i${i}`, 1]))],
    ["items an object", 400, pick({ customer: "gita", items: { cheese: 1 } })],
    ["item a string", 400, pick({ customer: "gita", items: ["cheese"] })],
    [
      "extra item field",
      400,
      pick({ customer: "gita", items: [{ ingredient: "ham", quantity: 1, x: 3 }] }),
    ],
    ["duplicates past 100", 400, items(["cheese", 60], ["cheese", 41])],
    ["10 KB ingredient", 400, items([TEN_KB, 1])],
    ["SQL ingredient", 400, items([SQL, 1])],
    ["numeric ingredient", 400, items([7, 1])],
    ["unknown ingredient", 422, items(["cheese", 1], ["anchovy", 1])],
    ["more than there is", 409, items(["cheese", 1], ["bread", 7])],
    ["20 KB body", 413, pick({ customer: "gita", items: [], pad: "x".repeat(20 * 1024) })],
    ...["not a key", "k".repeat(300), TWO_KEYS, ""].map(
      (key): Case => [`Idempotency-Key ${key.slice(0, 20)}`, 400, one({}, key)],
    ),
    ["GET", 405, (a) => a.get("/v2/pick")],
  ],
  "GET /orders": [
    ...["limit=0", "limit=101", "limit=-1", "limit=1.5", "limit=", "customer=", "sort=asc"]
      .concat([`customer=${"g".repeat(65)}`, "customer=gita&customer=gordon"])
      .map((query): Case => [query, 400, (a) => a.get(`/orders?${query}`)]),
    ["POST", 405, (a) => a.post("/orders").send({ customer: "gita" })],
  ],
  "GET /orders/:id": [
    ["not a UUID", 400, (a) => a.get("/orders/42")],
    ["SQL", 400, (a) => a.get(`/orders/${encodeURIComponent(SQL)}`)],
    ["10 KB id", 400, (a) => a.get(`/orders/${TEN_KB}`)],
    ["unknown order", 404, (a) => a.get("/orders/7d3f8a52-0c4e-4b8e-9a51-2f6b1c0d9e7a")],
    ["DELETE", 405, (a) => a.delete("/orders/7d3f8a52-0c4e-4b8e-9a51-2f6b1c0d9e7a")],
  ],
  "POST /restock": [
    ["text/plain", 415, raw("/restock", '{"cheese":5}', "text/plain")],
    ["malformed JSON", 400, raw("/restock", '{"cheese":')],
    ["1e9", 400, raw("/restock", '{"cheese":1e9}')],
    ["JSON array", 400, restock([["cheese", 5]])],
    ["empty object", 400, restock({})],
    ...[-1, 2.5, "5", null, 10_001].map(
      (level): Case => [`level ${level}`, 400, restock({ cheese: 50, bread: level })],
    ),
    ["uppercase name", 400, restock({ Cheese: 5 })],
    ["10 KB name", 400, restock({ [TEN_KB]: 5 })],
    ["SQL name", 400, restock({ [SQL]: 5 })],
    [
      "101 names",
      400,
      restock(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`i${i}`, 1]))),
    ],
    ["20 KB body", 413, raw("/restock", `{"cheese":5,"pad":"${"x".repeat(20 * 1024)}"}`)],
    ["GET", 405, (a) => a.get("/restock")],
  ],
  "GET /": [
    ["POST", 405, (a) => a.post("/").send({ cheese: 1 })],
    ["unknown route", 404, (a) => a.get("/v3/pick")],
  ],
});

test("a 400 names each problem: body fields by pointer, headers by name, query by parameter", async () => {
  const body = await post(app.url, "/v2/pick", {
    customer: "",
    items: [{ ingredient: "Cheese", quantity: 0 }],
    rush: true,
  });
  const { errors, detail } = body.body as { errors: { pointer: string }[]; detail: string };
  const pointers = ["/customer", "/items/0/ingredient", "/items/0/quantity", "/rush"];
  assert.deepEqual(errors.map((e) => e.pointer).sort(), pointers);
  assert.match(detail, /quantity must be an integer from 1 to 100/);
  const key = (await send(app.url, one({}, TWO_KEYS))).body as { errors: object[] };
  const twice = "send exactly one Idempotency-Key header";
  assert.deepEqual(key.errors, [{ header: "Idempotency-Key", detail: twice }]);
  const limit = (await get(app.url, "/orders?limit=0")).body as {
    errors: object[];
    detail: string;
  };
  const why = "limit must be an integer from 1 to 100";
  assert.deepEqual([limit.errors, limit.detail], [[{ parameter: "limit", detail: why }], why]);
});
