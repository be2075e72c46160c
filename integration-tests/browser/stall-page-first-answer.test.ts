/**
 * The stall page as its first answer holds it (./stall-page.ts): with JavaScript off, Chromium
 * shows a stall in use (stock, grill, recent toasties, meter). The same stall, live, is the
 * README's screenshot: the default stock, plain customer names; UPDATE_SCREENSHOT=1 saves it.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO_ROOT } from "testkit/service-process";
import { openStallPage, type StallPage, WAIT } from "./stall-page";

const ORDERS = [
  { customer: "gita", ingredients: ["cheese", "tomato"], doneness: "medium" },
  { customer: "bob", ingredients: ["cheese", "ham", "pineapple"], doneness: "well-done" },
  { customer: "carol", ingredients: ["sheese", "tomato"], doneness: "light" },
  { customer: "dev", ingredients: ["cheese", "vegemite"], doneness: "burnt" },
];

describe("the stall page before its script runs", () => {
  let s: StallPage;
  before(async () => {
    s = await openStallPage(["gita", "carol"]); // bob and dev via v1, until foxtrot step 3
    for (const json of ORDERS)
      assert.equal((await s.stall.grill.post("/toastie", { json })).status, 200);
  });
  after(() => s?.close());

  it("with JavaScript off shows the stock, the grill, the recent toasties and the meter", async () => {
    const context = await s.page.context().browser()?.newContext({ javaScriptEnabled: false });
    const page = await context?.newPage();
    assert.ok(context && page);
    await page.goto(s.stall.jafflr.url, WAIT);
    const quantity = (name: string) => page.locator(`tr[data-ingredient="${name}"] td.num`);
    for (const [name, left] of Object.entries({ bread: 2, cheese: 7, sheese: 9, tomato: 8 })) {
      assert.equal(await quantity(name).textContent(), String(left), name);
    }
    const recent = await page.getByRole("table", { name: "Recent toasties" }).textContent();
    for (const { customer, ingredients: i } of ORDERS)
      assert.ok(recent?.includes(customer + i.join(", ")));
    assert.match((await page.locator("#grill-text").textContent()) ?? "", /^4 slots: 0 toasting/);
    const meter = (await page.locator("#meter-summary").textContent()) ?? "";
    const [, v1, v2] = /(\d+) toasties via v1, (\d+) via v2/.exec(meter) ?? []; // once each
    assert.equal(Number(v1) + Number(v2), ORDERS.length, meter);
    assert.equal(await page.locator("#connection").getAttribute("data-state"), "snapshot");
    await context.close();
  });

  it("the same stall, live, is the README's screenshot", async () => {
    const { page } = s;
    await page.reload(WAIT); // with the toasties above
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    await page.getByLabel("Customer").fill("emma");
    await page.getByLabel("cheese", { exact: true }).setChecked(true);
    await page.getByLabel("ham", { exact: true }).setChecked(true);
    await page.getByLabel("Customer").blur();
    assert.deepEqual(s.problems, []);
    if (!process.env.UPDATE_SCREENSHOT) return;
    await page.emulateMedia({ reducedMotion: "reduce" }); // no half-finished "changed" flash
    await page.screenshot({ path: path.join(REPO_ROOT, "docs", "stall-page.png"), fullPage: true });
  });
});
