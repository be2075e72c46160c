// The post-deploy smoke suite, safe against production: it changes no business state (no order,
// pick or restock) and no count the foxtrot reads (it never calls v1), yet shows each service
// ready at the version just rolled out, reading its data, traced, measured, describing its API,
// the stall page served, and the order routes answering (with requests they must refuse).
//   JAFFLR_URL=… CHILLYBIN_URL=… node --import tsx --test smoke/*.test.ts   (verify.sh does this)
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { CHILLYBIN_URL, call, expectInvalidRequest, JAFFLR_URL, SERVICES } from "./smoke";

for (const [service, url, version] of SERVICES) {
  test(`${service} is live and ready at the version rolled out, with labelled metrics`, async () => {
    const health = await call(`${url}/health`);
    assert.equal(health.status, 200, health.text);
    if (version) assert.equal(JSON.parse(health.text).version, version, health.text);
    assert.equal((await call(`${url}/ready`)).status, 200);
    const metrics = (await call(`${url}/metrics`)).text;
    assert.match(metrics, /^# TYPE http_requests_total counter$/m);
    assert.ok(metrics.includes(`service="${service}"`), "service label");
    if (version) assert.ok(metrics.includes(`version="${version}"`), "version label");
  });
}

test("chillybin reads its stock from the database", async () => {
  const stock = await call(`${CHILLYBIN_URL}/`);
  assert.equal(stock.status, 200, stock.text);
  const levels = Object.values(JSON.parse(stock.text));
  assert.ok(
    levels.length > 0 && levels.every((quantity) => typeof quantity === "number"),
    stock.text,
  );
});

test("a traced request keeps its request id", async () => {
  const [traceId, requestId] = [
    randomBytes(16).toString("hex"),
    `smoke-${randomBytes(6).toString("hex")}`,
  ];
  for (const [, url] of SERVICES) {
    const headers = {
      traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`,
      "x-request-id": requestId,
    };
    const answer = await call(`${url}/`, { headers });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers.get("x-request-id"), requestId);
  }
});

test("chillybin's POST /v2/pick and jafflr's POST /toastie answer, refusing orders that are none", async () => {
  const json = (body: unknown, key = {}) => ({
    method: "POST",
    headers: { "content-type": "application/json", ...key },
    body: JSON.stringify(body),
  });
  // items must be a list: refused by validation, before any order exists.
  await expectInvalidRequest(
    `${CHILLYBIN_URL}/v2/pick`,
    json({ customer: "smoke", items: "cheese" }, { "idempotency-key": "smoke-no-items" }),
  );
  await expectInvalidRequest(`${JAFFLR_URL}/toastie`, json({ ingredients: "cheese" }));
});

test("each service describes its API, and jafflr serves the stall page with its assets", async () => {
  for (const [url, route] of [
    [JAFFLR_URL, "/toastie"],
    [CHILLYBIN_URL, "/v2/pick"],
  ] as const) {
    const api = await call(`${url}/openapi.json`);
    assert.equal(api.status, 200, api.text);
    assert.ok(JSON.parse(api.text).paths[route], `${url}/openapi.json describes ${route}`);
  }
  const page = await call(`${JAFFLR_URL}/`, { headers: { accept: "text/html" } });
  assert.equal(page.status, 200, page.text);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  const assets = page.text.match(/\/stall\/assets\/[^"'\s>]+/g) ?? [];
  assert.ok(assets.length >= 2, `the page's script and styles: ${page.text.slice(0, 500)}`);
  for (const asset of assets) assert.equal((await call(`${JAFFLR_URL}${asset}`)).status, 200);
});
