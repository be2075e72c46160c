import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { ROOT_CONTEXT, SpanKind } from "@opentelemetry/api";
import { SamplingDecision } from "@opentelemetry/sdk-trace-base";
import { HealthCheckSampler } from "../src/telemetry";
import { get, startFixture } from "./helpers";

describe("HealthCheckSampler", () => {
  const sampler = new HealthCheckSampler();
  const decide = (kind: SpanKind, path: string) =>
    sampler.shouldSample(ROOT_CONTEXT, "t", "GET", kind, { "url.path": path }).decision;

  it("drops probe and scrape server spans", () => {
    for (const p of ["/health", "/ready", "/metrics"]) {
      assert.equal(decide(SpanKind.SERVER, p), SamplingDecision.NOT_RECORD, p);
    }
  });

  it("samples everything else", () => {
    assert.equal(decide(SpanKind.SERVER, "/pick"), SamplingDecision.RECORD_AND_SAMPLED);
    assert.equal(decide(SpanKind.SERVER, "/healthy-toastie"), SamplingDecision.RECORD_AND_SAMPLED);
    assert.equal(decide(SpanKind.CLIENT, "/health"), SamplingDecision.RECORD_AND_SAMPLED);
  });
});

interface OtlpSpan {
  traceId: string;
  name: string;
  kind: number;
}

describe("tracing end to end (real process, OTLP/HTTP receiver)", () => {
  it("exports request spans, not health checks, flushes on shutdown, and logs carry the trace id", async () => {
    const spans: OtlpSpan[] = [];
    const receiver = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        const json = JSON.parse(body);
        for (const rs of json.resourceSpans ?? []) {
          for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
        }
        res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const port = (receiver.address() as AddressInfo).port;
    const f = startFixture({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_BSP_SCHEDULE_DELAY: "60000",
    });
    const url = await f.url;
    assert.equal((await get(`${url}/health`)).status, 200);
    assert.equal((await get(`${url}/slow?ms=10`)).status, 200);
    f.child.kill("SIGTERM");
    assert.equal(await f.exited, 0);
    receiver.close();
    // Exported only at shutdown (the batch delay is a minute): proves the flush.
    const server = spans.filter((s) => s.kind === 2);
    assert.equal(
      server.length,
      1,
      `one server span, for /slow: ${spans.map((s) => s.name).join(", ")}`,
    );
    const traceId = server[0]?.traceId;
    assert.ok(
      spans.some((s) => s.name.includes("/slow") && s.traceId === traceId),
      "express spans in the same trace",
    );
    const logLine = f
      .output()
      .split("\n")
      .find((l) => l.includes('"slow done"'));
    assert.ok(logLine, "handler log line");
    assert.equal(JSON.parse(logLine).trace_id, traceId, "logs join to traces");
  });
});
