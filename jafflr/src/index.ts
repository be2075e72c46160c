import "tpi/register"; // first: starts OpenTelemetry before undici (the arm's HTTP client) loads

import { setFlagsFromString } from "node:v8";
import { createLogger, createMetrics, Lifecycle, loadConfigOrExit, serve } from "tpi";
import { createApp } from "./app";
import { ChillybinClient } from "./chillybin-client";
import { configSchema } from "./config";
import { startFeatures } from "./features";
import { FLAGS } from "./flags";
import { Grill } from "./grill";

// undici parses HTTP with llhttp compiled to WebAssembly, and V8's optimising compile of it is a
// ~35 MB spike in resident memory at the first call to chillybin. Baseline (Liftoff) code parses
// chillybin's short answers just as well. Set before anything compiles WebAssembly.
setFlagsFromString("--liftoff-only");

async function main() {
  const config = loadConfigOrExit(configSchema);
  const logger = createLogger({
    service: "jafflr",
    version: config.VERSION,
    level: config.LOG_LEVEL,
  });
  const metrics = createMetrics({ service: "jafflr", version: config.VERSION });
  const lifecycle = new Lifecycle();
  // Flags first: a bounded wait when Unleash is configured.
  const features = await startFeatures(FLAGS, config, logger);
  const chillybin = new ChillybinClient(config, { registry: metrics.registry, logger });
  chillybin.start();
  const grill = new Grill(config);
  const app = createApp({ config, logger, metrics, lifecycle, features, chillybin, grill });
  // SIGTERM drains in-flight toasties, then closes these in order.
  const flagClient = { name: "flag client", close: () => features.close() };
  const connections = { name: "chillybin connections", close: () => chillybin.close() };
  await serve(app, { config, logger, lifecycle, resources: [flagClient, connections] });
}

main().catch((err: Error) => {
  process.stderr.write(`jafflr failed to start: ${err.message}\n`);
  process.exit(1);
});
