import type { Request, RequestHandler } from "express";
import promClient from "prom-client";
import { droppedLogLines } from "./logger";

export interface Metrics {
  registry: promClient.Registry;
  /** Counts one answered request and its duration (createServiceApp calls it for every request). */
  observe: (method: string, route: string, status: number, seconds: number) => void;
  /** Serves the registry in Prometheus text format. */
  handler: RequestHandler;
}

/** Labels stay bounded: unmatched paths and unknown methods share one value each. */
export const UNMATCHED_ROUTE = "unmatched";
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
export const methodLabel = (method = "") => (KNOWN_METHODS.has(method) ? method : "OTHER");

/** The route template express matched (`/orders/:id`), never the raw URL. */
export function routeTemplate(req: Request): string {
  const path = req.route?.path;
  return typeof path === "string" ? `${req.baseUrl}${path}` || "/" : UNMATCHED_ROUTE;
}

export function createMetrics(opts: { service: string; version: string }): Metrics {
  const registry = new promClient.Registry();
  registry.setDefaultLabels({ service: opts.service, version: opts.version });
  promClient.collectDefaultMetrics({ register: registry });
  const labelNames = ["method", "route", "status_code"];
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
  let reported = 0;
  new promClient.Counter({
    name: "log_lines_dropped_total",
    help: "Log lines dropped because stdout did not take them in time (the buffer was full).",
    registers: [registry],
    collect() {
      this.inc(droppedLogLines() - reported);
      reported = droppedLogLines();
    },
  });

  // Children looked up by a string key: prom-client's inc(labels) hashes and checks the labels
  // object on every call.
  type Series = {
    count: promClient.Counter.Internal;
    seconds: promClient.Histogram.Internal<string>;
  };
  const children = new Map<string, Series>();
  const observe = (method: string, route: string, status: number, seconds: number) => {
    const key = `${method} ${status} ${route}`;
    let child = children.get(key);
    if (!child) {
      const labels = { method, route, status_code: String(status) };
      child = { count: requests.labels(labels), seconds: duration.labels(labels) };
      children.set(key, child);
    }
    child.count.inc();
    child.seconds.observe(seconds);
  };
  const handler: RequestHandler = async (_req, res) => {
    res.set("Content-Type", registry.contentType).send(await registry.metrics());
  };
  return { registry, observe, handler };
}

export { promClient };
