// The post-deploy smoke suite: safe against production. It changes no business state — no order,
// no pick, no restock — yet shows each service ready, at the version just rolled out, reading its
// data, traced, measured, and answering its v2 routes (with requests they must refuse).
//   JAFFLR_URL=… CHILLYBIN_URL=… node --import tsx --test smoke/*.test.ts   (verify.sh does this)
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { CHILLYBIN_URL, call, EXPECTED, expectInvalidRequest, JAFFLR_URL, SERVICES } from "./smoke";

describe("smoke: the deployed services, without changing any business state", () => {
  for (const [service, url] of SERVICES) {
    test(`${service} is live and ready, at the version rolled out`, async () => {
      const health = await call(`${url}/health`);
      assert.equal(health.status, 200, health.text);
      const expected = EXPECTED[service];
      if (expected) assert.equal(JSON.parse(health.text).version, expected, health.text);
      const ready = await call(`${url}/ready`);
      assert.equal(ready.status, 200, ready.text);
    });

    test(`${service} serves Prometheus metrics labelled with its service and version`, async () => {
      const metrics = await call(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /^# TYPE http_requests_total counter$/m);
      const labels = `service="${service}"`;
      assert.ok(metrics.text.includes(labels), `no ${labels} label`);
      const expected = EXPECTED[service];
      if (expected) assert.ok(metrics.text.includes(`version="${expected}"`), "version label");
    });
  }

  test("chillybin reads its stock from the database", async () => {
    const stock = await call(`${CHILLYBIN_URL}/`);
    assert.equal(stock.status, 200, stock.text);
    const levels = JSON.parse(stock.text) as Record<string, unknown>;
    assert.ok(Object.keys(levels).length > 0, "some ingredient is stocked");
    for (const quantity of Object.values(levels)) assert.equal(typeof quantity, "number");
  });

  test("a traced request keeps its trace context and request id", async () => {
    const traceId = randomBytes(16).toString("hex");
    const requestId = `smoke-${randomBytes(6).toString("hex")}`;
    for (const [, url] of SERVICES) {
      const answer = await call(`${url}/`, {
        headers: {
          traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`,
          "x-request-id": requestId,
        },
      });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers.get("x-request-id"), requestId);
    }
  });

  test("chillybin's POST /v2/pick answers, refusing an order that is not one", async () => {
    await expectInvalidRequest(`${CHILLYBIN_URL}/v2/pick`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "smoke-no-ingredients" },
      // items must be a list: refused by validation, before any order exists.
      body: JSON.stringify({ customer: "smoke", items: "cheese" }),
    });
  });

  test("jafflr's POST /toastie answers, refusing an order that is not one", async () => {
    await expectInvalidRequest(`${JAFFLR_URL}/toastie`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ingredients: "cheese" }),
    });
  });
});
