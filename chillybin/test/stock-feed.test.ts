/**
 * GET / from memory, kept fresh by LISTEN/NOTIFY: changes made through another instance or
 * straight in SQL show up, this instance's own writes show up at once, and losing the LISTEN
 * connection falls back to the database until the feed has reconnected.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { act, arrange, eventually, startApp, type TestApp, useTestApp } from "./helpers";

const app = useTestApp();

async function stockOf(url: string): Promise<Record<string, number>> {
  const reply = await act(url).get("/");
  assert.equal(reply.status, 200, reply.text);
  return reply.body as Record<string, number>;
}

async function feedLive(target: { url: string }): Promise<true | undefined> {
  const metrics = await act(target.url).get("/metrics");
  return /^chillybin_stock_feed_connected(\{[^}]*\})? 1$/m.test(metrics.text) ? true : undefined;
}

async function withSecondInstance(fn: (other: TestApp) => Promise<void>): Promise<void> {
  const other = await startApp(app.db.url);
  try {
    await fn(other);
  } finally {
    await other.close();
  }
}

test("this instance's own writes are in its next GET /, no waiting", async () => {
  await eventually("the stock feed", () => feedLive(app));
  for (let i = 1; i <= 5; i++) {
    await arrange(app.url).setStock({ cheese: i });
    assert.equal((await stockOf(app.url)).cheese, i);
    await arrange(app.url).order({ customer: "gita", ingredient: "cheese", quantity: 1 });
    assert.equal((await stockOf(app.url)).cheese, i - 1);
  }
});

test("changes made through another instance reach this one's GET /", async () => {
  await withSecondInstance(async (other) => {
    await eventually(
      "both stock feeds",
      async () => (await feedLive(app)) && (await feedLive(other)),
    );
    await arrange(other.url).setStock({ ham: 42, truffle: 3 });
    await eventually("the restock", async () => {
      const stock = await stockOf(app.url);
      return stock.ham === 42 && stock.truffle === 3 ? true : undefined;
    });
    await arrange(other.url).order({ customer: "gita", ingredient: "truffle", quantity: 2 });
    await eventually("the pick", async () =>
      (await stockOf(app.url)).truffle === 1 ? true : undefined,
    );
  });
});

test("changes made straight in SQL (inserts, updates, deletes, truncate) reach GET /", async () => {
  await eventually("the stock feed", () => feedLive(app));
  await app.pool.query("INSERT INTO ingredients VALUES ('olive', 7)");
  await eventually("the insert", async () =>
    (await stockOf(app.url)).olive === 7 ? true : undefined,
  );
  await app.pool.query("UPDATE ingredients SET quantity = 1 WHERE name = 'olive'");
  await eventually("the update", async () =>
    (await stockOf(app.url)).olive === 1 ? true : undefined,
  );
  await app.pool.query("DELETE FROM ingredients WHERE name = 'olive'");
  await eventually("the delete", async () =>
    "olive" in (await stockOf(app.url)) ? undefined : true,
  );
  await app.pool.query("TRUNCATE order_items, orders, ingredients");
  await eventually("the truncate", async () =>
    Object.keys(await stockOf(app.url)).length === 0 ? true : undefined,
  );
});

test("the LISTEN connection is lost: GET / reads the database meanwhile, then the feed comes back", async () => {
  await eventually("the stock feed", () => feedLive(app));
  const killed = await app.pool.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chillybin-stock-feed' AND datname = current_database()",
  );
  assert.equal(killed.rowCount, 1);
  // A change made while it is down (its NOTIFY goes nowhere) is still seen: GET / asks the
  // database until the new connection has read the stock afresh.
  await app.pool.query("UPDATE ingredients SET quantity = 3 WHERE name = 'bread'");
  await eventually("the change made while the feed was down", async () =>
    (await stockOf(app.url)).bread === 3 ? true : undefined,
  );
  await eventually("the feed to reconnect", () => feedLive(app));
  await app.pool.query("UPDATE ingredients SET quantity = 4 WHERE name = 'bread'");
  await eventually("a change after reconnecting", async () =>
    (await stockOf(app.url)).bread === 4 ? true : undefined,
  );
});
