/**
 * GET / from memory, kept fresh by LISTEN/NOTIFY: changes made through another instance or
 * straight in SQL show up, this instance's own writes show up at once, and losing the LISTEN
 * connection falls back to the database until the feed has reconnected.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { eventually, feedLive, get, ok, post, startApp, useTestApp } from "./helpers";

const app = useTestApp();
const stock = (url = app.url) => ok(get(url, "/"));
const shows = (what: string, check: (s: Record<string, number>) => boolean, url = app.url) =>
  eventually(what, async () => check(await stock(url)) || undefined);

test("this instance's own writes are in its next GET /, no waiting", async () => {
  await eventually("the stock feed", () => feedLive(app.url));
  for (let i = 1; i <= 5; i++) {
    await ok(post(app.url, "/restock", { cheese: i }));
    assert.equal((await stock()).cheese, i);
    await ok(post(app.url, "/v2/pick", { customer: "gita", ingredient: "cheese", quantity: 1 }));
    assert.equal((await stock()).cheese, i - 1);
  }
});

test("changes made through another instance reach this one's GET /", async () => {
  const other = await startApp(app.db.url);
  try {
    await eventually(
      "both stock feeds",
      async () => (await feedLive(app.url)) && feedLive(other.url),
    );
    await ok(post(other.url, "/restock", { ham: 42, truffle: 3 }));
    await shows("the restock", (s) => s.ham === 42 && s.truffle === 3);
    await ok(post(other.url, "/v2/pick", { customer: "gita", ingredient: "truffle", quantity: 2 }));
    await shows("the pick", (s) => s.truffle === 1);
  } finally {
    await other.close();
  }
});

test("changes made straight in SQL (inserts, updates, deletes, truncate) reach GET /", async () => {
  await eventually("the stock feed", () => feedLive(app.url));
  type Check = (s: Record<string, number>) => boolean;
  for (const [sql, check] of [
    ["INSERT INTO ingredients VALUES ('olive', 7)", (s) => s.olive === 7],
    ["UPDATE ingredients SET quantity = 1 WHERE name = 'olive'", (s) => s.olive === 1],
    ["DELETE FROM ingredients WHERE name = 'olive'", (s) => !("olive" in s)],
    ["TRUNCATE order_items, orders, ingredients", (s) => Object.keys(s).length === 0],
  ] as [string, Check][]) {
    await app.pool.query(sql);
    await shows(sql, check);
  }
});

test("the LISTEN connection is lost: GET / reads the database meanwhile, then the feed comes back", async () => {
  await eventually("the stock feed", () => feedLive(app.url));
  const killed = await app.pool.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chillybin-stock-feed' AND datname = current_database()",
  );
  assert.equal(killed.rowCount, 1);
  // Its NOTIFY goes nowhere, yet the change is seen: GET / asks the database until the new
  // connection has read the stock afresh.
  await app.pool.query("UPDATE ingredients SET quantity = 3 WHERE name = 'bread'");
  await shows("the change made while the feed was down", (s) => s.bread === 3);
  await eventually("the feed to reconnect", () => feedLive(app.url));
  await app.pool.query("UPDATE ingredients SET quantity = 4 WHERE name = 'bread'");
  await shows("a change after reconnecting", (s) => s.bread === 4);
});
