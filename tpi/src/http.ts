import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { TraceFlags } from "@opentelemetry/api";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import { runWithContext } from "./context";
import { type HealthAnswer, healthAnswer, mountHealth, type ReadinessCheck } from "./health";
import type { Logger } from "./logger";
import { type Metrics, methodLabel, routeTemplate, UNMATCHED_ROUTE } from "./metrics";
import { notFound, problemErrorHandler } from "./problem";
import type { Lifecycle } from "./shutdown";
import { endServerSpan, type ServerSpan, startServerSpan, telemetryStarted } from "./telemetry";

const BODY_LIMIT = "16kb";

export interface ServiceAppOptions {
  service: string;
  version: string;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  readiness?: Record<string, ReadinessCheck>;
  /** Adds the service's routes: called after tpi's middleware and before the 404 and problem handlers. */
  routes: (app: Express) => void;
}

/**
 * A service's whole express app in one step, in the only order that works: request context,
 * trace span, access log, metrics, JSON body parser, /health, /ready, /metrics — then the
 * service's routes — then unknown routes as 404 problems and every error as problem+json.
 */
export function createServiceApp(opts: ServiceAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "extended");
  app.use(instrument(opts.logger, opts.metrics, opts.lifecycle));
  app.use(express.json({ limit: BODY_LIMIT, type: ["application/json", "application/*+json"] }));
  const health = healthAnswer(opts);
  mountHealth(app, { health, lifecycle: opts.lifecycle, readiness: opts.readiness ?? {} });
  app.get("/metrics", opts.metrics.handler);
  opts.routes(app);
  app.use(notFound);
  app.use(problemErrorHandler(opts.logger));
  probes.set(app, answerProbe(opts.logger, opts.metrics, opts.lifecycle, health));
  return app;
}

const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** Each service app's probe answerer, for `requestListener`: set by createServiceApp. */
const probes = new WeakMap<Express, Listener>();

/**
 * The HTTP server's request listener for `app` (serve() uses it): `GET /health` is answered here,
 * before express — the kubelet asks every few seconds, and express's per-request set-up alone
 * costs more CPU than the answer. Still logged and counted like any request. Everything else,
 * HEAD /health included, goes to the app.
 */
export function requestListener(app: Express): Listener {
  const probe = probes.get(app);
  if (!probe) return app;
  return (req, res) => {
    if (req.method === "GET" && req.url === "/health") probe(req, res);
    else app(req, res);
  };
}

/**
 * Per request: an id (the caller's X-Request-Id when sane), a server span continuing the
 * caller's trace, both active while the handlers run; at the end one access-log line and the
 * RED metrics. One middleware and one "finish" listener for all of it: this runs on every
 * request, so it is kept cheap.
 */
function instrument(logger: Logger, metrics: Metrics, lifecycle: Lifecycle) {
  const tracing = telemetryStarted();
  const observe = observer(logger, metrics, lifecycle);
  return (req: Request, res: Response, next: NextFunction) => {
    const traced = startServerSpan(req);
    const requestId = observe(req, res, traced);
    runWithContext({ requestId }, traced?.context, tracing, next);
  };
}

/** The probe answerer: the same id, access line and metrics as any request; no span. */
function answerProbe(
  logger: Logger,
  metrics: Metrics,
  lifecycle: Lifecycle,
  health: HealthAnswer,
): Listener {
  const observe = observer(logger, metrics, lifecycle);
  return (req, res) => {
    observe(req, res, undefined, "/health");
    res.writeHead(200, health.headers).end(health.body);
  };
}

/**
 * Sets the request id on the response and, on "finish", ends the span, counts the request and
 * writes its access line. `route` when known up front; otherwise express's matched route.
 */
function observer(logger: Logger, metrics: Metrics, lifecycle: Lifecycle) {
  return (
    req: IncomingMessage,
    res: ServerResponse,
    traced: ServerSpan | undefined,
    route?: string,
  ): string => {
    const start = process.hrtime.bigint();
    const incoming = req.headers["x-request-id"];
    const requestId =
      typeof incoming === "string" && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader("X-Request-Id", requestId);
    // While draining, ask keep-alive clients to reconnect (to a new instance) after this response.
    if (lifecycle.shuttingDown) res.setHeader("Connection", "close");
    // on, not once: "finish" fires once per response, and once() wraps the listener each time.
    res.on("finish", () => {
      const method = methodLabel(req.method ?? "");
      const matched = route ?? routeTemplate(req as Request);
      const status = res.statusCode;
      const nanos = Number(process.hrtime.bigint() - start);
      metrics.observe(method, matched, status, nanos / 1e9);
      // "finish" fires outside the request's context: the ids are passed explicitly (they win
      // over the logger's mixin). Only sampled spans are exported: another id would lead nowhere.
      const ids = traced?.span.spanContext();
      const sampled = ids && ids.traceFlags & TraceFlags.SAMPLED ? ids : undefined;
      if (traced) {
        endServerSpan(traced, req, matched === UNMATCHED_ROUTE ? undefined : matched, status);
      }
      logger[status >= 500 ? "error" : "info"](
        {
          request_id: requestId,
          trace_id: sampled?.traceId,
          span_id: sampled?.spanId,
          method,
          route: matched,
          status,
          duration_ms: Math.round(nanos / 1e4) / 100,
          bytes: Number(res.getHeader("content-length") ?? 0),
        },
        "request",
      );
    });
    return requestId;
  };
}
