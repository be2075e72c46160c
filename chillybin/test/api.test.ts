import assert from "node:assert/strict";
import { test } from "node:test";
import { Order } from "../src/orders";
import { DEFAULT_STOCK } from "../src/stock";
import { assertProblem, get, ok, post, snapshot, startApp, useTestApp } from "./helpers";

const app = useTestApp();
const order = (body: object, key?: string) =>
  ok<Order>(post(app.url, "/v2/pick", body, key ? { "Idempotency-Key": key } : {}));

test("POST /v2/pick, either form, records an order; duplicates merge, items sorted", async () => {
  const single = await order({
    ingredient: "cheese",
    quantity: 2,
    customer: "Gïta 🧀 O'Brien 👩‍🍳",
  });
  Order.parse(single);
  assert.match(single.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(single.customer, "Gïta 🧀 O'Brien 👩‍🍳");
  assert.deepEqual(single.items, [{ ingredient: "cheese", quantity: 2 }]);
  assert.ok(Math.abs(Date.parse(single.createdAt) - Date.now()) < 60_000);
  assert.match(single.createdAt, /Z$/);
  const whole = await order({
    customer: "gita",
    items: ["cheese", "bread", "vegemite", "bread"].map((ingredient) => ({
      ingredient,
      quantity: 1,
    })),
  });
  assert.deepEqual(whole.items, [
    { ingredient: "bread", quantity: 2 },
    { ingredient: "cheese", quantity: 1 },
    { ingredient: "vegemite", quantity: 1 },
  ]);
  const after = await snapshot(app.pool);
  assert.deepEqual([after.stock.bread, after.stock.cheese, after.stock.vegemite], [8, 7, 9]);
  assert.deepEqual([after.orders, after.items], [2, 4]);
});

test("POST /v2/pick refusals name every short or unknown item and change nothing", async () => {
  await ok(post(app.url, "/restock", { vegemite: 0, cheese: 1 }));
  const before = await snapshot(app.pool);
  const items = (...names: string[]) => names.map((ingredient) => ({ ingredient, quantity: 2 }));
  const short = await post(app.url, "/v2/pick", {
    customer: "g",
    items: items("bread", "vegemite", "cheese"),
  });
  assert.deepEqual(assertProblem(short, 409).short, [
    { ingredient: "cheese", requested: 2, available: 1 },
    { ingredient: "vegemite", requested: 2, available: 0 },
  ]);
  const unknown = await post(app.url, "/v2/pick", {
    customer: "g",
    items: items("cheese", "caviar", "anchovy"),
  });
  assert.deepEqual(assertProblem(unknown, 422).unknown, ["anchovy", "caviar"]);
  assert.deepEqual(await snapshot(app.pool), before);
});

test("GET /orders: newest first, by customer, limited; GET /orders/:id: exactly as placed", async () => {
  const first = await order({ customer: "gita", ingredient: "cheese", quantity: 1 });
  const second = await order({ customer: "gordon", ingredient: "ham", quantity: 1 });
  const third = await order({ customer: "gita", items: [{ ingredient: "bread", quantity: 2 }] });
  const orders = async (query: string) =>
    (await ok<{ orders: Order[] }>(get(app.url, `/orders${query}`))).orders;
  assert.deepEqual(await orders(""), [third, second, first]);
  assert.deepEqual(await orders("?customer=gita&limit=20"), [third, first]);
  assert.deepEqual(await orders("?limit=1"), [third]);
  assert.deepEqual(await orders("?customer=nobody"), []);
  assert.deepEqual(await ok(get(app.url, `/orders/${second.id.toUpperCase()}`)), second);
  assertProblem(await get(app.url, "/orders/00000000-0000-4000-8000-000000000000"), 404);
});

test("POST /restock: no body resets the defaults (others stay); JSON sets levels, new names too", async () => {
  await ok(post(app.url, "/restock", { cheese: 0, bread: 3, truffle: 4 }));
  assert.deepEqual(await ok(post(app.url, "/restock")), { ...DEFAULT_STOCK, truffle: 4 });
  const levels = { cheese: 50, sheese: 5, "goats-cheese": 2 };
  assert.deepEqual(await ok(post(app.url, "/restock", levels)), {
    ...DEFAULT_STOCK,
    truffle: 4,
    ...levels,
  });
  assert.deepEqual((await snapshot(app.pool)).stock, { ...DEFAULT_STOCK, truffle: 4, ...levels });
  await order({ customer: "gita", ingredient: "goats-cheese", quantity: 2 });
});

test("POST /restock with CHILLYBIN_ADMIN_TOKEN: 401 without a Bearer token, 403 wrong, 200 right", async () => {
  const token = "s3cret-token-for-tests";
  const guarded = await startApp(app.db.url, { adminToken: token });
  try {
    const restock = (authorization?: string, body: object | undefined = { cheese: 99 }) =>
      post(guarded.url, "/restock", body, authorization ? { Authorization: authorization } : {});
    const before = await snapshot(guarded.pool);
    for (const refused of [
      await restock(),
      await restock(undefined, undefined),
      await restock(`Basic ${token}`),
    ]) {
      assert.match(assertProblem(refused, 401).type as string, /unauthorized$/);
      assert.equal(refused.headers["www-authenticate"], 'Bearer realm="chillybin"');
    }
    assertProblem(await restock("Bearer not-the-token"), 403);
    assert.deepEqual(await snapshot(guarded.pool), before);
    assert.equal((await ok(restock(`Bearer ${token}`))).cheese, 99);
  } finally {
    await guarded.close();
  }
});

test("/health, /ready (the database and its migrations), /metrics by route template", async () => {
  assert.equal((await get(app.url, "/health")).status, 200);
  assert.deepEqual(await ok(get(app.url, "/ready")), {
    status: "ready",
    checks: { database: "ok" },
  });
  await get(app.url, "/orders/00000000-0000-4000-8000-000000000000");
  assert.match(
    (await get(app.url, "/metrics")).text,
    /http_requests_total\{[^}]*route="\/orders\/:id"/,
  );
});

test("GET /openapi.json: valid OpenAPI 3.1, describing every route this app mounts", async () => {
  const { Validator } = await import("@seriousme/openapi-schema-validator");
  const doc = await ok<{ openapi: string; paths: Record<string, object> }>(
    get(app.url, "/openapi.json"),
  );
  const result = await new Validator().validate(doc);
  assert.deepEqual([doc.openapi, result.errors], ["3.1.0", undefined]);
  for (const path of [
    "/",
    "/v2/pick",
    "/orders",
    "/orders/{id}",
    "/restock",
    "/events",
    "/health",
  ]) {
    assert.ok(doc.paths[path], `${path} is described`);
  }
});
