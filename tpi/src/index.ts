export { z } from "zod";
export {
  baseEnv,
  ConfigError,
  defaultVersion,
  envBool,
  envInt,
  envNumber,
  envUrl,
  loadConfig,
  loadConfigOrExit,
} from "./config";
export { currentContext, type RequestContext, runWithContext } from "./context";
export { mountHealth, type ReadinessCheck } from "./health";
export {
  BODY_LIMIT,
  createHttpApp,
  createServiceApp,
  finishHttpApp,
  type HttpAppOptions,
  type ServiceAppOptions,
} from "./http";
export { createLogger, type Logger, type LoggerOptions } from "./logger";
export {
  createMetrics,
  type Metrics,
  methodLabel,
  promClient,
  routeTemplate,
  UNMATCHED_ROUTE,
} from "./metrics";
export {
  answerClientError,
  HttpProblem,
  methodNotAllowed,
  notFound,
  PROBLEM_CONTENT_TYPE,
  type ProblemOptions,
  problemErrorHandler,
  requireJson,
  sendProblem,
} from "./problem";
export { Lifecycle, type Resource, type ServeOptions, type Serving, serve } from "./shutdown";
export {
  HealthCheckSampler,
  shutdownTelemetry,
  startTelemetry,
  telemetryStarted,
  UNTRACED_PATHS,
} from "./telemetry";
