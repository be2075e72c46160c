import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_STOCK } from "../src/stock";
import {
  act,
  arrange,
  isProblem,
  migratedDatabase,
  snapshot,
  startApp,
  useTestApp,
} from "./helpers";

const app = useTestApp();

type Order = {
  id: string;
  customer: string;
  items: { ingredient: string; quantity: number }[];
  createdAt: string;
};

describe("GET /", () => {
  test("maps every ingredient to its quantity, starting from the seeded stock", async () => {
    const fresh = await migratedDatabase();
    const freshApp = await startApp(fresh.url);
    try {
      const reply = await act(freshApp.url).get("/");
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers["content-type"]), /^application\/json/);
      assert.deepEqual(reply.body, {
        bread: 10,
        cheese: 10,
        ham: 10,
        pineapple: 10,
        sheese: 10,
        tomato: 10,
        vegemite: 10,
      });
    } finally {
      await freshApp.close();
      await fresh.drop();
    }
  });
});

describe("POST /v2/pick", () => {
  test("the original's one-ingredient form records an order", async () => {
    const reply = await act(app.url).postJson("/v2/pick", {
      ingredient: "cheese",
      quantity: 2,
      customer: "gita",
    });
    assert.equal(reply.status, 200);
    const order = reply.body as Order;
    assert.match(order.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(order.customer, "gita");
    assert.deepEqual(order.items, [{ ingredient: "cheese", quantity: 2 }]);
    assert.ok(Math.abs(Date.parse(order.createdAt) - Date.now()) < 60_000);
    assert.match(order.createdAt, /Z$/);
    const after = await snapshot(app.pool);
    assert.equal(after.stock.cheese, 8);
    assert.equal(after.orders, 1);
  });

  test("a whole order picks every item, merging duplicates", async () => {
    const reply = await act(app.url).postJson("/v2/pick", {
      customer: "gita",
      items: [
        { ingredient: "cheese", quantity: 1 },
        { ingredient: "bread", quantity: 1 },
        { ingredient: "vegemite", quantity: 1 },
        { ingredient: "bread", quantity: 1 },
      ],
    });
    assert.equal(reply.status, 200);
    assert.deepEqual((reply.body as Order).items, [
      { ingredient: "bread", quantity: 2 },
      { ingredient: "cheese", quantity: 1 },
      { ingredient: "vegemite", quantity: 1 },
    ]);
    const after = await snapshot(app.pool);
    assert.deepEqual([after.stock.bread, after.stock.cheese, after.stock.vegemite], [8, 9, 9]);
    assert.equal(after.orderItems, 3);
  });

  test("409 names every short item and changes nothing", async () => {
    await arrange(app.url).setStock({ vegemite: 0, cheese: 1 });
    const before = await snapshot(app.pool);
    const reply = await act(app.url).postJson("/v2/pick", {
      customer: "gita",
      items: [
        { ingredient: "bread", quantity: 2 },
        { ingredient: "vegemite", quantity: 1 },
        { ingredient: "cheese", quantity: 2 },
      ],
    });
    assert.equal(reply.status, 409);
    assert.ok(isProblem(reply));
    assert.deepEqual((reply.body as { short: unknown }).short, [
      { ingredient: "cheese", requested: 2, available: 1 },
      { ingredient: "vegemite", requested: 1, available: 0 },
    ]);
    assert.deepEqual(await snapshot(app.pool), before);
  });

  test("422 names the unknown ingredients and changes nothing", async () => {
    const before = await snapshot(app.pool);
    const reply = await act(app.url).postJson("/v2/pick", {
      customer: "gita",
      items: [
        { ingredient: "cheese", quantity: 1 },
        { ingredient: "anchovy", quantity: 1 },
        { ingredient: "caviar", quantity: 1 },
      ],
    });
    assert.equal(reply.status, 422);
    assert.ok(isProblem(reply));
    assert.deepEqual((reply.body as { unknown: unknown }).unknown, ["anchovy", "caviar"]);
    assert.deepEqual(await snapshot(app.pool), before);
  });

  test("customers may be any printable text, emoji included", async () => {
    const reply = await act(app.url).postJson("/v2/pick", {
      customer: "Gïta 🧀 O'Brien 👩‍🍳",
      ingredient: "ham",
      quantity: 1,
    });
    assert.equal(reply.status, 200);
    assert.equal((reply.body as Order).customer, "Gïta 🧀 O'Brien 👩‍🍳");
  });
});

describe("orders", () => {
  test("GET /orders lists newest first, filters by customer and limits", async () => {
    const client = arrange(app.url);
    const first = await client.order({ customer: "gita", ingredient: "cheese", quantity: 1 });
    const second = await client.order({ customer: "gordon", ingredient: "ham", quantity: 1 });
    const third = await client.order({ customer: "gita", ingredient: "bread", quantity: 2 });

    const all = await act(app.url).get("/orders");
    assert.equal(all.status, 200);
    assert.deepEqual(
      (all.body as { orders: Order[] }).orders.map((o) => o.id),
      [third.id, second.id, first.id],
    );
    const gitas = await act(app.url).get("/orders?customer=gita&limit=20");
    assert.deepEqual((gitas.body as { orders: Order[] }).orders, [third, first]);
    const one = await act(app.url).get("/orders?limit=1");
    assert.deepEqual((one.body as { orders: Order[] }).orders, [third]);
    const nobody = await act(app.url).get("/orders?customer=nobody");
    assert.deepEqual(nobody.body, { orders: [] });
  });

  test("GET /orders/:id returns the order exactly as placed; 404 when there is none", async () => {
    const placed = await arrange(app.url).order({
      customer: "gita",
      items: [
        { ingredient: "tomato", quantity: 1 },
        { ingredient: "cheese", quantity: 2 },
      ],
    });
    const reply = await act(app.url).get(`/orders/${placed.id}`);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, placed);

    const missing = await act(app.url).get("/orders/00000000-0000-4000-8000-000000000000");
    assert.equal(missing.status, 404);
    assert.ok(isProblem(missing));
  });
});

describe("POST /restock", () => {
  test("no body resets the default stock and leaves other ingredients alone", async () => {
    await arrange(app.url).setStock({ cheese: 0, bread: 3, truffle: 4 });
    const reply = await act(app.url).send((a) => a.post("/restock"));
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, { ...DEFAULT_STOCK, truffle: 4 });
    assert.deepEqual((await snapshot(app.pool)).stock, { ...DEFAULT_STOCK, truffle: 4 });
  });

  test("a JSON body sets those levels, creating unknown names, and returns the new stock", async () => {
    const reply = await act(app.url).postJson("/restock", {
      cheese: 50,
      sheese: 5,
      "goats-cheese": 2,
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, { ...DEFAULT_STOCK, cheese: 50, sheese: 5, "goats-cheese": 2 });
    const picked = await act(app.url).postJson("/v2/pick", {
      customer: "gita",
      ingredient: "goats-cheese",
      quantity: 2,
    });
    assert.equal(picked.status, 200);
  });

  test("with CHILLYBIN_ADMIN_TOKEN set: 401 without a token, 403 with a wrong one, 200 with it", async () => {
    const token = "s3cret-token-for-tests";
    const guarded = await startApp(app.db.url, { adminToken: token });
    try {
      await arrange(guarded.url).setStock({ cheese: 7 }, token);
      const before = await snapshot(guarded.pool);
      const client = act(guarded.url);

      const none = await client.postJson("/restock", { cheese: 99 });
      assert.equal(none.status, 401);
      assert.ok(isProblem(none));
      assert.match(String(none.headers["www-authenticate"]), /^Bearer/);
      const resetWithout = await client.send((a) => a.post("/restock"));
      assert.equal(resetWithout.status, 401);
      const basic = await client.postJson(
        "/restock",
        { cheese: 99 },
        { Authorization: `Basic ${token}` },
      );
      assert.equal(basic.status, 401);
      const wrong = await client.postJson(
        "/restock",
        { cheese: 99 },
        { Authorization: "Bearer not-the-token" },
      );
      assert.equal(wrong.status, 403);
      assert.ok(isProblem(wrong));
      assert.deepEqual(await snapshot(guarded.pool), before);

      const right = await client.postJson(
        "/restock",
        { cheese: 99 },
        { Authorization: `Bearer ${token}` },
      );
      assert.equal(right.status, 200);
      assert.equal((right.body as Record<string, number>).cheese, 99);
    } finally {
      await guarded.close();
    }
  });
});

describe("plumbing from tpi", () => {
  test("/health, /ready and /metrics", async () => {
    const client = act(app.url);
    assert.equal((await client.get("/health")).status, 200);
    const ready = await client.get("/ready");
    assert.equal(ready.status, 200);
    assert.deepEqual((ready.body as { checks: unknown }).checks, { database: "ok" });
    await client.get("/orders/00000000-0000-4000-8000-000000000000");
    const metrics = await client.get("/metrics");
    assert.match(metrics.text, /http_requests_total\{[^}]*route="\/orders\/:id"/);
  });
});
