import "tpi/register"; // first: tracing must hook express and pg before they load
import { createLogger, createMetrics, Lifecycle, loadConfigOrExit, serve } from "tpi";
import { createApp } from "./app";
import { configSchema } from "./config";
import { createPool } from "./db";
import { migrate } from "./migrate";

// config
const config = loadConfigOrExit(configSchema);
const logger = createLogger({
  service: "chillybin",
  version: config.VERSION,
  level: config.LOG_LEVEL,
});

async function start() {
  // wiring: schema first (unless a deploy step owns migrations), then the pool and the app
  if (config.MIGRATE_ON_START) {
    await migrate({
      databaseUrl: config.DATABASE_URL,
      logger,
      timeoutMs: config.MIGRATE_TIMEOUT_MS,
      connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
    });
  }
  const pool = createPool(config, logger);
  const lifecycle = new Lifecycle();
  const metrics = createMetrics({ service: "chillybin", version: config.VERSION });
  const app = createApp({
    pool,
    logger,
    metrics,
    lifecycle,
    version: config.VERSION,
    adminToken: config.CHILLYBIN_ADMIN_TOKEN,
  });

  // listen; on SIGTERM/SIGINT serve drains in-flight requests, then closes the pool
  await serve(app, {
    config,
    logger,
    lifecycle,
    resources: [{ name: "db pool", close: () => pool.end() }],
  });
}

start().catch((err: unknown) => {
  // e.g. migrations could not run within MIGRATE_TIMEOUT_MS, or the port is taken
  logger.fatal({ err }, "chillybin failed to start");
  process.exit(1);
});
