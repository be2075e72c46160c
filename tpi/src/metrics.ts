import type { Request, RequestHandler } from "express";
import promClient from "prom-client";
import { droppedLogLines } from "./logger";

export { promClient };
export type Metrics = ReturnType<typeof createMetrics>;
/** Labels stay bounded: unmatched paths and unknown methods share one value each. */
export const UNMATCHED_ROUTE = "unmatched";
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
export const methodLabel = (method = "") => (KNOWN_METHODS.has(method) ? method : "OTHER");
/** The route template express matched (`/orders/:id`), never the raw URL. */
export const routeTemplate = ({ route, baseUrl }: Request) =>
  typeof route?.path === "string" ? `${baseUrl}${route.path}` || "/" : UNMATCHED_ROUTE;

export function createMetrics(opts: { service: string; version: string }) {
  const registry = new promClient.Registry();
  registry.setDefaultLabels(opts);
  promClient.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const common = { labelNames: ["method", "route", "status_code"], registers };
  const by = "by method, route template and status code.";
  const name = "http_requests_total";
  const requests = new promClient.Counter({ ...common, name, help: `HTTP requests served, ${by}` });
  const buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  const help = `Time to serve HTTP requests, ${by}`;
  const seconds = { ...common, name: "http_request_duration_seconds", help, buckets };
  const duration = new promClient.Histogram(seconds);
  let reported = 0;
  new promClient.Counter({
    name: "log_lines_dropped_total",
    help: "Log lines dropped because stdout did not take them in time (the buffer was full).",
    registers,
    collect() {
      this.inc(droppedLogLines() - reported);
      reported = droppedLogLines();
    },
  });
  // Children by a string key: prom-client's inc(labels) hashes and checks the labels every call.
  type Child = [promClient.Counter.Internal, promClient.Histogram.Internal<string>];
  const children = new Map<string, Child>();
  const observe = (method: string, route: string, status: number, seconds: number) => {
    const key = `${method} ${status} ${route}`;
    let child = children.get(key);
    if (!child) {
      const labels = { method, route, status_code: String(status) };
      child = [requests.labels(labels), duration.labels(labels)];
      children.set(key, child);
    }
    child[0].inc();
    child[1].observe(seconds);
  };
  const handler: RequestHandler = async (_req, res) => {
    res.set("Content-Type", registry.contentType).send(await registry.metrics());
  };
  return { registry, observe, handler };
}

/** `curl/8.5.0` → `curl`, one of `known` so the label set stays small. */
export function callerOf(userAgent: string | undefined, known: ReadonlySet<string>): string {
  const token = /^[^\s/]+/.exec(userAgent ?? "")?.[0].toLowerCase();
  return token ? (known.has(token) ? token : "other") : "unknown";
}

// A route on its way out says so (RFC 9745, RFC 8594, a successor Link), is never replayed by a
// cache (it changes state), and counts calls by caller, to watch its traffic fall to zero.
export function deprecated(d: {
  metrics: Metrics;
  counter: string;
  help: string;
  deprecatedAt: Date;
  sunsetAt: Date;
  successor: string;
  knownCallers: readonly string[];
}): RequestHandler {
  const [name, registers] = [d.counter, [d.metrics.registry]];
  const calls = new promClient.Counter({ name, help: d.help, labelNames: ["caller"], registers });
  const known = new Set(d.knownCallers);
  const headers = {
    Deprecation: `@${Math.floor(d.deprecatedAt.getTime() / 1000)}`,
    Sunset: d.sunsetAt.toUTCString(),
    Link: `<${d.successor}>; rel="successor-version"`,
    "Cache-Control": "no-store",
  };
  return (req, res, next) => {
    res.set(headers);
    calls.inc({ caller: callerOf(req.get("User-Agent"), known) });
    next();
  };
}
