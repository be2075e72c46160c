// What chillybin and jafflr use: every name here is a promise to both services.
export { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
export { baseEnv, envBool, envInt, envNumber, envUrl, loadConfigOrExit } from "./config";
export { createServiceApp } from "./http";
export { createLogger, type Logger } from "./logger";
export { callerOf, createMetrics, deprecated, type Metrics, promClient } from "./metrics";
export * from "./problem";
export { Lifecycle, serve } from "./shutdown";
