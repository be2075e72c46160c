/// <reference lib="dom" /> // page.evaluate callbacks run in the browser
/**
 * Gita's stall page in a real headless Chromium (Debian's `chromium`, driven by playwright-core;
 * nothing downloaded): ordering through the form (keyboard only for gita), problems shown in
 * words, the cold store and recent toasties following changes made by others with plain HTTP,
 * a pick.v2 flip seen on the foxtrot meter, and a hostile customer name shown as text.
 * Saves docs/stall-page.png. Not part of `npm test` (needs Chromium): `npm run test:browser -w
 * integration-tests`, and a stage of .ci/run.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { pickV2FlagFile } from "testkit/flags";
import { actClient, arrangeClient } from "testkit/http-client";
import { REPO_ROOT, type ServiceProcess, startService } from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { serviceEnv } from "../src/stall";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOT = path.join(REPO_ROOT, "docs", "stall-page.png");
/** Every wait on the page is bounded; a second is "within about a second" with room for CI. */
const WAIT = { timeout: 10_000 };

describe("the stall page in Chromium", () => {
  let db: TestDatabase;
  let chillybin: ServiceProcess;
  let jafflr: ServiceProcess;
  let browser: Browser;
  let page: Page;
  let dir: string;
  let flagsFile: string;
  let jafflrEnv: Record<string, string>;
  const problems: string[] = []; // page errors, CSP violations, dialogs: must stay empty

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    db = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), "stall-browser-"));
    flagsFile = path.join(dir, "features.json");
    await writeFile(flagsFile, JSON.stringify(pickV2FlagFile(["gita"])));
    chillybin = await startService("chillybin", serviceEnv({ DATABASE_URL: db.url }));
    jafflrEnv = serviceEnv({
      CHILLYBIN_URL: chillybin.url,
      FLAGS_FILE: flagsFile,
      FLAGS_POLL_MS: "50",
      COOK_TIME_SCALE: "0",
    });
    jafflr = await startService("jafflr", jafflrEnv);
    await arrangeClient(chillybin.url).post("/restock");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      timeout: 30_000,
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(WAIT.timeout);
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("dialog", (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on("console", (msg) => {
      // Chromium logs every 4xx answer to fetch; the no-cheese order's 400 is expected.
      const answered = /^Failed to load resource: the server responded with a status of 4\d\d/;
      if (msg.type() === "error" && !answered.test(msg.text())) {
        problems.push(`console: ${msg.text()}`);
      }
    });
    page.on("requestfailed", (req) => {
      if (!req.url().endsWith("/stall/events")) problems.push(`request failed: ${req.url()}`);
    });
    await page.goto(jafflr.url, WAIT);
  });

  after(async () => {
    await browser?.close();
    await jafflr?.stop();
    await chillybin?.stop();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const coldStore = () => page.getByRole("table", { name: "Cold store" });
  const recent = () => page.getByRole("table", { name: "Recent toasties" });
  const outcome = () => page.locator("#outcome");
  const quantity = (ingredient: string) =>
    coldStore().locator(`tr[data-ingredient="${ingredient}"] td`).nth(1);
  const stock = async () => (await arrangeClient(chillybin.url).get("/")).body;

  /** Orders through the form with the mouse: customer, exactly these ingredients, doneness. */
  async function order(customer: string, ingredients: string[], doneness = "light") {
    await page.getByLabel("Customer").fill(customer);
    for (const box of await page.locator("#ingredients input").all()) {
      await box.setChecked(ingredients.includes(await box.inputValue()));
    }
    await page.getByLabel("Doneness").selectOption(doneness);
    await page.getByRole("button", { name: "Toast it" }).click();
    await assert.doesNotReject(
      outcome().locator(".done, .problem").waitFor(WAIT),
      "the outcome is shown in place",
    );
  }

  it("shows the live page: connected, the cold store, the grill and every ingredient as a checkbox", async () => {
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    await page.getByRole("region", { name: "Grill" }).getByText("4 slots: 0 toasting").waitFor();
    assert.equal(await quantity("cheese").textContent(), "10");
    for (const name of Object.keys(await stock())) {
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

  it("gita orders with the keyboard only: done, via v2, with her order id", async () => {
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
    await outcome().locator(".done").waitFor(WAIT);
    const text = (await outcome().textContent()) ?? "";
    const orders = (await arrangeClient(chillybin.url).get("/orders?customer=gita")).body.orders;
    assert.equal(orders.length, 1);
    assert.match(text, /A medium toastie for gita/);
    assert.match(text, /Picked via v2/);
    assert.ok(text.includes(`order ${orders[0].id}`), `${text} names order ${orders[0].id}`);
    await quantity("cheese").getByText("9", { exact: true }).waitFor(WAIT);
  });

  it("bob orders: done, via v1", async () => {
    await order("bob", ["cheese", "ham"]);
    assert.match((await outcome().textContent()) ?? "", /Picked via v1/);
    await recent().locator("tbody tr").first().getByText("bob").waitFor(WAIT);
  });

  it("an order without cheese shows the problem in words and changes no stock", async () => {
    const before = await stock();
    await order("bob", ["ham", "tomato"]);
    const text = (await outcome().locator(".problem").textContent()) ?? "";
    assert.match(text, /Invalid request/);
    assert.match(text, /No cheese on this toastie: add cheese or sheese/);
    assert.deepEqual(await stock(), before, "nothing was picked");
    assert.equal(await quantity("ham").textContent(), String(before.ham));
  });

  it("a restock made with curl, straight at chillybin, shows in the cold store", async () => {
    await arrangeClient(chillybin.url).post("/restock", { json: { cheese: 42, pickles: 7 } });
    await quantity("cheese").getByText("42", { exact: true }).waitFor(WAIT);
    await quantity("pickles").getByText("7", { exact: true }).waitFor(WAIT);
    await page.getByLabel("pickles", { exact: true }).waitFor(WAIT);
  });

  it("a toastie ordered with curl appears in the recent toasties, newest first", async () => {
    const res = await actClient(jafflr.url).post("/toastie", {
      json: { customer: "carol-curl", ingredients: ["cheese", "vegemite"], doneness: "burnt" },
    });
    assert.equal(res.status, 200, res.text);
    const first = recent().locator("tbody tr").first();
    await first.getByText("carol-curl").waitFor(WAIT);
    assert.match((await first.textContent()) ?? "", /cheese, vegemite.*burnt.*v1.*done/);
  });

  it("after pick.v2 is flipped on for bob in the flag file, his next toastie goes via v2 on the meter", async () => {
    const summary = page.locator("#meter-summary");
    const v2Before = Number(await summary.getAttribute("data-v2"));
    await writeFile(flagsFile, JSON.stringify(pickV2FlagFile(["gita", "bob"])));
    // The flip reaches jafflr within a poll of the file; until then bob is still v1.
    const deadline = Date.now() + WAIT.timeout;
    let text = "";
    do {
      await order("bob", ["cheese"]);
      text = (await outcome().textContent()) ?? "";
    } while (!/Picked via v2/.test(text) && Date.now() < deadline);
    assert.match(text, /Picked via v2/);
    await page.waitForFunction(
      (before) => Number(document.getElementById("meter-summary")?.dataset.v2) > before,
      v2Before,
      WAIT,
    );
    const row = recent().locator("tbody tr").first();
    assert.match((await row.textContent()) ?? "", /bob.*v2/);
  });

  it("a customer called <img src=x onerror=alert(1)> is shown as text, never as markup", async () => {
    const name = "<img src=x onerror=alert(1)>";
    await order(name, ["cheese", "tomato"], "well-done");
    assert.ok(((await outcome().textContent()) ?? "").includes(`toastie for ${name}`));
    const cell = recent().locator("tbody tr").first().locator("td.customer");
    await cell.getByText(name, { exact: true }).waitFor(WAIT);
    assert.equal(await page.locator("main img").count(), 0, "no element was made from the name");
    assert.deepEqual(problems, [], "no script ran, no CSP violation, no page error");
  });

  it("fits a phone's width: nothing wider than the screen but the toasties table's own scroller", async () => {
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
    await arrangeClient(chillybin.url).post("/restock", { json: { bread: 24 } });
    await quantity("bread").getByText("24", { exact: true }).waitFor(WAIT);
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
    const port = jafflr.port;
    const exit = await jafflr.stop("SIGTERM", 20_000);
    assert.equal(exit.code, 0, "open pages did not hold up the drain");
    await page.locator('#connection[data-state="connecting"]').waitFor(WAIT);
    jafflr = await startService("jafflr", { ...jafflrEnv, PORT: String(port) });
    await page.locator('#connection[data-state="live"]').waitFor({ timeout: 30_000 });
    await arrangeClient(chillybin.url).post("/restock", { json: { cheese: 5 } });
    await quantity("cheese").getByText("5", { exact: true }).waitFor(WAIT);
  });
});
