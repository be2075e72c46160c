import type { Request, RequestHandler, Response } from "express";
import promClient from "prom-client";
import { logSinkStats } from "./logger";

export interface Metrics {
  registry: promClient.Registry;
  /** Counts one answered request and its duration (createServiceApp calls it for every request). */
  observe: (method: string, route: string, status: number, seconds: number) => void;
  /** Serves the registry in Prometheus text format. */
  handler: RequestHandler;
}

/** Label for requests no route matched: raw paths would make cardinality unbounded. */
export const UNMATCHED_ROUTE = "unmatched";

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The route template express matched (`/orders/:id`), never the raw URL. */
export function routeTemplate(req: Request): string {
  const path = req.route?.path;
  if (typeof path !== "string") return UNMATCHED_ROUTE;
  return `${req.baseUrl}${path}` || "/";
}

export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : "OTHER";
}

export function createMetrics(opts: { service: string; version: string }): Metrics {
  const registry = new promClient.Registry();
  registry.setDefaultLabels({ service: opts.service, version: opts.version });
  promClient.collectDefaultMetrics({ register: registry });

  const labelNames = ["method", "route", "status_code"] as const;
  const requests = new promClient.Counter({
    name: "http_requests_total",
    help: "HTTP requests served, by method, route template and status code.",
    labelNames,
    registers: [registry],
  });
  const duration = new promClient.Histogram({
    name: "http_request_duration_seconds",
    help: "Time to serve HTTP requests, by method, route template and status code.",
    labelNames,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  // The stdout log sink's health: a stuck log pipe drops lines rather than stopping the service.
  let droppedReported = 0;
  new promClient.Counter({
    name: "log_lines_dropped_total",
    help: "Log lines dropped because stdout did not take them in time (the buffer was full).",
    registers: [registry],
    collect() {
      const { dropped } = logSinkStats();
      this.inc(dropped - droppedReported);
      droppedReported = dropped;
    },
  });
  new promClient.Gauge({
    name: "log_buffer_bytes",
    help: "Log output waiting for stdout to take it (bounded; beyond the bound lines are dropped).",
    registers: [registry],
    collect() {
      this.set(logSinkStats().bufferedBytes);
    },
  });

  // One pair of children per method/route/status, looked up by a string key: prom-client's
  // inc(labels) hashes and validates the labels object on every call.
  const children = new Map<
    string,
    { count: promClient.Counter.Internal; seconds: promClient.Histogram.Internal<string> }
  >();
  const series = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`;
    let child = children.get(key);
    if (!child) {
      const labels = { method, route, status_code: String(status) };
      child = { count: requests.labels(labels), seconds: duration.labels(labels) };
      children.set(key, child);
    }
    return child;
  };

  const observe = (method: string, route: string, status: number, seconds: number) => {
    const child = series(method, route, status);
    child.count.inc();
    child.seconds.observe(seconds);
  };

  const handler = async (_req: Request, res: Response) => {
    res.set("Content-Type", registry.contentType).send(await registry.metrics());
  };

  return { registry, observe, handler };
}

export { promClient };
