/**
 * The instrumentation case's instrumented app: tpi's createServiceApp exactly as the services use it — tracing
 * (tpi/register, first), request context, access log at info to stdout, RED metrics, JSON body
 * parser, /health — plus one traced route, /hello. Compare with ./bare.ts.
 *
 * For an ablation (run the app by hand) parts can be switched off: BENCH_TRACING=0 (no tpi/register),
 * BENCH_ACCESS_LOG=0 (log level warn, so the access line is skipped), BENCH_METRICS=0 (the RED
 * metrics' observe() replaced by a no-op).
 */
import "./tracing";
import { createLogger, createMetrics, createServiceApp, Lifecycle, serve } from "tpi";

// bench/ runs outside turbo, so these switches cannot affect a cached task.
const { BENCH_TRACING, BENCH_ACCESS_LOG, BENCH_METRICS } = process.env;
const service = "bench-instrumented";
const version = "bench";
const tracing = BENCH_TRACING !== "0";
const logger = createLogger({
  service,
  version,
  level: BENCH_ACCESS_LOG === "0" ? "warn" : "info",
  pretty: false,
});
const fullMetrics = createMetrics({ service, version });
const metrics = BENCH_METRICS === "0" ? { ...fullMetrics, observe: () => {} } : fullMetrics;
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

serve(app, {
  config: { HOST: "127.0.0.1", PORT: 0, SHUTDOWN_TIMEOUT_MS: 5_000, SHUTDOWN_DELAY_MS: 0 },
  logger,
  lifecycle,
  // serve() insists on telemetry when it owns the signals; without tracing we handle SIGTERM.
  handleSignals: tracing,
})
  .then((serving) => {
    // The listening line is logged at info, which the no-access-log variant filters out.
    if (BENCH_ACCESS_LOG === "0") {
      process.stdout.write(`${JSON.stringify({ msg: "listening", url: serving.url })}\n`);
    }
    if (!tracing) {
      process.once("SIGTERM", () => {
        serving.shutdown("SIGTERM").then((code) => process.exit(code));
      });
    }
  })
  .catch((err: unknown) => {
    logger.fatal({ err }, "bench app failed to start");
    process.exit(1);
  });
