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
    mixin: () => {
      const fields: Record<string, string> = {};
      const ctx = currentContext();
      if (ctx) fields.request_id = ctx.requestId;
      const span = trace.getActiveSpan()?.spanContext();
      // Only sampled spans are exported: an id for an unsampled one would lead nowhere.
      if (span && isSpanContextValid(span) && span.traceFlags & TraceFlags.SAMPLED) {
        fields.trace_id = span.traceId;
        fields.span_id = span.spanId;
      }
      return fields;
    },
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
