import { isSpanContextValid, TraceFlags, trace } from "@opentelemetry/api";
import pino from "pino";
import { currentContext } from "./context";

export type Logger = pino.Logger;

export interface LoggerOptions {
  service: string;
  version: string;
  level?: string;
  /** Where lines go; tests pass a stream to read them back. */
  destination?: pino.DestinationStream;
  pretty?: boolean;
}

/** The current request's id and sampled trace/span ids, as log fields (absent ones undefined). */
export function contextFields(): { request_id?: string; trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan()?.spanContext();
  // Only sampled spans are exported: an id for an unsampled one would lead nowhere.
  const sampled = span && isSpanContextValid(span) && span.traceFlags & TraceFlags.SAMPLED;
  return {
    request_id: currentContext()?.requestId,
    trace_id: sampled ? span.traceId : undefined,
    span_id: sampled ? span.spanId : undefined,
  };
}

/**
 * JSON lines with service, version, and — inside a request — request id and the active
 * trace/span ids, so a log line can be joined to its trace.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const pretty =
    opts.pretty ?? (process.stdout.isTTY === true && process.env.NODE_ENV !== "production");
  const options: pino.LoggerOptions = {
    level: opts.level ?? "info",
    base: { service: opts.service, version: opts.version },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: contextFields,
  };
  if (opts.destination) return pino(options, opts.destination);
  if (pretty) {
    // pino-pretty in-process: a worker-thread transport would outlive our graceful shutdown.
    const prettyStream = require("pino-pretty")({
      colorize: true,
      translateTime: "SYS:HH:MM:ss.l",
    });
    return pino(options, prettyStream);
  }
  return pino(options);
}
