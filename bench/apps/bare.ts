/**
 * The instrumentation case's baseline: the same routes and server settings as ./instrumented.ts (and tpi's
 * createServiceApp/serve) with no tracing, context, access log or metrics.
 */
import express from "express";

const service = "bench-bare";
const version = "bench";
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

const server = app.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.stdout.write(
    `${JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${port}` })}\n`,
  );
});
server.requestTimeout = 120_000;
server.keepAliveTimeout = 5_000;
process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
