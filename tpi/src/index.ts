// What chillybin and jafflr use, and nothing else: every name here is a promise to both services.
export { z } from "zod";
export { baseEnv, envBool, envInt, envNumber, envUrl, loadConfigOrExit } from "./config";
export { createServiceApp } from "./http";
export { createLogger, type Logger } from "./logger";
export { createMetrics, type Metrics, promClient } from "./metrics";
export { HttpProblem, methodNotAllowed, requireJson } from "./problem";
export { Lifecycle, serve } from "./shutdown";
