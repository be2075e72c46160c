/**
 * The bench's reference server: the same routes on plain express (`bare`) or on tpi's
 * createServiceApp and serve (`tpi`: tracing, request context, access log, RED metrics) — run
 * with `node -r tpi/register`, as the services load tracing before anything else.
 *
 *   GET /health  what a probe gets
 *   GET /hello   a traced route (the bench sends a W3C traceparent, as jafflr does to chillybin)
 *   GET /        (bare only) a stock document from memory, as chillybin answers GET /
 *
 * Prints `{"msg":"listening","url":…}` like the services, so the bench starts it the same way.
 */
import express from "express";

const service = "bench";
const version = "bench";
/** chillybin's GET / shape: seven ingredients at the bench's bottomless stock. */
const STOCK = JSON.stringify(
  Object.fromEntries(
    ["bread", "cheese", "ham", "pineapple", "sheese", "tomato", "vegemite"].map((n) => [
      n,
      1_000_000_000,
    ]),
  ),
);

async function bare(): Promise<void> {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "extended");
  app.use(express.json({ limit: "16kb", type: ["application/json", "application/*+json"] }));
  app.get("/health", (_req, res) => {
    res.json({ status: "ok", service, version });
  });
  app.get("/hello", (_req, res) => {
    res.json({ hello: "world" });
  });
  app.get("/", (_req, res) => {
    res.type("application/json").send(STOCK);
  });
  const server = app.listen(0, "127.0.0.1", () => {
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${port}` }));
  });
  server.keepAliveTimeout = 5_000;
  process.once("SIGTERM", () => server.close(() => process.exit(0)));
}

async function tpi(): Promise<void> {
  const { createLogger, createMetrics, createServiceApp, Lifecycle, serve } = await import("tpi");
  const logger = createLogger({ service, version, level: "info", pretty: false });
  const metrics = createMetrics({ service, version });
  const lifecycle = new Lifecycle();
  const app = createServiceApp({
    service,
    version,
    logger,
    metrics,
    lifecycle,
    routes: (app) => {
      app.get("/hello", (_req, res) => {
        res.json({ hello: "world" });
      });
    },
  });
  const config = { HOST: "127.0.0.1", PORT: 0, SHUTDOWN_TIMEOUT_MS: 5_000, SHUTDOWN_DELAY_MS: 0 };
  await serve(app, { config, logger, lifecycle });
}

(process.argv[2] === "tpi" ? tpi() : bare()).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
