/**
 * The v2 protocol: what jafflr sends for a toastie and how each of chillybin's answers (or its
 * silence) becomes a result or a problem for the customer. chillybin is played by small real
 * servers here; against the real one it is integration-tests/test/jafflr-chillybin.test.ts.
 */
import assert from "node:assert/strict";
import type http from "node:http";
import { after, describe, it } from "node:test";
import { createMetrics, type HttpProblem } from "tpi";
import { ChillybinClient } from "../src/chillybin-client";
import { countItems, type Picked, pickV2 } from "../src/pick-v2";
import { closedPort, faultServer, memoryLogger } from "./helpers";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function chillybinAnswering(
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => void,
) {
  const s = await faultServer(handle);
  cleanups.push(s.close);
  return { ...s, client: client(s.url) };
}

function client(baseUrl: string, timeoutMs = 2_000) {
  const c = new ChillybinClient({
    baseUrl,
    connectTimeoutMs: 1_000,
    timeoutMs,
    retries: 2,
    version: "test",
    registry: createMetrics({ service: "jafflr", version: "test" }).registry,
    logger: memoryLogger().logger,
    backoffBaseMs: 5,
    backoffMaxMs: 20,
  });
  cleanups.push(() => c.close());
  return c;
}

const ORDER = {
  customer: "gita",
  ingredients: ["cheese", "bread", "bread"],
  idempotencyKey: "k-1",
};

function problemOf(picked: Picked): HttpProblem {
  assert.equal(picked.ok, false, "expected a problem");
  assert.equal(picked.via, "v2");
  return (picked as Extract<Picked, { ok: false }>).problem;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(status, { "Content-Type": "application/problem+json", ...headers });
    res.end(JSON.stringify(body));
  };
}

describe("pickV2", () => {
  it("sends one POST /v2/pick with the counted items and the Idempotency-Key", async () => {
    const cold = await chillybinAnswering(json(200, { id: "0b7f…" }));
    assert.deepEqual(await pickV2(cold.client, ORDER), { via: "v2", ok: true, orderId: "0b7f…" });
    assert.equal(cold.requests.length, 1);
    const [r] = cold.requests;
    assert.equal(r?.method, "POST");
    assert.equal(r?.url, "/v2/pick");
    assert.equal(r?.headers["idempotency-key"], "k-1");
    assert.equal(r?.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(r?.body ?? ""), {
      customer: "gita",
      items: [
        { ingredient: "cheese", quantity: 1 },
        { ingredient: "bread", quantity: 2 },
      ],
    });
  });

  it("counts items in first-seen order", () => {
    assert.deepEqual(countItems(["ham", "cheese", "ham"]), [
      { ingredient: "ham", quantity: 2 },
      { ingredient: "cheese", quantity: 1 },
    ]);
  });

  it("chillybin unreachable → 503 cold-store-unavailable with Retry-After", async () => {
    const p = problemOf(await pickV2(client(`http://127.0.0.1:${await closedPort()}`), ORDER));
    assert.equal(p.status, 503);
    assert.equal(p.title, "Cold store unavailable");
    assert.match(p.options.type ?? "", /\/problems\/cold-store-unavailable$/);
    assert.match(p.options.detail ?? "", /could not be reached \(ECONNREFUSED\)/);
    assert.match(p.options.headers?.["Retry-After"] ?? "", /^\d+$/);
  });

  it("no answer in time → 503 saying so, after retries with the same key", async () => {
    const slow = await faultServer(() => {});
    cleanups.push(slow.close);
    const p = problemOf(await pickV2(client(slow.url, 150), ORDER));
    assert.equal(p.status, 503);
    assert.match(p.options.detail ?? "", /did not answer in time/);
    assert.deepEqual(
      new Set(slow.requests.map((r) => r.headers["idempotency-key"])),
      new Set(["k-1"]),
    );
  });

  it("chillybin's 503 → 503 carrying its Retry-After and detail", async () => {
    const cold = await chillybinAnswering(
      json(
        503,
        { title: "Database unavailable", detail: "the database is down" },
        { "Retry-After": "0" },
      ),
    );
    const p = problemOf(await pickV2(cold.client, ORDER));
    assert.equal(p.status, 503);
    assert.equal(p.options.headers?.["Retry-After"], "0");
    assert.match(p.options.detail ?? "", /answered 503: the database is down/);
  });

  it("chillybin's 500 → 503; a 200 without an order id → 502 cold-store-error", async () => {
    const broken = await chillybinAnswering(json(500, {}));
    assert.equal(problemOf(await pickV2(broken.client, ORDER)).status, 503);
    const odd = await chillybinAnswering(json(200, {}));
    const p = problemOf(await pickV2(odd.client, ORDER));
    assert.equal(p.status, 502);
    assert.equal(p.title, "Cold store error");
    assert.match(p.options.type ?? "", /\/problems\/cold-store-error$/);
  });

  it("short stock → 409 out-of-stock with chillybin's `short`", async () => {
    const short = [{ ingredient: "vegemite", requested: 1, available: 0 }];
    const cold = await chillybinAnswering(json(409, { title: "Out of stock", short }));
    const p = problemOf(await pickV2(cold.client, ORDER));
    assert.equal(p.status, 409);
    assert.equal(p.title, "Out of stock");
    assert.match(p.options.type ?? "", /\/problems\/out-of-stock$/);
    assert.deepEqual(p.options.extensions?.short, short);
    assert.match(p.options.detail ?? "", /vegemite/);
  });

  it("an unknown ingredient → 422 unknown-ingredient (whether chillybin says 422 or, as before, 404)", async () => {
    for (const status of [422, 404]) {
      const cold = await chillybinAnswering(json(status, { unknown: ["caviar"] }));
      const p = problemOf(await pickV2(cold.client, ORDER));
      assert.equal(p.status, 422);
      assert.equal(p.title, "Unknown ingredient");
      assert.deepEqual(p.options.extensions?.unknown, ["caviar"]);
    }
  });

  it("a reused Idempotency-Key → chillybin's problem passed through", async () => {
    const cold = await chillybinAnswering(
      json(422, {
        type: "https://toasties-galore.example/problems/idempotency-key-reused",
        title: "Idempotency-Key reused",
        detail: "k-1 was already used for a different order",
      }),
    );
    const p = problemOf(await pickV2(cold.client, ORDER));
    assert.equal(p.status, 422);
    assert.equal(p.title, "Idempotency-Key reused");
    assert.match(p.options.type ?? "", /\/problems\/idempotency-key-reused$/);
    assert.equal(p.options.detail, "k-1 was already used for a different order");
  });

  it("no /v2/pick route → 502; any other refusal → 422 order-rejected with chillybin's reason", async () => {
    const old = await chillybinAnswering(json(404, { title: "Not Found" }));
    assert.equal(problemOf(await pickV2(old.client, ORDER)).status, 502);
    const picky = await chillybinAnswering(json(400, { title: "Invalid request", detail: "no" }));
    const p = problemOf(await pickV2(picky.client, ORDER));
    assert.equal(p.status, 422);
    assert.equal(p.title, "Order rejected");
    assert.match(p.options.detail ?? "", /\(400 Invalid request\): no/);
  });
});
