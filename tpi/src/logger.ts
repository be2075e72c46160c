import { isSpanContextValid, TraceFlags, trace } from "@opentelemetry/api";
import pino from "pino";
import { currentContext } from "./context";
import { LogSink } from "./log-sink";

export type Logger = pino.Logger;

export interface LoggerOptions {
  service: string;
  version: string;
  level?: string;
  /** Where lines go; tests pass a stream to read them back. Default: stdout, through LogSink. */
  destination?: pino.DestinationStream;
  pretty?: boolean;
  /** How much output may wait for a slow stdout (default about 1 MiB); the first logger sets it. */
  stdoutBufferBytes?: number;
}

/** How much log output may wait for a slow stdout before lines are dropped (about 1 MiB). */
const STDOUT_BUFFER_BYTES = 1024 * 1024;

let sink: LogSink | undefined;

/** The one stdout sink of this process, shared by every logger writing to stdout. */
export function stdoutSink(limitBytes = STDOUT_BUFFER_BYTES): LogSink {
  sink ??= new LogSink(process.stdout, limitBytes, 10, 1);
  return sink;
}

/** Log lines dropped and bytes waiting so far, for /metrics (zero before anything is logged). */
export function logSinkStats(): { dropped: number; bufferedBytes: number } {
  return { dropped: sink?.dropped ?? 0, bufferedBytes: sink?.bufferedBytes ?? 0 };
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

const NO_FIELDS = {};

let second = -1;
let secondPrefix = "";

/**
 * pino's isoTime, formatting a Date only once a second: on a busy service that is most of what
 * writing the access line costs. Same output: `"time":"2026-11-29T06:12:03.042Z"`.
 */
function isoTime(): string {
  const now = Date.now();
  const ms = now % 1000;
  if (now - ms !== second) {
    second = now - ms;
    secondPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${secondPrefix}${ms < 10 ? "00" : ms < 100 ? "0" : ""}${ms}Z"`;
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
    timestamp: isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // A line that brings its own request id (the access line, written after the request's
    // context is gone) needs no lookup.
    mixin: (fields: object) => ("request_id" in fields ? NO_FIELDS : contextFields()),
  };
  if (opts.destination) return pino(options, opts.destination);
  const out = stdoutSink(opts.stdoutBufferBytes);
  let destination: pino.DestinationStream = out;
  if (pretty) {
    // Formatted in-process, line by line, into the same bounded sink.
    const format: (line: string) => string = require("pino-pretty").prettyFactory({
      colorize: true,
      translateTime: "SYS:HH:MM:ss.l",
    });
    destination = { write: (line: string) => out.write(format(line)) };
  }
  const logger = pino(options, destination);
  out.onResume = (dropped) =>
    logger.warn(
      { dropped_lines: dropped },
      `${dropped} log lines were dropped: stdout did not take them in time`,
    );
  return logger;
}
