/// <reference lib="dom" /> // page.evaluate callbacks run in the browser
/**
 * Gita's stall page in a real headless Chromium (./stall-page.ts): ordering through the form
 * (keyboard only for gita), the pick on the foxtrot meter, problems shown in words, the cold
 * store and recent toasties following changes made by others with plain HTTP, a hostile
 * customer name shown as text, a phone's width, and jafflr draining and coming back.
 * Saves docs/stall-page.png.
 *
 * Everything here holds before and after foxtrot step 3: every customer who orders is on
 * `pick.v2`, as everyone is by the time v1 is deleted, and the meter must never show a v1 pick.
 * What concerns only v1 is in stall-page-pick-v1.test.ts.
 * Not part of `npm test` (needs Chromium): `npm run test:browser -w integration-tests`, a stage
 * of .ci/run, and run by `npm run rehearse:foxtrot-3` without v1.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pickV2FlagFile } from "testkit/flags";
import { actClient, arrangeClient } from "testkit/http-client";
import { REPO_ROOT } from "testkit/service-process";
import { StallPage, WAIT } from "./stall-page";

const SCREENSHOT = path.join(REPO_ROOT, "docs", "stall-page.png");
const HOSTILE = "<img src=x onerror=alert(1)>";
/** Whoever orders in this file; after step 3 the flag file is moot (every toastie is v2). */
const ON_V2 = ["gita", "bob", "carol-curl", HOSTILE];

describe("the stall page in Chromium", () => {
  let stall: StallPage;

  before(async () => {
    stall = await StallPage.open(pickV2FlagFile(ON_V2));
  });

  after(async () => {
    await stall?.close();
  });

  it("shows the live page: connected, the cold store, the grill and every ingredient as a checkbox", async () => {
    const { page } = stall;
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    await page.getByRole("region", { name: "Grill" }).getByText("4 slots: 0 toasting").waitFor();
    assert.equal(await stall.quantity("cheese").textContent(), "10");
    for (const name of Object.keys(await stall.stock())) {
      assert.equal(await page.getByLabel(name, { exact: true }).isChecked(), false, name);
    }
    await page
      .getByRole("figure", { name: "Foxtrot meter" })
      .locator("svg polyline")
      .first()
      .waitFor({
        state: "attached",
      });
  });

  it("gita orders with the keyboard only: done, via v2, with her order id, on the meter as v2", async () => {
    const { page } = stall;
    await page.getByLabel("Customer").focus();
    await page.keyboard.type("gita");
    const tabTo = async (selector: string) => {
      for (let i = 0; i < 20; i++) {
        await page.keyboard.press("Tab");
        if (await page.locator(selector).evaluate((el) => el === document.activeElement)) return;
      }
      assert.fail(`Tab never reached ${selector}`);
    };
    await tabTo("#ingredient-cheese");
    await page.keyboard.press("Space");
    await tabTo("#doneness");
    await page.keyboard.press("ArrowDown"); // light → medium
    await tabTo("#toast-it");
    await page.keyboard.press("Enter");
    await stall.outcome().locator(".done").waitFor(WAIT);
    const text = (await stall.outcome().textContent()) ?? "";
    const orders = (await arrangeClient(stall.chillybin.url).get("/orders?customer=gita")).body
      .orders;
    assert.equal(orders.length, 1);
    assert.match(text, /A medium toastie for gita/);
    assert.match(text, /Picked via v2/);
    assert.ok(text.includes(`order ${orders[0].id}`), `${text} names order ${orders[0].id}`);
    await stall.quantity("cheese").getByText("9", { exact: true }).waitFor(WAIT);
    await stall.meterAbove("v2", 0);
    assert.equal(await stall.meterPicks("v1"), 0, "gita's toastie is no v1 pick");
  });

  it("an order without cheese shows the problem in words and changes no stock", async () => {
    const before = await stall.stock();
    await stall.order("bob", ["ham", "tomato"]);
    const text = (await stall.outcome().locator(".problem").textContent()) ?? "";
    assert.match(text, /Invalid request/);
    assert.match(text, /No cheese on this toastie: add cheese or sheese/);
    assert.deepEqual(await stall.stock(), before, "nothing was picked");
    assert.equal(await stall.quantity("ham").textContent(), String(before.ham));
  });

  it("a restock made with curl, straight at chillybin, shows in the cold store", async () => {
    await arrangeClient(stall.chillybin.url).post("/restock", {
      json: { cheese: 42, pickles: 7 },
    });
    await stall.quantity("cheese").getByText("42", { exact: true }).waitFor(WAIT);
    await stall.quantity("pickles").getByText("7", { exact: true }).waitFor(WAIT);
    await stall.page.getByLabel("pickles", { exact: true }).waitFor(WAIT);
  });

  it("a toastie ordered with curl appears in the recent toasties, newest first", async () => {
    const res = await actClient(stall.jafflr.url).post("/toastie", {
      json: { customer: "carol-curl", ingredients: ["cheese", "vegemite"], doneness: "burnt" },
    });
    assert.equal(res.status, 200, res.text);
    await stall.newest().getByText("carol-curl").waitFor(WAIT);
    assert.match((await stall.newest().textContent()) ?? "", /cheese, vegemite.*burnt.*v2.*done/);
  });

  it(`a customer called ${HOSTILE} is shown as text, never as markup`, async () => {
    await stall.order(HOSTILE, ["cheese", "tomato"], "well-done");
    assert.ok(((await stall.outcome().textContent()) ?? "").includes(`toastie for ${HOSTILE}`));
    const cell = stall.newest().locator("td.customer");
    await cell.getByText(HOSTILE, { exact: true }).waitFor(WAIT);
    assert.equal(await stall.page.locator("main img").count(), 0, "no element was made from it");
    assert.deepEqual(stall.problems, [], "no script ran, no CSP violation, no page error");
  });

  it("every toastie here went via v2: no v1 in the recent toasties, none on the meter", async () => {
    // gita's, carol-curl's and the hostile name's: each picked, so each row names its arm.
    const v2 = stall.recent().locator("span.via.v2");
    await v2.nth(2).waitFor(WAIT);
    assert.equal(await v2.count(), 3);
    assert.equal(await stall.recent().locator("span.via.v1").count(), 0);
    assert.equal(await stall.meterPicks("v1"), 0);
  });

  it("fits a phone's width: nothing wider than the screen but the toasties table's own scroller", async () => {
    const { page } = stall;
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
      await page.screenshot({ path: path.join(tmpdir(), "stall-page-phone.png"), fullPage: true });
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  it("saves a screenshot of the page (docs/stall-page.png)", async () => {
    const { page } = stall;
    await arrangeClient(stall.chillybin.url).post("/restock", { json: { bread: 24 } });
    await stall.quantity("bread").getByText("24", { exact: true }).waitFor(WAIT);
    await page.getByLabel("Customer").fill("gita");
    await page.getByLabel("cheese", { exact: true }).setChecked(true);
    await page.getByLabel("tomato", { exact: true }).setChecked(true);
    await page.getByLabel("Customer").blur();
    // No half-finished "changed" flash in the picture.
    await page.emulateMedia({ reducedMotion: "reduce" });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(existsSync(SCREENSHOT));
  });

  // Last: a restart empties jafflr's in-memory recent toasties.
  it("jafflr drains and comes back on its port: the page says so, reconnects by itself and is live again", async () => {
    const { page } = stall;
    const exit = await stall.stopJafflr();
    assert.equal(exit.code, 0, "open pages did not hold up the drain");
    await page.locator('#connection[data-state="connecting"]').waitFor(WAIT);
    await stall.startJafflrAgain();
    await page.locator('#connection[data-state="live"]').waitFor({ timeout: 30_000 });
    await arrangeClient(stall.chillybin.url).post("/restock", { json: { cheese: 5 } });
    await stall.quantity("cheese").getByText("5", { exact: true }).waitFor(WAIT);
  });
});
