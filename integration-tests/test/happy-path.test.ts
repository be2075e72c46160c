/**
 * The original's smoke test, end to end: restock, order a toastie the way the original clients
 * do (query form, no customer), see exactly the stock it took; and a v2 order at chillybin. Also
 * the pipeline's post-deploy check: with JAFFLR_URL and CHILLYBIN_URL set it runs against those.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { actClient, arrangeClient, type Client } from "testkit/http-client";
import { deployed, type Stall, startStall } from "../src/stall";

describe("the original's happy path", () => {
  let stall: Stall | undefined;
  let cold: Client;
  let coldAct: Client;
  let grill: Client;

  before(async () => {
    if (deployed) {
      const token = process.env.CHILLYBIN_ADMIN_TOKEN;
      const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      [cold, coldAct] = [
        arrangeClient(deployed.chillybinUrl, auth),
        actClient(deployed.chillybinUrl),
      ];
      grill = actClient(deployed.jafflrUrl);
    } else {
      stall = await startStall();
      ({ cold, coldAct, grill } = stall);
    }
  });
  after(() => stall?.stop());

  test("restock → POST /toastie?i=cheese&i=vegemite → 200 → cheese 9, vegemite 9, bread 8", async () => {
    await cold.post("/restock");
    const stocked = (await cold.get("/")).body;
    assert.deepEqual([stocked.cheese, stocked.vegemite, stocked.bread], [10, 10, 10]);
    const toastie = await grill.post("/toastie?i=cheese&i=vegemite");
    assert.equal(toastie.status, 200, toastie.text);
    assert.equal(toastie.body.status, "done");
    assert.equal(toastie.body.customer, "anonymous");
    assert.deepEqual(toastie.body.ingredients, ["cheese", "vegemite", "bread", "bread"]);
    assert.equal(toastie.body.doneness, "light");
    const left = (await cold.get("/")).body;
    assert.deepEqual([left.cheese, left.vegemite, left.bread], [9, 9, 8]);
  });

  test("v2: POST /v2/pick picks and records the order, as GET /orders/:id shows it", async () => {
    await cold.post("/restock");
    const json = { ingredient: "cheese", quantity: 2, customer: "gita" };
    const picked = await coldAct.post("/v2/pick", { json });
    assert.equal(picked.status, 200, picked.text);
    assert.equal(picked.body.customer, "gita");
    assert.deepEqual(picked.body.items, [{ ingredient: "cheese", quantity: 2 }]);
    assert.ok(!Number.isNaN(Date.parse(picked.body.createdAt)), picked.text);
    const stock = (await cold.get("/")).body;
    assert.deepEqual([stock.cheese, stock.vegemite, stock.bread], [8, 10, 10]);
    const order = await cold.get(`/orders/${encodeURIComponent(picked.body.id)}`);
    assert.deepEqual(order.body, picked.body);
  });
});
