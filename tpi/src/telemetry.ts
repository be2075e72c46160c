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
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
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
  const processors: SpanProcessor[] = [];
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  }
  const main = mainPackage();
  provider = new NodeTracerProvider({
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

/** Probe and scrape traffic: traced, it would drown the spans that matter. */
const UNTRACED_PATHS = new Set(["/health", "/ready", "/metrics"]);

/**
 * The server span for one request, continuing the caller's trace (W3C `traceparent`), or
 * undefined when tracing is off or the path is a probe. Returns the context the request's
 * handlers run in, so pg and fetch spans become its children and carry its trace out.
 */
export function startServerSpan(
  req: IncomingMessage & { path: string },
): { span: Span; context: Context } | undefined {
  if (!provider || UNTRACED_PATHS.has(req.path)) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const span = tracer().startSpan(
    req.method ?? "HTTP",
    {
      kind: SpanKind.SERVER,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: req.method,
        [ATTR_URL_PATH]: req.path,
        [ATTR_URL_SCHEME]: "http",
        [ATTR_CLIENT_ADDRESS]: req.socket.remoteAddress,
      },
    },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/** Names the span by its route template (`GET /orders/:id`) once express has matched one. */
export function endServerSpan(
  span: Span,
  method: string,
  route: string | undefined,
  status: number,
) {
  if (route !== undefined) {
    span.updateName(`${method} ${route}`);
    span.setAttribute(ATTR_HTTP_ROUTE, route);
  }
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  // Server spans: a 4xx is the client's mistake, not an error of this service.
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

let cachedTracer: Tracer | undefined;
function tracer(): Tracer {
  cachedTracer ??= trace.getTracer("tpi");
  return cachedTracer;
}
