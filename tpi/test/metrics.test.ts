import assert from "node:assert/strict";
import { describe, it } from "node:test";
import express from "express";
import request from "supertest";
import { createMetrics, createServiceApp, Lifecycle } from "../src/index";
import { silentLogger } from "./helpers";

function app() {
  const metrics = createMetrics({ service: "test", version: "9.9.9" });
  const a = createServiceApp({
    service: "test",
    version: "9.9.9",
    logger: silentLogger(),
    metrics,
    lifecycle: new Lifecycle(),
    routes: (router) => {
      router.get("/pick", (_req, res) => {
        res.send("ok");
      });
      const orders = express.Router();
      orders.get("/:id", (req, res) => {
        res.json({ id: req.params.id });
      });
      router.use("/orders", orders);
    },
  });
  return { app: a, metrics };
}

async function series(metrics: ReturnType<typeof createMetrics>) {
  const json = await metrics.registry.getMetricsAsJSON();
  const total = json.find((m) => m.name === "http_requests_total");
  return (total?.values ?? []).map((v) => v.labels);
}

describe("RED metrics", () => {
  it("labels by route template, never the raw URL", async () => {
    const { app: a, metrics } = app();
    await request(a).get("/pick?name=cheese&quantity=1").expect(200);
    await request(a).get("/pick?name=ham&quantity=2").expect(200);
    await request(a).get("/orders/123").expect(200);
    await request(a).get("/orders/456").expect(200);
    const labels = await series(metrics);
    assert.deepEqual(labels.map((l) => l.route).sort(), ["/orders/:id", "/pick"]);
    const pick = labels.find((l) => l.route === "/pick");
    assert.equal(pick?.method, "GET");
    assert.equal(pick?.status_code, "200");
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /http_requests_total\{method="GET",route="\/pick",status_code="200",service="test",version="9.9.9"\} 2/,
    );
    assert.match(text, /http_request_duration_seconds_count\{[^}]*route="\/pick"[^}]*\} 2/);
    assert.match(text, /process_cpu_user_seconds_total/, "default process metrics");
  });

  it("keeps cardinality bounded whatever URLs and methods clients send", async () => {
    const { app: a, metrics } = app();
    for (let i = 0; i < 50; i++) {
      await request(a)
        .get(`/random-${i}/${"x".repeat(i)}?q=${i}`)
        .expect(404);
    }
    await request(a).patch("/nowhere").expect(404);
    await request(a).search("/pick").expect(404);
    const labels = await series(metrics);
    assert.deepEqual(
      labels.map((l) => `${l.method} ${l.route} ${l.status_code}`).sort(),
      ["OTHER unmatched 404", "GET unmatched 404", "PATCH unmatched 404"].sort(),
    );
  });

  it("serves /metrics in Prometheus text format", async () => {
    const { app: a } = app();
    const res = await request(a).get("/metrics").expect(200);
    assert.match(res.headers["content-type"] ?? "", /text\/plain/);
    assert.match(res.text, /# TYPE http_requests_total counter/);
  });
});
