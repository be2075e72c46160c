/**
 * The original's smoke test, end to end: restock, order a toastie the way the original clients do
 * (query form, no customer), and see exactly the stock it took; plus the original's v2 call.
 * (That the anonymous toastie goes through v1 while the flag says so: toastie-pick-v1.test.ts.)
 * Also the deploy pipeline's post-deploy check: with JAFFLR_URL and CHILLYBIN_URL set it runs
 * against those services instead of starting its own.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Client } from "testkit/http-client";
import { actClient, arrangeClient } from "testkit/http-client";
import { deployed, type Stall, startStall } from "../src/stall";

describe("the original's happy path", () => {
  let stall: Stall | undefined;
  let chillybin: Client; // arrange
  let chillybinAct: Client;
  let jafflr: Client; // act

  before(async () => {
    if (deployed) {
      const auth: Record<string, string> = deployed.adminToken
        ? { authorization: `Bearer ${deployed.adminToken}` }
        : {};
      chillybin = arrangeClient(deployed.chillybinUrl, auth);
      chillybinAct = actClient(deployed.chillybinUrl, auth);
      jafflr = actClient(deployed.jafflrUrl);
      return;
    }
    stall = await startStall();
    chillybin = stall.chillybinArrange;
    chillybinAct = stall.chillybinAct;
    jafflr = stall.jafflrAct;
  });

  after(async () => {
    await stall?.stop();
  });

  test("restock → cheese 10 → POST /toastie?i=cheese&i=vegemite → 200 → cheese 9, vegemite 9, bread 8", async () => {
    await chillybin.post("/restock");
    const stocked = (await chillybin.get("/")).body;
    assert.equal(stocked.cheese, 10, `stock after restock: ${JSON.stringify(stocked)}`);
    assert.equal(stocked.vegemite, 10);
    assert.equal(stocked.bread, 10);

    const toastie = await jafflr.post("/toastie?i=cheese&i=vegemite");
    assert.equal(toastie.status, 200, `${toastie.status} ${toastie.text}`);
    assert.match(toastie.contentType, /^application\/json/);
    assert.equal(toastie.body.status, "done");
    assert.equal(toastie.body.customer, "anonymous");
    assert.deepEqual(toastie.body.ingredients, ["cheese", "vegemite", "bread", "bread"]);
    assert.equal(toastie.body.doneness, "light");

    const left = (await chillybin.get("/")).body;
    assert.equal(left.cheese, 9, `stock after the toastie: ${JSON.stringify(left)}`);
    assert.equal(left.vegemite, 9);
    assert.equal(left.bread, 8);
  });

  test('v2: POST /v2/pick {"ingredient":"cheese","quantity":2,"customer":"gita"} picks and records the order', async () => {
    await chillybin.post("/restock");
    const picked = await chillybinAct.post("/v2/pick", {
      json: { ingredient: "cheese", quantity: 2, customer: "gita" },
    });
    assert.equal(picked.status, 200, `${picked.status} ${picked.text}`);
    assert.equal(picked.body.customer, "gita");
    assert.deepEqual(picked.body.items, [{ ingredient: "cheese", quantity: 2 }]);
    assert.ok(picked.body.id !== undefined && picked.body.id !== null, "the order has an id");
    assert.ok(
      !Number.isNaN(Date.parse(picked.body.createdAt)),
      `createdAt ${picked.body.createdAt}`,
    );

    const stock = (await chillybin.get("/")).body;
    assert.equal(stock.cheese, 8, `stock after the v2 pick: ${JSON.stringify(stock)}`);
    assert.equal(stock.vegemite, 10);
    assert.equal(stock.bread, 10);

    const order = await chillybin.get(`/orders/${encodeURIComponent(picked.body.id)}`);
    assert.deepEqual(order.body, picked.body, "GET /orders/:id shows the order as placed");
  });
});
