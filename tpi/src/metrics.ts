import type { NextFunction, Request, RequestHandler, Response } from "express";
import promClient from "prom-client";

export interface Metrics {
  registry: promClient.Registry;
  /** Records RED metrics for every request; install before the routes. */
  middleware: RequestHandler;
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

  const middleware = (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.once("finish", () => {
      const child = series(methodLabel(req.method), routeTemplate(req), res.statusCode);
      child.count.inc();
      child.seconds.observe(Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };

  const handler = async (_req: Request, res: Response) => {
    res.set("Content-Type", registry.contentType).send(await registry.metrics());
  };

  return { registry, middleware, handler };
}

export { promClient };
