import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import { requestListener } from "../src/http";
import { createMetrics, createServiceApp, Lifecycle } from "../src/index";
import { capturingLogger, silentLogger } from "./helpers";

function app(
  readiness: Record<string, () => Promise<unknown>>,
  lifecycle = new Lifecycle(),
  { logger = silentLogger(), metrics = createMetrics({ service: "svc", version: "7.0.0" }) } = {},
) {
  return createServiceApp({
    service: "svc",
    version: "7.0.0",
    logger,
    metrics,
    lifecycle,
    readiness,
    routes: () => {},
  });
}

describe("health and readiness", () => {
  it("/health reports the version without touching dependencies", async () => {
    let called = false;
    const res = await request(
      app({
        database: async () => {
          called = true;
        },
      }),
    )
      .get("/health")
      .expect(200);
    assert.deepEqual(res.body, { status: "ok", service: "svc", version: "7.0.0" });
    assert.equal(called, false);
  });

  it("/ready is 200 when every check passes", async () => {
    const res = await request(app({ database: async () => 1 }))
      .get("/ready")
      .expect(200);
    assert.deepEqual(res.body, { status: "ready", checks: { database: "ok" } });
  });

  it("/ready is 503 naming the failed check", async () => {
    const res = await request(
      app({
        database: async () => {
          throw new Error("connect ECONNREFUSED");
        },
        flags: async () => 1,
      }),
    ).get("/ready");
    assert.equal(res.status, 503);
    assert.deepEqual(res.body, {
      status: "unavailable",
      checks: { database: "connect ECONNREFUSED", flags: "ok" },
    });
  });

  it("/ready is 503 while shutting down, /health still 200", async () => {
    const lifecycle = new Lifecycle();
    const a = app({ database: async () => 1 }, lifecycle);
    lifecycle.beginShutdown();
    const res = await request(a).get("/ready");
    assert.equal(res.status, 503);
    assert.equal(res.body.checks.shutdown, "shutting down");
    await request(a).get("/health").expect(200);
  });

  it("GET /health, answered before express, is still logged and counted; HEAD still works", async () => {
    const { logger, lines } = capturingLogger();
    const metrics = createMetrics({ service: "svc", version: "7.0.0" });
    // The listener serve() gives the HTTP server, rather than the express app itself.
    const a = requestListener(app({}, new Lifecycle(), { logger, metrics }));
    const res = await request(a).get("/health").set("X-Request-Id", "probe-1").expect(200);
    assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(res.headers["x-request-id"], "probe-1");
    assert.deepEqual(res.body, { status: "ok", service: "svc", version: "7.0.0" });
    await request(a).head("/health").expect(200);
    const access = lines().filter((l) => l.msg === "request");
    assert.deepEqual(
      access.map((l) => [l.method, l.route, l.status, l.request_id === "probe-1" || l.method]),
      [
        ["GET", "/health", 200, true],
        ["HEAD", "/health", 200, "HEAD"],
      ],
    );
    assert.equal(access[0]?.bytes, Buffer.byteLength(JSON.stringify(res.body)));
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /http_requests_total\{method="GET",route="\/health",status_code="200"[^}]*\} 1/,
    );
    assert.match(
      text,
      /http_requests_total\{method="HEAD",route="\/health",status_code="200"[^}]*\} 1/,
    );
  });

  it("GET /health answered before express asks keep-alive clients to reconnect while draining", async () => {
    const lifecycle = new Lifecycle();
    const a = requestListener(app({}, lifecycle));
    const probe = () => request(a).get("/health").set("Connection", "keep-alive").expect(200);
    assert.equal((await probe()).headers.connection, "keep-alive");
    lifecycle.beginShutdown();
    assert.equal((await probe()).headers.connection, "close");
  });
});
