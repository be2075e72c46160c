import { randomUUID } from "node:crypto";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import { runWithContext } from "./context";
import { mountHealth, type ReadinessCheck } from "./health";
import { contextFields, type Logger } from "./logger";
import { type Metrics, methodLabel, routeTemplate } from "./metrics";
import { notFound, problemErrorHandler } from "./problem";
import type { Lifecycle } from "./shutdown";

export const BODY_LIMIT = "16kb";

export interface HttpAppOptions {
  service: string;
  version: string;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  readiness?: Record<string, ReadinessCheck>;
}

export interface ServiceAppOptions extends HttpAppOptions {
  /** Adds the service's routes: called after tpi's middleware and before the 404 and problem handlers. */
  routes: (app: Express) => void;
}

/**
 * A service's whole express app in one step, in the only order that works: request context,
 * access log, metrics, JSON body parser, /health, /ready, /metrics — then the service's routes —
 * then unknown routes as 404 problems and every error as problem+json.
 */
export function createServiceApp(opts: ServiceAppOptions): Express {
  const app = createHttpApp(opts);
  opts.routes(app);
  return finishHttpApp(app, opts);
}

const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * The express app every service starts from: request context, access log, metrics, JSON
 * parsing with a size limit, /health, /ready and /metrics. Add routes, then finishHttpApp().
 */
export function createHttpApp(opts: HttpAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "extended");
  app.use(requestContext(opts.lifecycle));
  app.use(accessLog(opts.logger));
  app.use(opts.metrics.middleware);
  app.use(express.json({ limit: BODY_LIMIT, type: ["application/json", "application/*+json"] }));
  mountHealth(app, { ...opts, readiness: opts.readiness ?? {} });
  app.get("/metrics", opts.metrics.handler);
  return app;
}

/** Unknown routes become 404 problems and every error a problem+json response. */
export function finishHttpApp(app: Express, opts: { logger: Logger }): Express {
  app.use(notFound);
  app.use(problemErrorHandler(opts.logger));
  return app;
}

function requestContext(lifecycle: Lifecycle) {
  return (req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get("x-request-id");
    const requestId = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader("X-Request-Id", requestId);
    // While draining, ask keep-alive clients to reconnect (to a new instance) after this response.
    if (lifecycle.shuttingDown) res.setHeader("Connection", "close");
    runWithContext({ requestId }, next);
  };
}

function accessLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    // Taken now, inside the request's context: "finish" fires outside it. Explicit fields win
    // over the logger's mixin, so the line always carries this request's ids.
    const ids = contextFields();
    res.once("finish", () => {
      const level = res.statusCode >= 500 ? "error" : "info";
      logger[level](
        {
          ...ids,
          method: methodLabel(req.method),
          route: routeTemplate(req),
          status: res.statusCode,
          duration_ms: Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100,
          bytes: Number(res.getHeader("content-length") ?? 0),
        },
        "request",
      );
    });
    next();
  };
}
