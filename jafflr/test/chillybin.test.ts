import "tpi/register"; // first, as in index.ts: trace context must reach chillybin

/**
 * jafflr's app against a real chillybin: its built output started as a process on a fresh
 * database. A small recording proxy sits in between to see what jafflr sent and, once, to lose
 * a response on the way back (the network fault an idempotent retry must survive).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import request from "supertest";
import { type ServiceProcess, startService, stopAll } from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import {
  buildJafflr,
  eventually,
  metricValue,
  pickV2For,
  type RecordedRequest,
  type TestJafflr,
  tempFlagFile,
} from "./helpers";

type Stock = Record<string, number>;

let db: TestDatabase;
let chillybin: ServiceProcess;
let proxy: Awaited<ReturnType<typeof recordingProxy>>;
let jafflr: TestJafflr;
const flags = tempFlagFile();

before(async () => {
  db = await createTestDatabase();
  chillybin = await startService("chillybin", { DATABASE_URL: db.url });
  proxy = await recordingProxy(chillybin.url);
  jafflr = await buildJafflr({ chillybinUrl: proxy.url, flagsFile: flags.file });
});
after(async () => {
  await jafflr?.close();
  await proxy?.close();
  await stopAll();
  await db?.drop();
  flags.remove();
});

const FULL: Stock = { bread: 10, cheese: 10, ham: 10, vegemite: 10 };
/** The whole stock after the restock each test starts from. */
let start: Stock;
/** gita's orders before the test. */
let gitaOrders: number;

beforeEach(async () => {
  await arrange.restock(FULL);
  writeFileSync(flags.file, pickV2For(["gita"]));
  await eventually(
    () => !jafflr.features.isEnabled("pick.v2", { userId: "gordon" }),
    "flags reset",
  );
  start = await arrange.stock();
  gitaOrders = (await arrange.orders("gita")).length;
  proxy.requests.length = 0;
});

/** Arrange: talks to chillybin directly and throws when set-up fails. */
const arrange = {
  async restock(levels: Stock) {
    const res = await fetch(`${chillybin.url}/restock`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(levels),
    });
    if (!res.ok) throw new Error(`restock failed: ${res.status} ${await res.text()}`);
  },
  async stock(): Promise<Stock> {
    const res = await fetch(`${chillybin.url}/`);
    if (!res.ok) throw new Error(`stock failed: ${res.status}`);
    return (await res.json()) as Stock;
  },
  async orders(
    customer: string,
  ): Promise<{ id: string; items: { ingredient: string; quantity: number }[] }[]> {
    const res = await fetch(`${chillybin.url}/orders?customer=${encodeURIComponent(customer)}`);
    if (!res.ok) throw new Error(`orders failed: ${res.status}`);
    return ((await res.json()) as { orders: [] }).orders;
  },
};

/** Act: jafflr over HTTP; never throws, returns status and body. */
const act = () => request(jafflr.app);

function pick(stock: Stock, names: string[]): Stock {
  const out = { ...stock };
  for (const n of names) out[n] = (out[n] ?? 0) - 1;
  return out;
}

describe("toasties with a real chillybin", () => {
  it("the original's happy path: v1 picks each ingredient and both bread slices", async () => {
    const res = await act().post("/toastie?i=cheese&i=vegemite");
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, {
      status: "done",
      customer: "anonymous",
      ingredients: ["cheese", "vegemite", "bread", "bread"],
      doneness: "light",
      pickedVia: "v1",
    });
    const stock = await arrange.stock();
    assert.equal(stock.cheese, 9);
    assert.equal(stock.vegemite, 9);
    assert.equal(stock.bread, 8);
    assert.deepEqual(
      proxy.requests.map((r) => `${r.method} ${r.url}`),
      [
        "GET /pick?name=cheese&quantity=1",
        "GET /pick?name=vegemite&quantity=1",
        "GET /pick?name=bread&quantity=1",
        "GET /pick?name=bread&quantity=1",
      ],
    );
  });

  it("gita's toastie goes through v2: one atomic order with every item", async () => {
    const res = await act()
      .post("/toastie")
      .send({ customer: "gita", ingredients: ["cheese", "vegemite"], doneness: "medium" });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.pickedVia, "v2");
    assert.equal(res.body.doneness, "medium");
    assert.match(res.body.orderId, /^[0-9a-f-]{36}$/);
    const [order, ...others] = await arrange.orders("gita"); // newest first
    assert.equal(others.length, gitaOrders);
    assert.equal(order?.id, res.body.orderId);
    assert.deepEqual(order?.items, [
      { ingredient: "bread", quantity: 2 },
      { ingredient: "cheese", quantity: 1 },
      { ingredient: "vegemite", quantity: 1 },
    ]);
    assert.deepEqual(await arrange.stock(), pick(start, ["cheese", "vegemite", "bread", "bread"]));
    assert.equal(proxy.requests.length, 1);
    assert.equal(proxy.requests[0]?.url, "/v2/pick");
  });

  it("a flag flip moves gordon from v1 to v2 without a restart", async () => {
    const before = await act().post("/toastie?i=cheese&customer=gordon");
    assert.equal(before.body.pickedVia, "v1");
    writeFileSync(flags.file, pickV2For(["gita", "gordon"]));
    await eventually(
      () => jafflr.features.isEnabled("pick.v2", { userId: "gordon" }),
      "the flip is seen",
    );
    const afterFlip = await act().post("/toastie?i=cheese&customer=gordon");
    assert.equal(afterFlip.status, 200);
    assert.equal(afterFlip.body.pickedVia, "v2");
    assert.equal((await arrange.orders("gordon")).length, 1, "gordon's first v2 order");
  });

  it("v2 short stock → 409 naming the ingredient, and no stock changed", async () => {
    await arrange.restock({ vegemite: 0 });
    const stockBefore = await arrange.stock();
    const res = await act().post("/toastie?i=cheese&i=vegemite&customer=gita");
    assert.equal(res.status, 409);
    assert.match(res.headers["content-type"] ?? "", /problem\+json/);
    assert.deepEqual(res.body.short, [{ ingredient: "vegemite", requested: 1, available: 0 }]);
    assert.equal(res.body.type, "https://toasties-galore.example/problems/out-of-stock");
    assert.match(res.body.detail, /vegemite/);
    assert.deepEqual(await arrange.stock(), stockBefore);
    assert.equal((await arrange.orders("gita")).length, gitaOrders);
  });

  it("v1 short stock midway → 409 saying what was already taken (v1 is knowingly not atomic)", async () => {
    await arrange.restock({ vegemite: 0 });
    const res = await act().post("/toastie?i=cheese&i=vegemite&customer=gordon");
    assert.equal(res.status, 409);
    assert.deepEqual(res.body.taken, ["cheese"]);
    assert.equal(res.body.failedAt, "vegemite");
    assert.equal(res.body.short[0].ingredient, "vegemite");
    const stock = await arrange.stock();
    assert.equal(stock.cheese, 9);
    assert.equal(stock.bread, 10, "nothing after the failure was picked");
  });

  it("an ingredient chillybin does not stock → 422 naming it", async () => {
    const v2 = await act().post("/toastie?i=cheese&i=caviar&customer=gita");
    assert.equal(v2.status, 422);
    assert.deepEqual(v2.body.unknown, ["caviar"]);
    assert.equal(v2.body.type, "https://toasties-galore.example/problems/unknown-ingredient");
    assert.deepEqual(await arrange.stock(), start, "v2 changed nothing");

    const v1 = await act().post("/toastie?i=cheese&i=caviar&customer=gordon");
    assert.equal(v1.status, 422);
    assert.deepEqual(v1.body.unknown, ["caviar"]);
    assert.deepEqual(v1.body.taken, ["cheese"]);
  });

  it("the customer's Idempotency-Key makes a retried toastie pick once", async () => {
    const order = () =>
      act().post("/toastie?i=cheese&i=ham&customer=gita").set("Idempotency-Key", "gita-lunch-1");
    const first = await order();
    const again = await order();
    assert.equal(first.status, 200);
    assert.equal(again.status, 200);
    assert.equal(again.body.orderId, first.body.orderId);
    assert.deepEqual(await arrange.stock(), pick(start, ["cheese", "ham", "bread", "bread"]));
    assert.deepEqual(
      proxy.requests.map((r) => r.headers["idempotency-key"]),
      ["gita-lunch-1", "gita-lunch-1"],
    );

    const reused = await act()
      .post("/toastie?i=cheese&customer=gita")
      .set("Idempotency-Key", "gita-lunch-1");
    assert.equal(reused.status, 422);
    assert.match(reused.body.detail, /already used for a different order/);
  });

  it("a response lost on the way back is retried with the same key and picks once", async () => {
    proxy.loseNextResponseTo("/v2/pick");
    const res = await act().post("/toastie?i=cheese&customer=gita");
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const attempts = proxy.requests.filter((r) => r.url === "/v2/pick");
    assert.equal(attempts.length, 2, "the lost attempt and its retry");
    assert.equal(attempts[0]?.headers["idempotency-key"], attempts[1]?.headers["idempotency-key"]);
    const orders = await arrange.orders("gita");
    assert.equal(orders.length, gitaOrders + 1, "chillybin placed the order once");
    assert.equal(orders[0]?.id, res.body.orderId);
    assert.deepEqual(await arrange.stock(), pick(start, ["cheese", "bread", "bread"]));
  });

  it("calls to chillybin carry the toastie's trace", async () => {
    const res = await act().post("/toastie?i=cheese&customer=gita");
    assert.equal(res.status, 200);
    const traceparent = String(proxy.requests[0]?.headers.traceparent);
    assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const done = jafflr
      .logLines()
      .filter((l) => l.msg === "toastie done")
      .at(-1);
    assert.equal(
      traceparent.split("-")[1],
      done?.trace_id,
      "jafflr's log line and chillybin's call share a trace",
    );
  });

  it("a full grill refuses with 503 + Retry-After and picks nothing for the refused order", async () => {
    const small = await buildJafflr({
      chillybinUrl: proxy.url,
      flagsFile: flags.file,
      grill: { slots: 1, queue: 0 },
    });
    const busy = await small.grill.reserve(); // the one slot is taken (as by a toastie cooking)
    try {
      const refused = await request(small.app).post("/toastie?i=cheese&i=ham");
      assert.equal(refused.status, 503);
      assert.match(refused.headers["content-type"] ?? "", /problem\+json/);
      assert.match(refused.headers["retry-after"] ?? "", /^[1-9]\d*$/);
      assert.deepEqual((await request(small.app).get("/")).body, {
        toasting: 1,
        waiting: 0,
        slots: 1,
        version: "test",
      });
      assert.equal(proxy.requests.length, 0, "nothing was picked for the refused order");
      busy.release();
      assert.equal(
        (await request(small.app).post("/toastie?i=cheese")).status,
        200,
        "served once a slot is free",
      );
      assert.deepEqual(await arrange.stock(), pick(start, ["cheese", "bread", "bread"]));
    } finally {
      busy.release();
      await small.close();
    }
  });

  it("a customer who hangs up while queued leaves the queue and gets nothing picked", async () => {
    const small = await buildJafflr({
      chillybinUrl: proxy.url,
      flagsFile: flags.file,
      grill: { slots: 1, queue: 5 },
    });
    const busy = await small.grill.reserve();
    const server = small.app.listen(0, "127.0.0.1");
    try {
      await new Promise((resolve) => server.once("listening", resolve));
      const { port } = server.address() as AddressInfo;
      const impatient = http.request({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/toastie?i=cheese&i=ham",
      });
      impatient.on("error", () => {});
      impatient.end();
      await eventually(() => small.grill.waiting === 1, "the toastie queues");
      impatient.destroy();
      await eventually(() => small.grill.waiting === 0, "the queue lets it go");
      busy.release();
      assert.equal(small.grill.toasting, 0, "the freed slot went to nobody");
      assert.equal(proxy.requests.length, 0, "nothing was picked for the customer who left");
      assert.deepEqual(await arrange.stock(), start);
    } finally {
      busy.release();
      await new Promise((resolve) => server.close(resolve));
      await small.close();
    }
  });

  it("queued toasties are served in arrival order", async () => {
    const small = await buildJafflr({
      chillybinUrl: proxy.url,
      flagsFile: flags.file,
      grill: { slots: 1, queue: 5 },
    });
    const busy = await small.grill.reserve();
    try {
      const customers = ["c1", "c2", "c3", "c4"];
      const served: string[] = [];
      const orders: Promise<unknown>[] = [];
      for (const [i, customer] of customers.entries()) {
        orders.push(
          request(small.app)
            .post(`/toastie?i=cheese&customer=${customer}`)
            .then((r) => served.push(`${r.status} ${r.body.customer}`)),
        );
        // Arrival order is what is being tested, so each one is queued before the next is sent.
        await eventually(() => small.grill.waiting === i + 1, `${customer} queued`);
      }
      assert.equal(proxy.requests.length, 0, "nobody picks while waiting");
      busy.release();
      await Promise.all(orders);
      assert.deepEqual(served, ["200 c1", "200 c2", "200 c3", "200 c4"]);
      assert.equal(proxy.requests.length, 12);
    } finally {
      busy.release();
      await small.close();
    }
  });

  it("is ready while chillybin is, and counts calls by route and outcome", async () => {
    const ready = await act().get("/ready");
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body.checks, { chillybin: "ok" });
    await act().post("/toastie?i=cheese&customer=gita");
    await act().post("/toastie?i=cheese&customer=gordon");
    const count = async (name: string, labels: Record<string, string>) =>
      (await metricValue(jafflr.metrics, name, labels)) ?? 0;
    assert.ok(
      (await count("chillybin_client_requests_total", { route: "/v2/pick", outcome: "ok" })) > 0,
    );
    assert.ok(
      (await count("chillybin_client_requests_total", { route: "/pick", outcome: "ok" })) > 0,
    );
    assert.ok((await count("toasties_total", { picked_via: "v2" })) > 0);
    const text = (await act().get("/metrics")).text;
    assert.match(text, /http_requests_total\{[^}]*route="\/toastie"[^}]*\} \d+/);
    assert.match(text, /chillybin_client_request_duration_seconds_bucket\{[^}]*route="\/pick"/);
  });
});

/**
 * A pass-through proxy to chillybin that records requests and can lose one response: it lets
 * chillybin do the work, then hangs up instead of answering.
 */
async function recordingProxy(target: string) {
  const requests: RecordedRequest[] = [];
  let lose: string | undefined;
  const upstream = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? "/";
      requests.push({
        method: req.method ?? "",
        url: path,
        headers: req.headers,
        body: body.toString(),
        remotePort: req.socket.remotePort,
      });
      const hangUp = lose !== undefined && path.startsWith(lose);
      if (hangUp) lose = undefined;
      const out = http.request(
        new URL(path, target),
        {
          method: req.method,
          headers: { ...req.headers, host: new URL(target).host },
          agent: upstream,
        },
        (up) => {
          const parts: Buffer[] = [];
          up.on("data", (c: Buffer) => parts.push(c));
          up.on("end", () => {
            if (hangUp) return req.socket.destroy(); // chillybin did the work; the answer is lost
            res.writeHead(up.statusCode ?? 502, up.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      out.on("error", () => req.socket.destroy());
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    loseNextResponseTo(path: string) {
      lose = path;
    },
    close: () =>
      new Promise<void>((resolve) => {
        upstream.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
