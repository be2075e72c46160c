/**
 * jafflr against a real chillybin, both as processes on a fresh database, a lossy proxy between
 * them to see what jafflr sent and, once, to lose an answer on the way back (the network fault an
 * idempotent retry must survive). The v1 arm's cases are in jafflr-chillybin-pick-v1.test.ts.
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

function pick(stock: Stock, names: string[]): Stock {
  const out = { ...stock };
  for (const n of names) out[n] = (out[n] ?? 0) - 1;
  return out;
}

describe("jafflr with a real chillybin (v2)", needsOwnProcesses, () => {
  let s: JafflrBesideChillybin;
  /** The whole stock after the restock each test starts from, and gita's orders before it. */
  let start: Stock;
  let gitaOrders: number;

  before(async () => {
    s = await startJafflrBesideChillybin();
  });
  after(async () => {
    await s?.stop();
  });
  beforeEach(async () => {
    await s.arrange.restock(FULL);
    start = await s.arrange.stock();
    gitaOrders = (await s.arrange.orders("gita")).length;
    s.sent();
  });

  it("gita's toastie goes through v2: one atomic order with every item", async () => {
    const res = await s.act.post("/toastie", {
      json: { customer: "gita", ingredients: ["cheese", "vegemite"], doneness: "medium" },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.pickedVia, "v2");
    assert.equal(res.body.doneness, "medium");
    assert.match(res.body.orderId, /^[0-9a-f-]{36}$/);
    const [order, ...others] = await s.arrange.orders("gita"); // newest first
    assert.equal(others.length, gitaOrders);
    assert.equal(order?.id, res.body.orderId);
    assert.deepEqual(order?.items, [
      { ingredient: "bread", quantity: 2 },
      { ingredient: "cheese", quantity: 1 },
      { ingredient: "vegemite", quantity: 1 },
    ]);
    assert.deepEqual(
      await s.arrange.stock(),
      pick(start, ["cheese", "vegemite", "bread", "bread"]),
    );
    assert.deepEqual(s.sent(), ["POST /v2/pick"]);
  });

  it("the original's GET /toastie still orders (deprecated), and HEAD picks nothing", async () => {
    const head = await s.act.request("HEAD", "/toastie?i=cheese&i=vegemite&customer=gita");
    assert.equal(head.status, 200);
    assert.deepEqual(await s.arrange.stock(), start, "HEAD toasted nothing");
    const res = await s.act.get("/toastie?i=cheese&i=vegemite&customer=gita&doneness=burnt", {
      headers: { "user-agent": "curl/8.5.0" },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.doneness, "burnt");
    assert.match(res.headers.get("deprecation") ?? "", /^@\d+$/);
    assert.equal(res.headers.get("link"), '</toastie>; rel="successor-version"');
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.deepEqual(
      await s.arrange.stock(),
      pick(start, ["cheese", "vegemite", "bread", "bread"]),
    );
    assert.match(
      (await s.act.get("/metrics")).text,
      /jafflr_legacy_toastie_calls_total\{[^}]*caller="curl"[^}]*\} 1/,
    );
  });

  it("short stock → 409 out-of-stock naming the ingredient, and no stock changed", async () => {
    await s.arrange.restock({ vegemite: 0 });
    const stockBefore = await s.arrange.stock();
    const res = await s.act.post("/toastie?i=cheese&i=vegemite&customer=gita");
    assert.equal(res.status, 409, res.text);
    assert.match(res.contentType, /problem\+json/);
    assert.equal(res.body.type, "https://toasties-galore.example/problems/out-of-stock");
    assert.equal(res.body.title, "Out of stock");
    assert.deepEqual(res.body.short, [{ ingredient: "vegemite", requested: 1, available: 0 }]);
    assert.match(res.body.detail, /vegemite/);
    assert.deepEqual(await s.arrange.stock(), stockBefore);
    assert.equal((await s.arrange.orders("gita")).length, gitaOrders);
  });

  it("an ingredient chillybin does not stock → 422 unknown-ingredient naming it, nothing taken", async () => {
    const res = await s.act.post("/toastie?i=cheese&i=caviar&customer=gita");
    assert.equal(res.status, 422, res.text);
    assert.equal(res.body.type, "https://toasties-galore.example/problems/unknown-ingredient");
    assert.equal(res.body.title, "Unknown ingredient");
    assert.deepEqual(res.body.unknown, ["caviar"]);
    assert.deepEqual(await s.arrange.stock(), start);
  });

  it("the customer's Idempotency-Key makes a retried toastie pick once", async () => {
    const order = () =>
      s.act.post("/toastie?i=cheese&i=ham&customer=gita", {
        headers: { "Idempotency-Key": "gita-lunch-1" },
      });
    const first = await order();
    const again = await order();
    assert.equal(first.status, 200, first.text);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.orderId, first.body.orderId);
    assert.deepEqual(await s.arrange.stock(), pick(start, ["cheese", "ham", "bread", "bread"]));
    assert.deepEqual(
      s.proxy.exchanges
        .filter((e) => e.path === "/v2/pick")
        .slice(-2)
        .map((e) => e.headers["idempotency-key"]),
      ["gita-lunch-1", "gita-lunch-1"],
    );

    const reused = await s.act.post("/toastie?i=cheese&customer=gita", {
      headers: { "Idempotency-Key": "gita-lunch-1" },
    });
    assert.equal(reused.status, 422, reused.text);
    assert.equal(
      reused.body.type,
      "https://toasties-galore.example/problems/idempotency-key-reused",
    );
    assert.match(reused.body.detail, /already used for a different order/);
  });

  it("an answer lost on the way back is retried with the same key and picks once", async () => {
    s.proxy.next("/v2/pick", { drop: true });
    const res = await s.act.post("/toastie?i=cheese&customer=gita");
    assert.equal(res.status, 200, res.text);
    const attempts = s.proxy.exchanges.filter((e) => e.path === "/v2/pick").slice(-2);
    assert.deepEqual(
      attempts.map((e) => e.fate),
      ["dropped", "relayed"],
    );
    assert.equal(attempts[0]?.headers["idempotency-key"], attempts[1]?.headers["idempotency-key"]);
    const orders = await s.arrange.orders("gita");
    assert.equal(orders.length, gitaOrders + 1, "chillybin placed the order once");
    assert.equal(orders[0]?.id, res.body.orderId);
    assert.deepEqual(await s.arrange.stock(), pick(start, ["cheese", "bread", "bread"]));
  });

  it("jafflr's log line and its call to chillybin share the toastie's trace", async () => {
    const res = await s.act.post("/toastie?i=cheese&customer=gita");
    assert.equal(res.status, 200, res.text);
    const traceparent = String(
      s.proxy.exchanges.filter((e) => e.path === "/v2/pick").at(-1)?.headers.traceparent,
    );
    assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const traceId = traceparent.split("-")[1];
    // The log line reaches the test through a pipe, a moment after the answer.
    await eventually(
      () =>
        s.jafflr
          .logs()
          .split("\n")
          .filter((l) => l.startsWith("{") && l.includes('"toastie done"'))
          .some((l) => JSON.parse(l).trace_id === traceId) || undefined,
      {
        timeoutMs: 20_000,
        message: () => `no "toastie done" line with trace ${traceId}\n${s.jafflr.logs()}`,
      },
    );
  });

  it("is ready, reports chillybin reachable, and counts calls by route and outcome", async () => {
    assert.equal((await s.act.get("/ready")).status, 200);
    const status = await s.act.get("/");
    assert.equal(status.body.chillybin.reachable, true, status.text);
    await s.act.post("/toastie?i=cheese&customer=gita");
    const text = (await s.act.get("/metrics")).text;
    assert.match(
      text,
      /chillybin_client_requests_total\{[^}]*route="\/v2\/pick"[^}]*outcome="ok"[^}]*\} [1-9]/,
    );
    assert.match(text, /toasties_total\{[^}]*picked_via="v2"[^}]*\} [1-9]/);
    assert.match(text, /jafflr_chillybin_up(\{[^}]*\})? 1/);
    assert.match(text, /http_requests_total\{[^}]*route="\/toastie"[^}]*\} \d+/);
  });
});
