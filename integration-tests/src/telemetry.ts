/**
 * What the observability tests read: an OTLP/HTTP trace receiver (JSON, what
 * @opentelemetry/exporter-trace-otlp-http sends) keeping every span with its resource, and the
 * Prometheus text format that /metrics serves.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

export const SERVER = 2; // OTLP span kinds: the API's SpanKind + 1
export const CLIENT = 3;

type Attributes = Record<string, unknown>;
export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Attributes;
  /** The exporting process's resource attributes, e.g. service.name. */
  service: unknown;
  scope: string;
}
interface KeyValue {
  key: string;
  value?: Record<string, unknown> & { arrayValue?: { values?: unknown[] } };
}
const attributes = (list: KeyValue[] = []): Attributes =>
  Object.fromEntries(list.map(({ key, value }) => [key, value && Object.values(value)[0]]));

export async function startOtlpReceiver() {
  const spans: Span[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
      for (const rs of JSON.parse(body.toString()).resourceSpans ?? []) {
        const service = attributes(rs.resource?.attributes)["service.name"];
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            const { traceId, spanId, parentSpanId = "", name, kind } = s;
            const scope = ss.scope?.name ?? "";
            spans.push({
              traceId,
              spanId,
              parentSpanId,
              name,
              kind,
              service,
              scope,
              attributes: attributes(s.attributes),
            });
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** How many requests http_requests_total counted with these labels (summed over the rest). */
export function requestCount(metrics: string, labels: Record<string, string>): number {
  return samples(metrics, "http_requests_total")
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** The samples of one metric in the Prometheus text format. */
export function samples(metrics: string, name: string) {
  return metrics
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .map((line) => {
      const labels = Object.fromEntries(
        [...line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
      );
      return { labels: labels as Record<string, string>, value: Number(line.split(" ").at(-1)) };
    });
}
