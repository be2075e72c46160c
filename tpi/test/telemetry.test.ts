import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { get, startFixture } from "./helpers";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

const attribute = (span: OtlpSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue));
};

describe("tracing end to end (real process, OTLP/HTTP receiver)", () => {
  it("one server span per request, continuing the caller's trace; none for probes; flushed on shutdown; logs carry the ids", async () => {
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
    assert.equal((await get(`${url}/ready`)).status, 200);
    assert.equal((await get(`${url}/metrics`)).status, 200);
    // The caller's span (W3C traceparent, sampled): ours must be its child, in its trace.
    const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const callerSpan = "00f067aa0ba902b7";
    const traceparent = `00-${callerTrace}-${callerSpan}-01`;
    assert.equal((await get(`${url}/slow?ms=10`, undefined, { traceparent })).status, 200);
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
    const [span] = server as [OtlpSpan];
    assert.equal(span.name, "GET /slow", "named by method and route template");
    assert.equal(span.traceId, callerTrace, "continues the caller's trace");
    assert.equal(span.parentSpanId, callerSpan, "child of the caller's span");
    assert.equal(attribute(span, "http.route"), "/slow");
    assert.equal(attribute(span, "http.request.method"), "GET");
    assert.equal(attribute(span, "http.response.status_code"), 200);
    const traceId = span.traceId;
    const logLine = f
      .output()
      .split("\n")
      .find((l) => l.includes('"slow done"'));
    assert.ok(logLine, "handler log line");
    assert.equal(JSON.parse(logLine).trace_id, traceId, "logs join to traces");
    const accessLine = f
      .output()
      .split("\n")
      .find((l) => l.includes('"msg":"request"') && l.includes('"route":"/slow"'));
    assert.ok(accessLine, "access-log line for /slow");
    assert.equal(JSON.parse(accessLine).trace_id, traceId, "the access line joins to the trace");
    assert.equal(JSON.parse(accessLine).span_id, span.spanId, "…and to the server span");
  });
});
