import "tpi/register"; // first: tracing must hook pg before it loads

import { createLogger, createMetrics, Lifecycle, loadConfigOrExit, serve } from "tpi";
import { createApp } from "./app";
import { configSchema } from "./config";
import { createPool } from "./db";
import { migrate } from "./migrate";
import { StockFeed } from "./stock-feed";

async function main() {
  // config
  const config = loadConfigOrExit(configSchema);
  const { VERSION: version, LOG_LEVEL: level } = config;
  const logger = createLogger({ service: "chillybin", version, level });
  const metrics = createMetrics({ service: "chillybin", version });
  const lifecycle = new Lifecycle();

  // wiring: schema first (unless a deploy step owns migrations), then the pool and the app
  if (config.MIGRATE_ON_START)
    await migrate({ ...config, databaseUrl: config.DATABASE_URL, logger });
  const pool = createPool(config, logger);
  const feed = new StockFeed({ settings: config, logger, metrics });
  const adminToken = config.CHILLYBIN_ADMIN_TOKEN;
  const events = { maxStreams: config.EVENT_STREAMS_MAX };
  const app = createApp({ pool, feed, logger, metrics, lifecycle, version, adminToken, events });

  // listen; SIGTERM drains in-flight requests, then closes these in order
  const resources = [
    { name: "stock feed", close: () => feed.close() },
    { name: "db pool", close: () => pool.end() },
  ];
  await serve(app, { config, logger, lifecycle, resources });
}

main().catch((err: Error) => {
  // e.g. migrations could not run within MIGRATE_TIMEOUT_MS, or the port is taken
  process.stderr.write(`chillybin failed to start: ${err.message}\n`);
  process.exit(1);
});
