/// <reference lib="dom" /> // waitForFunction callbacks run in the browser
/**
 * Gita's stall page open in a real headless Chromium, as the browser suites use it: a fresh
 * database, chillybin and jafflr as real processes (jafflr reading the flag file the suite gives,
 * polled every 50 ms so an edit applies at once), Debian's `chromium` driven by playwright-core
 * (nothing downloaded), the page loaded, and everything that must never happen on it collected in
 * `problems`. One module so the suites (stall-page.test.ts, and stall-page-pick-v1.test.ts until
 * foxtrot step 3 deletes it) start the same page the same way; each file opens its own.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { CHROMIUM, hasChromium } from "testkit/chromium";
import { arrangeClient, type Json } from "testkit/http-client";
import { type Exit, type ServiceProcess, startService } from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { serviceEnv } from "../src/stall";

/** Every wait on the page is bounded; a second is "within about a second" with room for CI. */
export const WAIT = { timeout: 10_000 };

export class StallPage {
  /** Page errors, CSP violations, dialogs, failed requests: must stay empty. */
  readonly problems: string[] = [];
  private db?: TestDatabase;
  private dir?: string;
  private browser?: Browser;
  private jafflrEnv: Record<string, string> = {};
  // Set by start(); StallPage.open() hands out only a started page.
  chillybin!: ServiceProcess;
  jafflr!: ServiceProcess;
  page!: Page;
  /** The flag file jafflr watches; rewrite it to flip a flag. */
  flagsFile!: string;

  private constructor() {}

  /** The stall page, live in Chromium, with jafflr reading `flags` (a client-features document). */
  static async open(flags: unknown): Promise<StallPage> {
    const stall = new StallPage();
    try {
      await stall.start(flags);
    } catch (error) {
      await stall.close().catch(() => {}); // the set-up's own error is the one to see
      throw error;
    }
    return stall;
  }

  private async start(flags: unknown) {
    assert.ok(hasChromium(), `no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    this.db = await createTestDatabase();
    this.dir = await mkdtemp(path.join(tmpdir(), "stall-browser-"));
    this.flagsFile = path.join(this.dir, "features.json");
    await writeFile(this.flagsFile, JSON.stringify(flags));
    this.chillybin = await startService("chillybin", serviceEnv({ DATABASE_URL: this.db.url }));
    this.jafflrEnv = serviceEnv({
      CHILLYBIN_URL: this.chillybin.url,
      FLAGS_FILE: this.flagsFile,
      FLAGS_POLL_MS: "50",
      COOK_TIME_SCALE: "0",
    });
    this.jafflr = await startService("jafflr", this.jafflrEnv);
    await arrangeClient(this.chillybin.url).post("/restock");
    this.browser = await chromium.launch({
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
    const page = await this.browser.newPage({ viewport: { width: 1280, height: 900 } });
    this.page = page;
    page.setDefaultTimeout(WAIT.timeout);
    page.on("pageerror", (err) => this.problems.push(`page error: ${err.message}`));
    page.on("dialog", (d) => {
      this.problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on("console", (msg) => {
      // Chromium logs every 4xx answer to fetch; the no-cheese order's 400 is expected.
      const answered = /^Failed to load resource: the server responded with a status of 4\d\d/;
      if (msg.type() === "error" && !answered.test(msg.text())) {
        this.problems.push(`console: ${msg.text()}`);
      }
    });
    page.on("requestfailed", (req) => {
      // The event stream is cut whenever jafflr drains; the page reconnects by itself.
      if (!req.url().endsWith("/stall/events")) this.problems.push(`request failed: ${req.url()}`);
    });
    await page.goto(this.jafflr.url, WAIT);
  }

  /** Stops whatever start() got to start. */
  async close() {
    await this.browser?.close();
    await this.jafflr?.stop();
    await this.chillybin?.stop();
    await this.db?.drop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  /** SIGTERM to jafflr, waiting for its exit: a drain with the page open. */
  stopJafflr(): Promise<Exit> {
    return this.jafflr.stop("SIGTERM", 20_000);
  }

  /** jafflr again, same settings and port, as a pod restarted behind a Service. */
  async startJafflrAgain() {
    this.jafflr = await startService("jafflr", {
      ...this.jafflrEnv,
      PORT: String(this.jafflr.port),
    });
  }

  coldStore = (): Locator => this.page.getByRole("table", { name: "Cold store" });
  recent = (): Locator => this.page.getByRole("table", { name: "Recent toasties" });
  /** The newest row of the recent toasties. */
  newest = (): Locator => this.recent().locator("tbody tr").first();
  outcome = (): Locator => this.page.locator("#outcome");
  quantity = (ingredient: string): Locator =>
    this.coldStore().locator(`tr[data-ingredient="${ingredient}"] td`).nth(1);
  /** chillybin's stock, asked over plain HTTP (not through the page). */
  stock = async (): Promise<Json> => (await arrangeClient(this.chillybin.url).get("/")).body;

  /** Orders through the form with the mouse: customer, exactly these ingredients, doneness. */
  async order(customer: string, ingredients: string[], doneness = "light") {
    const page = this.page;
    await page.getByLabel("Customer").fill(customer);
    for (const box of await page.locator("#ingredients input").all()) {
      await box.setChecked(ingredients.includes(await box.inputValue()));
    }
    await page.getByLabel("Doneness").selectOption(doneness);
    await page.getByRole("button", { name: "Toast it" }).click();
    await assert.doesNotReject(
      this.outcome().locator(".done, .problem").waitFor(WAIT),
      "the outcome is shown in place",
    );
  }

  /** The foxtrot meter's last-minute picks via `via`, as the page shows them (0 before any). */
  async meterPicks(via: "v1" | "v2"): Promise<number> {
    return Number((await this.page.locator("#meter-summary").getAttribute(`data-${via}`)) ?? 0);
  }

  /** Waits until the meter shows more than `than` last-minute picks via `via`. */
  async meterAbove(via: "v1" | "v2", than: number) {
    await this.page.waitForFunction(
      ([via, than]) => Number(document.getElementById("meter-summary")?.dataset[via]) > than,
      [via, than] as const,
      WAIT,
    );
  }
}
