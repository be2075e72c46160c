/**
 * A tiny OTLP/HTTP receiver for traces: the collector the tracing test points the services at
 * (`OTEL_EXPORTER_OTLP_ENDPOINT=<receiver.url>`). It accepts what
 * @opentelemetry/exporter-trace-otlp-http sends — JSON (`POST /v1/traces`, optionally gzipped) —
 * and keeps every span with its resource's attributes, so a test can look a trace up.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";

/** OTLP span kinds as they appear on the wire (the API's SpanKind + 1). */
export const SPAN_KIND = {
  UNSPECIFIED: 0,
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const;

export type AttributeValue = string | number | boolean | undefined | AttributeValue[];

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, AttributeValue>;
  /** The exporting process's resource, e.g. `service.name`. */
  resource: Record<string, AttributeValue>;
  /** e.g. @opentelemetry/instrumentation-pg */
  scope: string;
  status?: { code?: number; message?: string };
}

export interface OtlpReceiver {
  /** http://127.0.0.1:<port>: the value for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans(): ReceivedSpan[];
  /** Export requests that could not be read (bad content type or body), for assertion messages. */
  rejected(): string[];
  /** Every span with this trace id. */
  trace(traceId: string): ReceivedSpan[];
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const rejected: string[] = [];
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (req.method !== "POST" || req.url?.split("?")[0] !== "/v1/traces") {
      reply(404, {
        message: `only POST /v1/traces is received here, not ${req.method} ${req.url}`,
      });
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      try {
        if (size > MAX_BODY_BYTES) throw new Error(`export of ${size} bytes is too large`);
        const type = String(req.headers["content-type"] ?? "");
        if (!type.includes("json")) {
          throw new Error(`unsupported content type ${JSON.stringify(type)} (JSON only)`);
        }
        const body = decode(Buffer.concat(chunks), String(req.headers["content-encoding"] ?? ""));
        spans.push(...flatten(JSON.parse(body.toString("utf8"))));
        reply(200, {});
      } catch (error) {
        rejected.push((error as Error).message);
        reply(400, { message: (error as Error).message });
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => [...spans],
    rejected: () => [...rejected],
    trace: (traceId) => spans.filter((s) => s.traceId === traceId),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function decode(body: Buffer, encoding: string): Buffer {
  if (encoding === "gzip") return gunzipSync(body);
  if (encoding === "deflate") return inflateSync(body);
  if (encoding === "" || encoding === "identity") return body;
  throw new Error(`unsupported content encoding ${JSON.stringify(encoding)}`);
}

// ---------- OTLP JSON → flat spans ----------

interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}

interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
}

interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  attributes?: OtlpKeyValue[];
  status?: { code?: number; message?: string };
}

interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: { scope?: { name?: string }; spans?: OtlpSpan[] }[];
  }[];
}

/** Flattens an ExportTraceServiceRequest in OTLP/JSON (hex ids) into spans with their resource. */
export function flatten(request: OtlpExport): ReceivedSpan[] {
  if (!Array.isArray(request?.resourceSpans)) {
    throw new Error("not an OTLP trace export: no resourceSpans array");
  }
  return request.resourceSpans.flatMap((resourceSpans) => {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    return (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
      (scopeSpans.spans ?? []).map((span) => ({
        traceId: hexId(span.traceId),
        spanId: hexId(span.spanId),
        parentSpanId: hexId(span.parentSpanId),
        name: span.name ?? "",
        kind: span.kind ?? SPAN_KIND.UNSPECIFIED,
        attributes: attributesOf(span.attributes),
        resource,
        scope: scopeSpans.scope?.name ?? "",
        status: span.status,
      })),
    );
  });
}

/** OTLP/JSON ids are hex; the protobuf-JSON mapping would be base64. Accept both, return hex. */
function hexId(id: string | undefined): string {
  if (!id) return "";
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, "base64").toString("hex");
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

function anyValue(value: OtlpAnyValue | undefined): AttributeValue {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(anyValue);
  return undefined;
}
