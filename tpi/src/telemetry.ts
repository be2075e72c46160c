import type { IncomingMessage } from "node:http";
import { dirname, resolve } from "node:path";
import * as otel from "@opentelemetry/api";
import type { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { defaultVersion, findUp } from "./config";
import { PROBES } from "./health";

let provider: NodeTracerProvider | undefined;
export const telemetryStarted = () => provider !== undefined;
// Server spans are tpi's own: the http and express instrumentations cost more CPU than the
// request. pg query spans and undici client spans (traceparent out) come from instrumentations.
export function startTelemetry() {
  if (provider) return provider;
  // pg's query spans come from patching it at load: it must load after this.
  const pg = Object.keys(require.cache).find((p) => /[\\/]node_modules[\\/]pg[\\/]/.test(p));
  if (pg) throw new Error(`tpi/register must be imported before pg, as the first line (${pg})`);
  // Required here, not imported: processes that never trace (migrate, tests) skip ~400 modules.
  const { registerInstrumentations } = require("@opentelemetry/instrumentation");
  const { PgInstrumentation } = require("@opentelemetry/instrumentation-pg");
  const { UndiciInstrumentation } = require("@opentelemetry/instrumentation-undici");
  const { resourceFromAttributes } = require("@opentelemetry/resources");
  const { BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base");
  const { NodeTracerProvider } = require("@opentelemetry/sdk-trace-node");
  const { env } = process;
  // The exporter only when there is somewhere to send: it is ~8 MB of a 120 MB budget.
  const exporting = env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const { OTLPTraceExporter } = exporting ? require("@opentelemetry/exporter-trace-otlp-http") : {};
  const entry = process.argv[1]; // unset while preloaded (`node -r tpi/register`)
  const pkg = entry ? findUp(dirname(resolve(entry)), "package.json") : undefined;
  const created: NodeTracerProvider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      "service.name": env.OTEL_SERVICE_NAME ?? (pkg && require(pkg).name) ?? "unknown",
      "service.version": env.VERSION || defaultVersion(pkg ? dirname(pkg) : process.cwd()),
    }),
    spanProcessors: exporting ? [new BatchSpanProcessor(new OTLPTraceExporter())] : [],
  });
  created.register(); // W3C trace-context propagator, AsyncLocalStorage context manager
  // pg: query spans only; a span per pool checkout doubles the cost and says nothing new.
  const pgOptions = { requireParentSpan: true, ignoreConnectSpans: true };
  const instrumentations = [new PgInstrumentation(pgOptions), new UndiciInstrumentation()];
  registerInstrumentations({ tracerProvider: created, instrumentations });
  provider = created;
  return created;
}

export const shutdownTelemetry = async () => provider?.shutdown();
export type ServerSpan = { span: otel.Span; context: otel.Context; path: string };
let tracer: otel.Tracer | undefined;
export function startServerSpan(req: IncomingMessage & { path: string }): ServerSpan | undefined {
  if (!provider || PROBES.has(req.path)) return undefined;
  const parent = otel.propagation.extract(otel.ROOT_CONTEXT, req.headers);
  tracer ??= otel.trace.getTracer("tpi");
  // Attributes go on at the end, all at once: given here, the SDK would check them twice.
  const span = tracer.startSpan(req.method ?? "HTTP", { kind: otel.SpanKind.SERVER }, parent);
  // The path now: a mounted router rewrites req.url while it handles the request.
  return { span, context: otel.trace.setSpan(parent, span), path: req.path };
}

/** Names the span by its route template (`GET /orders/:id`) once express has matched one. */
export function endServerSpan(s: ServerSpan, req: IncomingMessage, route?: string, status = 0) {
  const { span, path } = s;
  if (route) span.updateName(`${req.method} ${route}`);
  span.setAttributes({
    "http.request.method": req.method,
    "url.path": path,
    "url.scheme": "http",
    "client.address": req.socket.remoteAddress,
    "http.route": route,
    "http.response.status_code": status,
  });
  // A 4xx is the client's mistake, not an error of this service.
  if (status >= 500) span.setStatus({ code: otel.SpanStatusCode.ERROR });
  span.end();
}
