/**
 * v1 only — deleted by the foxtrot's step 3. jafflr's original arm against a real chillybin: one
 * GET /pick per ingredient, knowingly not atomic, and the flag that moves a customer to v2.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { eventually } from "testkit/eventually";
import {
  type JafflrBesideChillybin,
  type Stock,
  startJafflrBesideChillybin,
} from "../src/jafflr-beside-chillybin";
import { needsOwnProcesses } from "../src/stall";

const FULL: Stock = { bread: 10, cheese: 10, ham: 10, vegemite: 10 };

describe("jafflr's v1 arm with a real chillybin", needsOwnProcesses, () => {
  let s: JafflrBesideChillybin;
  let start: Stock;

  before(async () => {
    s = await startJafflrBesideChillybin();
  });
  after(async () => {
    await s?.stop();
  });
  beforeEach(async () => {
    await s.arrange.restock(FULL);
    start = await s.arrange.stock();
    s.sent();
  });

  it("the original's happy path: v1 picks each ingredient and both bread slices", async () => {
    const res = await s.act.post("/toastie?i=cheese&i=vegemite");
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, {
      status: "done",
      customer: "anonymous",
      ingredients: ["cheese", "vegemite", "bread", "bread"],
      doneness: "light",
      pickedVia: "v1",
    });
    const stock = await s.arrange.stock();
    assert.deepEqual([stock.cheese, stock.vegemite, stock.bread], [9, 9, 8]);
    assert.deepEqual(s.sent(), [
      "GET /pick?name=cheese&quantity=1",
      "GET /pick?name=vegemite&quantity=1",
      "GET /pick?name=bread&quantity=1",
      "GET /pick?name=bread&quantity=1",
    ]);
  });

  it("short stock midway → 409 saying what was already taken (v1 is knowingly not atomic)", async () => {
    await s.arrange.restock({ vegemite: 0 });
    const res = await s.act.post("/toastie?i=cheese&i=vegemite&customer=gordon");
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.title, "Out of stock");
    assert.deepEqual(res.body.taken, ["cheese"]);
    assert.equal(res.body.failedAt, "vegemite");
    assert.equal(res.body.short[0].ingredient, "vegemite");
    const stock = await s.arrange.stock();
    assert.equal(stock.cheese, 9);
    assert.equal(stock.bread, 10, "nothing after the failure was picked");
  });

  it("an ingredient chillybin does not stock → 422 naming it, after what was taken", async () => {
    const res = await s.act.post("/toastie?i=cheese&i=caviar&customer=gordon");
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(res.body.unknown, ["caviar"]);
    assert.deepEqual(res.body.taken, ["cheese"]);
    assert.equal((await s.arrange.stock()).cheese, (start.cheese ?? 0) - 1);
  });

  it("a flag flip moves gordon from v1 to v2 without a restart, and back", async () => {
    const pickedVia = async () => {
      const res = await s.act.post("/toastie?i=cheese&customer=gordon");
      assert.equal(res.status, 200, res.text);
      return res.body.pickedVia as string;
    };
    assert.equal(await pickedVia(), "v1");
    await s.setV2For(["gita", "gordon"]);
    try {
      await eventually(async () => ((await pickedVia()) === "v2" ? true : undefined), {
        timeoutMs: 10_000,
        message: () => `gordon never moved to v2\n${s.jafflr.logs()}`,
      });
      assert.equal((await s.arrange.orders("gordon")).length, 1, "gordon's first v2 order");
    } finally {
      await s.setV2For(["gita"]);
      await eventually(async () => ((await pickedVia()) === "v1" ? true : undefined), {
        timeoutMs: 10_000,
        message: () => "gordon never moved back to v1",
      });
    }
  });
});
