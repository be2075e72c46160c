/**
 * `npm run traffic [-- --rate 2 --toasties 600 --minutes 10 --every 5]`: a steady stream of
 * customers for the stall `npm start` runs (JAFFLR_PORT, CHILLYBIN_PORT as there), to watch the
 * foxtrot's step 2. A mix of names, gita among them (the flag file's one v2 customer as shipped),
 * so the per-customer flag shows; chillybin is restocked whenever an order finds it empty. Stops
 * after --toasties orders or --minutes, or on Ctrl-C, once the orders in flight are answered.
 */
import { parseArgs } from "node:util";

// Orders a second, at most this many toasties or minutes, seconds between tally lines.
const opts = { rate: 2, toasties: 600, minutes: 10, every: 5 };
const S = { type: "string" } as const;
const { values } = parseArgs({ options: { rate: S, toasties: S, minutes: S, every: S } });
for (const [k, v] of Object.entries(values)) opts[k as keyof typeof opts] = Number(v);
if (!Object.values(opts).every((n) => Number.isFinite(n) && n > 0)) {
  console.error("traffic: --rate, --toasties, --minutes and --every must be positive numbers");
  process.exit(2);
}
const { rate, toasties, minutes, every } = opts;
const { JAFFLR_PORT, CHILLYBIN_PORT, CHILLYBIN_ADMIN_TOKEN: token } = process.env;
const jafflr = `http://127.0.0.1:${JAFFLR_PORT || 7000}`;
const chillybin = `http://127.0.0.1:${CHILLYBIN_PORT || 7001}`;
const CUSTOMERS = ["gita", "bob", "aroha", "mei", "sam", "priya"];
const FILLINGS = [["cheese"], ["cheese", "tomato"], ["cheese", "ham"], ["sheese", "vegemite"]];
const tally = { ordered: 0, done: 0, v1: 0, v2: 0, failed: 0, restocked: 0 };
const line = ({ ordered, done, v1, v2, failed, restocked } = tally) =>
  `traffic: ordered ${ordered}, done ${done} (via v1 ${v1}, via v2 ${v2}), failed ${failed}, restocked ${restocked}×`;
// 10 s: a burnt toastie behind a full grill still fits.
const post = (url: string, headers: Record<string, string>, body?: object) =>
  fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });

let restocking: Promise<unknown> | undefined;
/** Back to the default stock; the orders that found it empty together share one restock. */
const restock = () =>
  (restocking ??= post(`${chillybin}/restock`, token ? { authorization: `Bearer ${token}` } : {})
    .then((res) => res.ok && tally.restocked++)
    .finally(() => (restocking = undefined)));

async function order(n: number) {
  const [customer, ingredients] = [CUSTOMERS[n % CUSTOMERS.length], FILLINGS[n % FILLINGS.length]];
  let why = "";
  for (let attempt = 1; attempt <= 2 && !why; attempt++) {
    try {
      const json = { "content-type": "application/json" };
      const res = await post(`${jafflr}/toastie`, json, { customer, ingredients });
      const body = (await res.json()) as Record<string, string>;
      if (res.ok) {
        tally.done++;
        return void tally[body.pickedVia === "v2" ? "v2" : "v1"]++;
      }
      // Out of stock: restock, and this customer orders once more.
      if (res.status === 409 && attempt === 1) await restock();
      else why = `${res.status} ${body.detail ?? body.title}`;
    } catch (error) {
      why = (error as Error).message;
    }
  }
  if (++tally.failed <= 5) console.log(`traffic: ${customer}'s toastie failed: ${why}`);
}

async function main() {
  let stopped = false;
  process.once("SIGINT", () => (stopped = true)); // a second Ctrl-C ends it at once
  const timer = setTimeout(() => (stopped = true), minutes * 60_000);
  const ticker = setInterval(() => console.log(line()), every * 1000);
  const limits = `at most ${toasties} toasties or ${minutes} min; Ctrl-C stops`;
  console.log(`traffic: ${rate} orders a second to ${jafflr} (${limits})`);
  const inFlight = new Set<Promise<void>>();
  while (!stopped && tally.ordered < toasties) {
    // At most the grill's four slots at once: more would only queue.
    if (inFlight.size < 4) {
      const p = order(tally.ordered++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await Promise.all(inFlight);
  [clearTimeout(timer), clearInterval(ticker)];
  console.log(`${line()}; stopped`);
  process.exitCode = tally.failed > 0 ? 1 : 0;
}
void main();
