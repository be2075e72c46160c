/// <reference lib="dom" /> // waitForFunction callbacks run in the browser
/**
 * Gita's stall page in headless Chromium (Debian's, driven by playwright-core) over real processes
 * (../src/stall.ts), and everything that must never happen on it in `problems`. Each browser
 * suite (and stall-page-pick-v1.test.ts until foxtrot step 3 deletes it) opens its own.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { CHROMIUM, hasChromium } from "testkit/chromium";
import { startStall } from "../src/stall";

/** Every wait on the page is bounded; a second is "within about a second" with room for CI. */
export const WAIT = { timeout: 10_000 };

export type StallPage = Awaited<ReturnType<typeof openStallPage>>;

/** The stall page, live in Chromium, with pick.v2 on for these customers. */
export async function openStallPage(v2Customers: string[]) {
  assert.ok(hasChromium(), `no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  const stall = await startStall({ v2Customers });
  let jafflr = stall.jafflr;
  const browser = await chromium
    .launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
      timeout: 30_000,
    })
    .catch(async (error) => {
      await stall.stop(); // the launch's own error is the one to see
      throw error;
    });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(WAIT.timeout);
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("dialog", (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on("console", (msg) => {
    // Chromium logs every 4xx answer to fetch; the no-cheese order's 400 is expected.
    const answered = /^Failed to load resource: the server responded with a status of 4\d\d/;
    if (msg.type() === "error" && !answered.test(msg.text())) problems.push(msg.text());
  });
  page.on("requestfailed", (req) => {
    // The event stream is cut whenever jafflr drains; the page reconnects by itself.
    if (!req.url().endsWith("/stall/events")) problems.push(`request failed: ${req.url()}`);
  });
  await stall.cold.post("/restock");
  await page.goto(jafflr.url, WAIT);
  // A first answer that could not ask chillybin in time has no checkboxes until the stream's stock.
  await page.locator("#ingredients input").first().waitFor(WAIT);
  const recent = page.getByRole("table", { name: "Recent toasties" });
  const outcome = page.locator("#outcome");
  const coldStore = page.getByRole("table", { name: "Cold store" });
  const meterToasties = async (via: "v1" | "v2") =>
    Number((await page.locator("#meter-summary").getAttribute(`data-${via}`)) ?? 0);

  return {
    stall,
    page,
    problems,
    recent,
    outcome,
    meterToasties,
    /** The newest row of the recent toasties. */
    newest: recent.locator("tbody tr").first(),
    quantity: (name: string) => coldStore.locator(`tr[data-ingredient="${name}"] td`).nth(1),
    /** Orders through the form with the mouse: customer, exactly these ingredients, doneness. */
    async order(customer: string, ingredients: string[], doneness = "light") {
      await page.getByLabel("Customer").fill(customer);
      for (const box of await page.locator("#ingredients input").all()) {
        await box.setChecked(ingredients.includes(await box.inputValue()));
      }
      await page.getByLabel("Doneness").selectOption(doneness);
      await page.getByRole("button", { name: "Toast it" }).click();
      await outcome.locator(".done, .problem").waitFor(WAIT);
    },
    /** Waits until the meter shows more than `than` last-minute toasties via `via`. */
    async meterAbove(via: "v1" | "v2", than: number) {
      await page.waitForFunction(
        ([via, than]) => Number(document.getElementById("meter-summary")?.dataset[via]) > than,
        [via, than] as const,
        WAIT,
      );
    },
    /** SIGTERM to jafflr, waiting for its exit: a drain with the page open. */
    stopJafflr: () => jafflr.stop("SIGTERM", 20_000),
    /** jafflr again, same settings and port, as a pod restarted behind a Service. */
    async startJafflrAgain() {
      jafflr = await stall.startJafflr({ PORT: String(jafflr.port) });
    },
    async close() {
      await browser.close();
      await stall.stop();
    },
  };
}
