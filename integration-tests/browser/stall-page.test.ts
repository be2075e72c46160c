/// <reference lib="dom" /> // page.evaluate callbacks run in the browser
/**
 * Gita's stall page in Chromium (./stall-page.ts): ordering through the form (keyboard only for
 * gita), problems in words, changes made by others with plain HTTP, a hostile customer name shown
 * as text, a phone's width, jafflr draining and coming back.
 * Everything here holds before and after foxtrot step 3: whoever orders is on `pick.v2`, and the
 * meter must never show a v1 toastie (v1 is in stall-page-pick-v1.test.ts).
 * Not part of `npm test` (needs Chromium): `npm run test:browser -w integration-tests`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { openStallPage, type StallPage, WAIT } from "./stall-page";

const HOSTILE = "<img src=x onerror=alert(1)>";

describe("the stall page in Chromium", () => {
  let s: StallPage;
  before(async () => {
    s = await openStallPage(["gita", "bob", "carol-curl", HOSTILE]);
  });
  after(() => s?.close());

  it("is live: the grill, the cold store, every ingredient as a checkbox, the meter", async () => {
    const page = s.page;
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    await page.getByRole("region", { name: "Grill" }).getByText("4 slots: 0 toasting").waitFor();
    await s.quantity("cheese").getByText("10", { exact: true }).waitFor();
    for (const name of Object.keys(await s.stall.stock())) {
      assert.equal(await page.getByLabel(name, { exact: true }).isChecked(), false, name);
    }
    const meter = page.getByRole("figure", { name: "Foxtrot meter" }).locator("svg polyline");
    await meter.first().waitFor({ state: "attached" });
  });

  it("gita orders with the keyboard only: done, via v2, with her order id, on the meter as v2", async () => {
    const { page } = s;
    await page.getByLabel("Customer").focus();
    await page.keyboard.type("gita");
    // Tab to each control, then: tick cheese, light → medium, submit.
    const keys = { "ingredient-cheese": "Space", doneness: "ArrowDown", "toast-it": "Enter" };
    const focused = () => page.evaluate(() => document.activeElement?.id);
    for (const [id, key] of Object.entries(keys)) {
      for (let i = 0; i < 20 && (await focused()) !== id; i++) await page.keyboard.press("Tab");
      assert.equal(await focused(), id, "Tab reaches it");
      await page.keyboard.press(key);
    }
    await s.outcome.locator(".done").waitFor(WAIT);
    const text = (await s.outcome.textContent()) ?? "";
    const [order] = (await s.stall.cold.get("/orders?customer=gita")).body.orders;
    assert.match(text, /A medium toastie for gita.*Picked via v2/);
    assert.ok(text.includes(`order ${order.id}`), `${text} names order ${order.id}`);
    await s.quantity("cheese").getByText("9", { exact: true }).waitFor(WAIT);
    await s.meterAbove("v2", 0);
  });

  it("an order without cheese shows the problem in words and changes no stock", async () => {
    const before = await s.stall.stock();
    await s.order("bob", ["ham", "tomato"]);
    const text = (await s.outcome.locator(".problem").textContent()) ?? "";
    assert.match(text, /Invalid request.*No cheese on this toastie: add cheese or sheese/);
    assert.deepEqual(await s.stall.stock(), before, "nothing was picked");
  });

  it("a restock and a toastie made with curl show in the cold store and the recent toasties", async () => {
    await s.stall.cold.post("/restock", { json: { cheese: 42, pickles: 7 } });
    await s.quantity("cheese").getByText("42", { exact: true }).waitFor(WAIT);
    await s.page.getByLabel("pickles", { exact: true }).waitFor(WAIT);
    const json = { customer: "carol-curl", ingredients: ["cheese", "vegemite"], doneness: "burnt" };
    assert.equal((await s.stall.grill.post("/toastie", { json })).status, 200);
    await s.newest.getByText("carol-curl").waitFor(WAIT);
    assert.match((await s.newest.textContent()) ?? "", /cheese, vegemite.*burnt.*v2.*done/);
  });

  it(`a customer called ${HOSTILE} is shown as text, never as markup`, async () => {
    await s.order(HOSTILE, ["cheese", "tomato"], "well-done");
    assert.ok(((await s.outcome.textContent()) ?? "").includes(`toastie for ${HOSTILE}`));
    await s.newest.locator("td.customer").getByText(HOSTILE, { exact: true }).waitFor(WAIT);
    assert.equal(await s.page.locator("main img").count(), 0, "no element was made from it");
  });

  it("every toastie went via v2, none on the meter via v1; no page error, CSP violation or dialog", async () => {
    await s.recent.locator("span.via.v2").nth(2).waitFor(WAIT); // gita's, carol-curl's, the hostile one's
    assert.equal(await s.recent.locator("span.via.v1").count(), 0);
    assert.equal(await s.meterToasties("v1"), 0);
    assert.deepEqual(s.problems, []);
  });

  it("fits a phone's width: nothing wider than the screen but the toasties table's own scroller", async () => {
    await s.page.setViewportSize({ width: 390, height: 844 });
    const overflow = await s.page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    await s.page.setViewportSize({ width: 1280, height: 900 });
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
  });

  // Last: a restart empties jafflr's in-memory recent toasties.
  it("jafflr drains and comes back on its port: the page says so, reconnects by itself and is live again", async () => {
    const exit = await s.stopJafflr();
    assert.equal(exit.code, 0, "open pages did not hold up the drain");
    await s.page.locator('#connection[data-state="connecting"]').waitFor(WAIT);
    await s.startJafflrAgain();
    await s.page.locator('#connection[data-state="live"]').waitFor({ timeout: 30_000 });
    await s.stall.cold.post("/restock", { json: { cheese: 5 } });
    await s.quantity("cheese").getByText("5", { exact: true }).waitFor(WAIT);
  });
});
