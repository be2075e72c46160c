import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type Attributes, type Context, SpanKind, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { ExpressInstrumentation, ExpressLayerType } from "@opentelemetry/instrumentation-express";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { defaultVersion } from "./config";

/** Probe and scrape traffic: traced, it would drown the spans that matter. */
export const UNTRACED_PATHS = new Set(["/health", "/ready", "/metrics"]);

/** Drops server spans for probes and scrapes; everything else is sampled. */
export class HealthCheckSampler implements Sampler {
  shouldSample(
    _ctx: Context,
    _traceId: string,
    _name: string,
    kind: SpanKind,
    attributes: Attributes,
  ): SamplingResult {
    const target = String(attributes["url.path"] ?? attributes["http.target"] ?? "");
    const path = target.split("?")[0] ?? "";
    if (kind === SpanKind.SERVER && UNTRACED_PATHS.has(path)) {
      return { decision: SamplingDecision.NOT_RECORD };
    }
    return { decision: SamplingDecision.RECORD_AND_SAMPLED };
  }
  toString() {
    return "HealthCheckSampler";
  }
}

let provider: NodeTracerProvider | undefined;

/** Modules whose spans come from patching them at load: they must load after the SDK starts. */
const INSTRUMENTED = /[\\/]node_modules[\\/](express|pg|undici)[\\/]/;

export function telemetryStarted(): boolean {
  return provider !== undefined;
}

/**
 * Starts the OpenTelemetry SDK. Services never call this: `import "tpi/register"` does, as the
 * entry point's first line, and serve() refuses to run without it.
 */
export function startTelemetry(
  opts: { serviceName?: string; version?: string; extraProcessors?: SpanProcessor[] } = {},
) {
  if (provider) return provider;
  const early = Object.keys(require.cache).filter((p) => INSTRUMENTED.test(p));
  if (early.length > 0) {
    throw new Error(
      `tpi/register must be imported before express, pg and undici (already loaded: ${early[0]}). Make \`import "tpi/register"\` the first line of the entry point.`,
    );
  }
  const main = mainPackage();
  const processors: SpanProcessor[] = [...(opts.extraProcessors ?? [])];
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  }
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: opts.serviceName ?? process.env.OTEL_SERVICE_NAME ?? main.name,
      [ATTR_SERVICE_VERSION]: opts.version ?? process.env.VERSION ?? main.version,
    }),
    sampler: new ParentBasedSampler({ root: new HealthCheckSampler() }),
    spanProcessors: processors,
  });
  provider.register(); // W3C trace-context propagator + AsyncLocalStorage context manager
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      // Probes and scrapes get no span at all (cheaper than a dropped one); the sampler below
      // still guards any other instrumentation's server spans.
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has((req.url ?? "").split("?")[0] ?? ""),
      }),
      // One span per route handler, not one per middleware layer: the layers cost more CPU than
      // the request itself and say little.
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE] }),
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

export const tracer = () => trace.getTracer("tpi");

function mainPackage(): { name: string; version: string } {
  const entry = process.argv[1];
  if (entry) {
    for (let d = dirname(entry); dirname(d) !== d; d = dirname(d)) {
      try {
        const pkg = JSON.parse(readFileSync(join(d, "package.json"), "utf8"));
        return { name: pkg.name ?? "unknown", version: defaultVersion(d) };
      } catch {
        // keep walking up
      }
    }
  }
  return { name: "unknown", version: "0.0.0" };
}
