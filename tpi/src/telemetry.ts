import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { dirname, join } from "node:path";
import {
  type Context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from "@opentelemetry/semantic-conventions";
import { defaultVersion } from "./config";

let provider: NodeTracerProvider | undefined;

/** pg's query spans come from patching it at load: it must load after the SDK starts. */
const PATCHED_AT_LOAD = /[\\/]node_modules[\\/]pg[\\/]/;

export function telemetryStarted(): boolean {
  return provider !== undefined;
}

/**
 * Starts the OpenTelemetry SDK. Services never call this: `import "tpi/register"` does, as the
 * entry point's first line, and serve() refuses to run without it.
 *
 * Server spans are tpi's own (one per request, made by createServiceApp's first middleware):
 * the http and express auto-instrumentations cost more CPU than the request itself. Query spans
 * (pg) and client spans with `traceparent` out (undici, i.e. fetch) still come from the
 * instrumentations.
 */
export function startTelemetry() {
  if (provider) return provider;
  const early = Object.keys(require.cache).find((p) => PATCHED_AT_LOAD.test(p));
  if (early) {
    throw new Error(
      `tpi/register must be imported before pg (already loaded: ${early}). Make \`import "tpi/register"\` the first line of the entry point.`,
    );
  }
  // The SDK loads here, not when tpi is imported: processes that never trace (the migrate
  // command, tests) skip its ~400 modules.
  const { registerInstrumentations } =
    require("@opentelemetry/instrumentation") as typeof import("@opentelemetry/instrumentation");
  const { PgInstrumentation } =
    require("@opentelemetry/instrumentation-pg") as typeof import("@opentelemetry/instrumentation-pg");
  const { UndiciInstrumentation } =
    require("@opentelemetry/instrumentation-undici") as typeof import("@opentelemetry/instrumentation-undici");
  const { resourceFromAttributes } =
    require("@opentelemetry/resources") as typeof import("@opentelemetry/resources");
  const { BatchSpanProcessor } =
    require("@opentelemetry/sdk-trace-base") as typeof import("@opentelemetry/sdk-trace-base");
  const sdk =
    require("@opentelemetry/sdk-trace-node") as typeof import("@opentelemetry/sdk-trace-node");

  const processors: SpanProcessor[] = [];
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    // Only then: the exporter and its protobuf encoders are ~8 MB of a 120 MB budget.
    const { OTLPTraceExporter } =
      require("@opentelemetry/exporter-trace-otlp-http") as typeof import("@opentelemetry/exporter-trace-otlp-http");
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  }
  const main = mainPackage();
  provider = new sdk.NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: process.env.OTEL_SERVICE_NAME ?? main.name,
      // defaultVersion asks git, so only when the image did not set VERSION.
      [ATTR_SERVICE_VERSION]: process.env.VERSION || defaultVersion(main.dir),
    }),
    spanProcessors: processors,
  });
  provider.register(); // W3C trace-context propagator + AsyncLocalStorage context manager
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      // Query spans only: a span per pool checkout doubles the cost and says nothing new.
      new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
      new UndiciInstrumentation(),
    ],
  });
  return provider;
}

/** Flushes spans still buffered; the last thing graceful shutdown does. */
export async function shutdownTelemetry(): Promise<void> {
  await provider?.shutdown();
}

/** The entry point's package: its name names the service in traces. */
function mainPackage(): { name: string; dir: string } {
  const entry = process.argv[1];
  if (entry) {
    for (let d = dirname(entry); dirname(d) !== d; d = dirname(d)) {
      try {
        const pkg = JSON.parse(readFileSync(join(d, "package.json"), "utf8"));
        return { name: pkg.name ?? "unknown", dir: d };
      } catch {
        // keep walking up
      }
    }
  }
  return { name: "unknown", dir: process.cwd() };
}

export interface ServerSpan {
  span: Span;
  /** The context the request's handlers run in: the span is its active span. */
  context: Context;
  path: string;
}

/** Probe and scrape traffic: traced, it would drown the spans that matter. */
const UNTRACED_PATHS = new Set(["/health", "/ready", "/metrics"]);

/**
 * The server span for one request, continuing the caller's trace (W3C `traceparent`), or
 * undefined when tracing is off or the path is a probe. Returns the context the request's
 * handlers run in, so pg and fetch spans become its children and carry its trace out.
 */
export function startServerSpan(req: IncomingMessage & { path: string }): ServerSpan | undefined {
  if (!provider || UNTRACED_PATHS.has(req.path)) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  // Attributes go on at the end, all at once: given here, the SDK would check them twice.
  const span = tracer().startSpan(req.method ?? "HTTP", { kind: SpanKind.SERVER }, parent);
  // The path now: a mounted router rewrites req.url while it handles the request.
  return { span, context: trace.setSpan(parent, span), path: req.path };
}

/** Names the span by its route template (`GET /orders/:id`) once express has matched one. */
export function endServerSpan(
  { span, path }: ServerSpan,
  req: IncomingMessage,
  route: string | undefined,
  status: number,
) {
  if (route !== undefined) span.updateName(`${req.method} ${route}`);
  span.setAttributes({
    [ATTR_HTTP_REQUEST_METHOD]: req.method,
    [ATTR_URL_PATH]: path,
    [ATTR_URL_SCHEME]: "http",
    [ATTR_CLIENT_ADDRESS]: req.socket.remoteAddress,
    [ATTR_HTTP_ROUTE]: route,
    [ATTR_HTTP_RESPONSE_STATUS_CODE]: status,
  });
  // Server spans: a 4xx is the client's mistake, not an error of this service.
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

let cachedTracer: Tracer | undefined;
function tracer(): Tracer {
  cachedTracer ??= trace.getTracer("tpi");
  return cachedTracer;
}
