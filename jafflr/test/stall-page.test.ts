import "tpi/register"; // first, as in index.ts

/**
 * The stall page's server side without a browser: content negotiation on GET /, the page and
 * its assets (CSP, caching), and GET /stall/events — snapshot, pushes, several pages, a page
 * that leaves, draining on shutdown. chillybin here is the stand-in (it has no /events, so the
 * page's cold store stays "connecting"); the stream against a real chillybin is in
 * integration-tests/test/stall-page.test.ts.
 */
import assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import type { Snapshot } from "../src/page/hub";
import type { ToastieOutcome } from "../src/toastie";
import {
  buildJafflr,
  eventually,
  standInChillybin,
  type TestJafflr,
  tempFlagFile,
} from "./helpers";
import { openStallStream } from "./stall-stream";

const CHROME_ACCEPT =
  "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

let chillybin: Awaited<ReturnType<typeof standInChillybin>>;
let jafflr: TestJafflr;
let server: Server;
let url: string;
const flags = tempFlagFile(["gita"]);
const told: ToastieOutcome[] = [];

before(async () => {
  chillybin = await standInChillybin();
  jafflr = await buildJafflr({
    chillybinUrl: chillybin.url,
    flagsFile: flags.file,
    onToastie: (o) => told.push(o),
  });
  server = jafflr.app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await jafflr.close();
  await chillybin.close();
  flags.remove();
});

describe("GET / negotiates: browsers get the page, API clients keep the JSON", () => {
  for (const [accept, page] of [
    ["*/*", false],
    ["application/json", false],
    [undefined, false],
    ["application/json, text/html;q=0.5", false],
    [CHROME_ACCEPT, true],
    ["text/html", true],
  ] as const) {
    it(`${accept ?? "no Accept"} → ${page ? "the page, strict CSP, the page itself not cached" : "JSON"}`, async () => {
      const req = request(jafflr.app).get("/");
      const res = await (accept === undefined ? req.unset("Accept") : req.set("Accept", accept));
      assert.equal(res.status, 200);
      assert.match(res.headers.vary ?? "", /Accept/i);
      assert.match(
        String(res.headers["content-type"]),
        page ? /^text\/html/ : /^application\/json/,
      );
      if (!page) return assert.equal(typeof res.body.slots, "number");
      const csp = res.headers["content-security-policy"] as string;
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/, "no inline script, nothing from outside");
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
      assert.equal(res.headers["x-content-type-options"], "nosniff");
      assert.equal(res.headers["cache-control"], "no-cache");
      assert.doesNotMatch(res.text, /<script>|\son[a-z]+=|\{\{|https?:\/\/(?!www\.w3\.org)/i);
    });
  }

  it("the script and stylesheet are jafflr's own, hashed and cached for good", async () => {
    const { text } = await request(jafflr.app).get("/").set("Accept", "text/html");
    const script = /<script type="module" src="(\/stall\/assets\/stall\.[0-9a-f]{12}\.js)">/.exec(
      text,
    )?.[1];
    const styles = /href="(\/stall\/assets\/stall\.[0-9a-f]{12}\.css)"/.exec(text)?.[1];
    assert.ok(script && styles, "the page links its script and stylesheet");
    const js = await request(jafflr.app).get(script);
    assert.equal(js.status, 200);
    assert.match(String(js.headers["content-type"]), /^text\/javascript/);
    assert.equal(js.headers["cache-control"], "public, max-age=31536000, immutable");
    assert.match(js.text, /new EventSource\("\/stall\/events"\)/, "the built browser script");
    assert.doesNotMatch(js.text, /\brequire\(|\bexports\./, "an ES module, not CommonJS");
    assert.doesNotMatch(
      js.text,
      /innerHTML|insertAdjacentHTML|outerHTML/,
      "data never becomes markup",
    );
    const css = await request(jafflr.app).get(styles);
    assert.equal(css.status, 200);
    assert.match(String(css.headers["content-type"]), /^text\/css/);
    const stale = await request(jafflr.app).get("/stall/assets/stall.000000000000.js");
    assert.equal(stale.status, 404);
  });
});

describe("GET /stall/events", () => {
  it("opens with a snapshot, then pushes every toastie this jafflr answers, newest first", async () => {
    const page = await openStallStream(url);
    try {
      assert.equal(page.status, 200);
      assert.match(String(page.headers["content-type"]), /^text\/event-stream/);
      assert.equal(page.headers["cache-control"], "no-store");
      const snap = await page.nextEvent<Snapshot>("snapshot");
      assert.deepEqual(snap.grill, { slots: 4, toasting: 0, waiting: 0, queue: 32 });
      assert.equal(snap.meter.windowSeconds, 300);
      assert.equal(snap.meter.points.length, 300);

      const res = await request(jafflr.app)
        .post("/toastie")
        .send({ customer: "gita", ingredients: ["cheese"], doneness: "medium" });
      assert.equal(res.status, 200, res.text);
      const pushed = await page.nextEvent<ToastieOutcome>("toastie");
      assert.equal(pushed.customer, "gita");
      assert.equal(pushed.pickedVia, "v2");
      assert.equal(pushed.status, 200);
      assert.ok(pushed.orderId);
      assert.equal(told.at(-1)?.customer, "gita", "the app's own onToastie still hears it");

      // A page opened later catches up from the snapshot.
      const later = await openStallStream(url);
      const caughtUp = await later.nextEvent<Snapshot>("snapshot");
      later.close();
      assert.equal(caughtUp.toasties[0]?.customer, "gita");
    } finally {
      page.close();
    }
  });

  it("keeps only the last 20 toasties", async () => {
    for (let i = 0; i < 22; i++) {
      const res = await request(jafflr.app)
        .post("/toastie")
        .send({ customer: `c${i}`, ingredients: ["cheese"] });
      assert.equal(res.status, 200);
    }
    const page = await openStallStream(url);
    const snap = await page.nextEvent<Snapshot>("snapshot");
    page.close();
    assert.equal(snap.toasties.length, 20);
    assert.equal(snap.toasties[0]?.customer, "c21", "newest first");
  });

  it("several pages share one watch of chillybin; it stops when the last page leaves", async () => {
    const pages = await Promise.all([
      openStallStream(url),
      openStallStream(url),
      openStallStream(url),
    ]);
    await Promise.all(pages.map((p) => p.nextEvent("snapshot")));
    assert.equal(await gauge("stall_page_streams"), 3);
    assert.equal(await gauge("stall_chillybin_watching"), 1);
    for (const p of pages) p.close();
    await eventually(async () => (await gauge("stall_page_streams")) === 0, "the pages are gone");
    assert.equal(await gauge("stall_chillybin_watching"), 0, "no page, no watch");
  });

  it("sends a meter point every second", async () => {
    const page = await openStallStream(url);
    try {
      await page.nextEvent("snapshot");
      const a = await page.nextEvent<{ t: number; v1: number; v2: number }>("meter", 3_000);
      const b = await page.nextEvent<{ t: number }>("meter", 3_000);
      assert.equal(b.t, a.t + 1);
      assert.deepEqual(Object.keys(a).sort(), ["t", "v1", "v2"]);
    } finally {
      page.close();
    }
  });

  it("HEAD answers the headers only; POST is 405", async () => {
    const head = await request(jafflr.app).head("/stall/events");
    assert.equal(head.status, 200);
    assert.match(String(head.headers["content-type"]), /^text\/event-stream/);
    const post = await request(jafflr.app).post("/stall/events");
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
  });

  it("draining ends every stream at once, and a page that reconnects meanwhile gets a 503", async () => {
    const page = await openStallStream(url);
    await page.nextEvent("snapshot");
    // The file's last test: shutdown, once begun, does not go back.
    jafflr.lifecycle.beginShutdown();
    await page.ended;
    const again = await request(jafflr.app).get("/stall/events");
    assert.equal(again.status, 503);
    assert.match(String(again.headers["content-type"]), /^application\/problem\+json/);
    assert.equal(again.headers["retry-after"], "1");
  });
});

const gauge = async (name: string) =>
  (await jafflr.metrics.registry.getSingleMetric(name)?.get())?.values[0]?.value;
