import { AsyncLocalStorage } from "node:async_hooks";
import * as otel from "@opentelemetry/api";
import pino from "pino";

export type Logger = pino.Logger;

export interface LoggerOptions {
  service: string;
  version: string;
  level?: string;
  /** Where lines go; tests pass a stream to read them back. Default: stdout, bounded. */
  destination?: pino.DestinationStream;
  pretty?: boolean;
  /** How much output may wait for a slow stdout (default 1 MiB); the first logger sets it. */
  stdoutBufferBytes?: number;
}

const REQUEST_ID = otel.createContextKey("tpi request id");
const requestIds = new AsyncLocalStorage<string>();

/** With tracing on, the id rides in OpenTelemetry's context: one AsyncLocalStorage, not two. */
export function runWithRequestId(
  id: string,
  traced: otel.Context | undefined,
  on: boolean,
  fn: () => void,
) {
  if (on) otel.context.with((traced ?? otel.ROOT_CONTEXT).setValue(REQUEST_ID, id), fn);
  else requestIds.run(id, fn);
}

/** The request's id and sampled trace/span ids (an unsampled span's id leads nowhere). */
function contextFields() {
  const span = otel.trace.getActiveSpan()?.spanContext();
  const sampled =
    span && otel.isSpanContextValid(span) && span.traceFlags & otel.TraceFlags.SAMPLED;
  return {
    request_id: (otel.context.active().getValue(REQUEST_ID) as string) ?? requestIds.getStore(),
    trace_id: sampled ? span.traceId : undefined,
    span_id: sampled ? span.spanId : undefined,
  };
}

let stdout: ReturnType<typeof pino.destination> | undefined;
let dropped = 0;
let unreported = 0;
let exiting = false;
let reportDropped = (_n: number) => {};

/** Log lines dropped so far because stdout did not take them in time (for /metrics). */
export const droppedLogLines = () => dropped;

/**
 * A stuck log pipe must never stop a service: at most `maxLength` bytes wait for stdout, the
 * rest is dropped and counted, and the first write that gets through again says how many.
 */
function stdoutDestination(maxLength: number) {
  const out = pino.destination({ dest: 1, sync: false, maxLength, retryEAGAIN: () => !exiting });
  out.on("drop", () => {
    dropped += 1;
    unreported += 1;
  });
  out.on("write", () => {
    if (unreported > 0) process.nextTick(reportDropped, unreported); // once the bytes have left
    unreported = 0;
  });
  // pino's own exit hook retries EAGAIN for ever: one attempt instead, then it is skipped.
  process.prependListener("exit", () => {
    exiting = true;
    try {
      out.flushSync();
    } catch {
      // stdout full or gone: these lines are lost
    }
    out.destroy();
  });
  return out;
}

/** Ends stdout: true once every line is written, false if `ms` passes first. */
export function flushStdout(ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (!stdout) return resolve(true);
    const timer = setTimeout(resolve, ms, false);
    stdout.once("close", () => clearTimeout(timer)).once("close", () => resolve(true));
    stdout.end();
  });
}

let second = -1;
let secondPrefix = "";

/** pino's isoTime, formatting a Date once a second: it was most of the access line's cost. */
function isoTime(): string {
  const now = Date.now();
  const ms = now % 1000;
  if (now - ms !== second) {
    second = now - ms;
    secondPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${secondPrefix}${ms < 10 ? "00" : ms < 100 ? "0" : ""}${ms}Z"`;
}

const NO_FIELDS = {};

/** JSON lines with service, version and, inside a request, its id and trace/span ids. */
export function createLogger(opts: LoggerOptions): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level ?? "info",
    base: { service: opts.service, version: opts.version },
    timestamp: isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // The access line brings its own ids (it is written after the request's context is gone).
    mixin: (fields: object) => ("request_id" in fields ? NO_FIELDS : contextFields()),
  };
  if (opts.destination) return pino(options, opts.destination);
  // Read first: touching process.stdout makes a piped fd 1 non-blocking, so a stuck reader means
  // EAGAIN (retried later), never a thread or the exit blocked on it.
  const tty = process.stdout.isTTY && process.env.NODE_ENV !== "production";
  stdout ??= stdoutDestination(opts.stdoutBufferBytes ?? 1024 * 1024);
  const out = stdout;
  const format =
    (opts.pretty ?? tty) &&
    require("pino-pretty").prettyFactory({ colorize: true, translateTime: "SYS:HH:MM:ss.l" });
  const logger = pino(options, format ? { write: (line) => out.write(format(line)) } : out);
  reportDropped = (n) =>
    logger.warn(
      { dropped_lines: n },
      `${n} log lines were dropped: stdout did not take them in time`,
    );
  return logger;
}
