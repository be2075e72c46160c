import "tpi/register"; // first, as in index.ts

/**
 * The stall page's server side without a browser: content negotiation on GET /, the page's
 * headers and assets, the stall rendered into the first answer, and GET /stall/events (snapshot,
 * pushes, the meter, draining). The stand-in chillybin has no /events; the stream beside a real
 * chillybin is in integration-tests, the cap on streams in stall-streams.test.ts.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { EventSource } from "eventsource";
import request from "supertest";
import type { MeterPoint, Snapshot } from "../src/page/hub";
import type { ToastieOutcome } from "../src/toastie";
import {
  buildJafflr,
  eventually,
  standInChillybin,
  type TestJafflr,
  tempFlagFile,
} from "./helpers";

let chillybin: Awaited<ReturnType<typeof standInChillybin>>;
let jafflr: TestJafflr;
let server: ReturnType<TestJafflr["app"]["listen"]>;
const url = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const flags = tempFlagFile(["gita"]);
const told: ToastieOutcome[] = [];
const STOCK = { bread: 10, cheese: 9, tomato: 2 };
const HOSTILE = "<img src=x onerror=alert(1)>";
const toastie = (customer: string) =>
  request(jafflr.app)
    .post("/toastie")
    .send({ ingredients: ["cheese"], customer })
    .expect(200);

before(async () => {
  chillybin = await standInChillybin(STOCK);
  const onToastie = (o: ToastieOutcome) => told.push(o);
  jafflr = await buildJafflr({ chillybinUrl: chillybin.url, flagsFile: flags.file, onToastie });
  server = jafflr.app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await jafflr.close();
  await chillybin.close();
  flags.remove();
});

describe("GET / and the page's assets", () => {
  const chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8";
  const html = [chrome, "text/html"];
  const json = ["*/*", "application/json", undefined, "application/json, text/html;q=0.5"];
  for (const accept of [...json, ...html]) {
    const page = html.includes(accept ?? "");
    it(`${accept ?? "no Accept"} gets ${page ? "the page, under a strict CSP" : "JSON"}`, async () => {
      const req = request(jafflr.app).get("/");
      const res = await (accept ? req.set("Accept", accept) : req.unset("Accept")).expect(200);
      assert.match(res.headers.vary ?? "", /Accept/i);
      assert.match(res.headers["content-type"] ?? "", page ? /^text\/html/ : /^application\/json/);
      if (!page) return assert.equal(typeof res.body.slots, "number");
      const csp = res.headers["content-security-policy"] ?? "";
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/, "no inline script, nothing from outside");
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
      assert.equal(res.headers["x-content-type-options"], "nosniff");
      assert.equal(res.headers["cache-control"], "no-cache");
      assert.doesNotMatch(res.text, /<script>|\son[a-z]+=|\{\{|https?:\/\/(?!www\.w3\.org)/i);
    });
  }

  it("links its built script and stylesheet, hashed and cached for good", async () => {
    const { text } = await request(jafflr.app).get("/").set("Accept", "text/html");
    const links = text.match(/\/stall\/assets\/stall\.[0-9a-f]{12}\.(js|css)/g) ?? [];
    assert.equal(links.length, 2);
    for (const link of links) {
      const res = await request(jafflr.app).get(link).expect(200);
      assert.match(res.headers["content-type"] ?? "", /^text\/(javascript|css)/);
      assert.equal(res.headers["cache-control"], "public, max-age=31536000, immutable");
      assert.ok(res.text.length > 1000, `${link} is the built file`);
    }
    // The script imports the renderer the server used, by its own hashed URL.
    const script = await request(jafflr.app).get(links.find((l) => l.endsWith("js")) ?? "");
    const [renderer] = script.text.match(/\/stall\/assets\/stall\.[0-9a-f]{12}\.js/) ?? [];
    assert.match((await request(jafflr.app).get(`${renderer}`).expect(200)).text, /renderParts/);
    await request(jafflr.app).get("/stall/assets/stall.000000000000.js").expect(404);
  });
});

describe("the first answer holds the stall, rendered before any script runs", () => {
  it("the stock, the grill, the recent toasties (escaped) and the meter in toasties", async () => {
    for (const customer of ["gita", "bob", HOSTILE]) await toastie(customer);
    const { text } = await request(jafflr.app).get("/").set("Accept", "text/html").expect(200);
    const row = (name: string, quantity: number, low = "") =>
      `<tr data-ingredient="${name}"${low}><td>${name}</td><td class="num">${quantity}</td></tr>`;
    for (const [name, quantity] of Object.entries(STOCK)) {
      const low = quantity <= 2 ? ' class="low"' : "";
      assert.ok(text.includes(row(name, quantity, low)), `${name} in the cold store`);
      assert.ok(text.includes(`<input type="checkbox" name="ingredients" value="${name}"`));
    }
    assert.ok(text.includes("4 slots: 0 toasting, 0 waiting (room for 32 in the queue)."));
    assert.match(text, /<td class="customer">gita<\/td>.*<span class="via v2">v2<\/span>/);
    assert.ok(text.includes('<td class="customer">&lt;img src=x onerror=alert(1)&gt;</td>'));
    assert.ok(!text.includes("<img"), "a customer's name never becomes markup");
    // Toasties, not v1's 4 picks each; counted from the answers, so it holds after step 3 too.
    const [v1, v2] = ["v1", "v2"].map((via) => told.filter((t) => t.pickedVia === via).length);
    const meter = `data-v1="${v1}" data-v2="${v2}">Last minute: ${v1} toasties via v1, ${v2} via v2.`;
    assert.ok(text.includes(meter), meter);
    assert.doesNotMatch(text, /\{\{/, "every placeholder filled");
  });

  it("says so when the cold store cannot be asked", async () => {
    const gone = await buildJafflr({ chillybinUrl: "http://127.0.0.1:9" }); // nothing listens
    const { text } = await request(gone.app).get("/").set("Accept", "text/html").expect(200);
    await gone.close();
    assert.match(text, /Not hearing from the cold store \([^)]+\); quantities may be out of date/);
    assert.ok(text.includes("Waiting for the cold store…"));
  });
});

/** A page's stream as a browser's EventSource receives it; next() waits (bounded) for an event. */
function openPage() {
  let answer: Response | undefined;
  const source = new EventSource(new URL("/stall/events", url()), {
    fetch: async (input, init) => (answer = await fetch(input, init)),
  });
  const next = async <T>(event: string) => {
    const [e] = await once(source, event, { signal: AbortSignal.timeout(10_000) });
    return JSON.parse(e.data) as T;
  };
  return { source, next, answer: () => answer };
}

describe("GET /stall/events", () => {
  it("opens with a snapshot, then pushes every toastie; a later page catches up", async () => {
    const page = openPage();
    const snap = await page.next<Snapshot>("snapshot");
    assert.match(page.answer()?.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(page.answer()?.headers.get("cache-control"), "no-store");
    assert.deepEqual(snap.grill, { slots: 4, toasting: 0, waiting: 0, queue: 32 });
    assert.equal(snap.meter.points.length, 60, "10 minutes of 10-second counts");
    const pushed = page.next<ToastieOutcome>("toastie");
    await toastie("gita");
    const { customer, pickedVia, status } = await pushed;
    page.source.close();
    assert.deepEqual([customer, pickedVia, status], ["gita", "v2", 200]);
    assert.equal(told.at(-1)?.customer, "gita", "the app's own onToastie still hears it");
    // 21 more: the snapshot keeps the last 20, newest first.
    for (let i = 0; i < 21; i++) await toastie(`c${i}`);
    const later = openPage();
    const { toasties } = await later.next<Snapshot>("snapshot");
    later.source.close();
    assert.deepEqual([toasties.length, toasties[0]?.customer], [20, "c20"]);
  });

  it("the meter counts each toastie once, from before the page opened, and pushes each new one", async () => {
    const page = openPage();
    const { meter } = await page.next<Snapshot>("snapshot");
    const done = (via: string) => told.filter((t) => t.status === 200 && t.pickedVia === via);
    for (const via of ["v1", "v2"] as const) {
      const counted = meter.points.reduce((n, p) => n + p[via], 0);
      assert.equal(counted, done(via).length, `${via}: toasties, not picks`);
    }
    const points: MeterPoint[] = [];
    page.source.addEventListener("meter", (e) => points.push(...JSON.parse(e.data).points));
    await toastie("gita");
    const before = (t: number) => meter.points.find((q) => q.t === t)?.v2 ?? 0;
    await eventually(() => points.some((p) => p.v2 > before(p.t)), "the new count pushed");
    page.source.close();
  });

  it("HEAD answers the headers only; POST is 405", async () => {
    const head = await request(jafflr.app).head("/stall/events").expect(200);
    assert.match(head.headers["content-type"] ?? "", /^text\/event-stream/);
    const post = await request(jafflr.app).post("/stall/events").expect(405);
    assert.equal(post.headers.allow, "GET, HEAD");
  });

  it("draining ends every stream at once, and a page that reconnects meanwhile gets a 503", async () => {
    const page = openPage();
    await page.next("snapshot");
    const ended = once(page.source, "error");
    jafflr.lifecycle.beginShutdown(); // the file's last test: a drain does not go back
    await ended;
    page.source.close();
    const again = await request(jafflr.app).get("/stall/events").expect(503);
    assert.match(again.headers["content-type"] ?? "", /^application\/problem\+json/);
    assert.equal(again.headers["retry-after"], "1");
  });
});
