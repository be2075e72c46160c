import type { ErrorRequestHandler } from "express";
import pg from "pg";
import { HttpProblem, type Logger } from "tpi";
import { PROBLEM_TYPES } from "./problems";

export interface PoolSettings {
  DATABASE_URL: string;
  PG_POOL_MAX: number;
  PG_CONNECT_TIMEOUT_MS: number;
  PG_STATEMENT_TIMEOUT_MS: number;
}

/**
 * The one pool the service uses. Timeouts bound every wait: connecting, a statement on the
 * server, and the client-side wait for an answer (a dead network never answers at all).
 */
export function createPool(settings: PoolSettings, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.DATABASE_URL,
    max: settings.PG_POOL_MAX,
    connectionTimeoutMillis: settings.PG_CONNECT_TIMEOUT_MS,
    statement_timeout: settings.PG_STATEMENT_TIMEOUT_MS,
    query_timeout: settings.PG_STATEMENT_TIMEOUT_MS + 1_000,
    idle_in_transaction_session_timeout: settings.PG_STATEMENT_TIMEOUT_MS * 2,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: "chillybin",
  });
  // An idle client whose server went away emits 'error'; unhandled, that would kill the process.
  // The pool has already discarded the client, so the next query simply opens a new connection.
  pool.on("error", (err) => {
    logger.warn(
      { err: { message: err.message, code: (err as { code?: string }).code } },
      "idle database connection lost",
    );
  });
  return pool;
}

/** Errors that mean "the database cannot be reached or is overloaded": retryable, not our bug. */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up / shutting down)
  "53300", // too_many_connections
  "57014", // query_canceled: statement_timeout hit, the server is overloaded
  "55P03", // lock_not_available
]);

const UNAVAILABLE_MESSAGES = [
  "timeout exceeded when trying to connect",
  "Connection terminated",
  "Query read timeout",
  "connect ETIMEDOUT",
  "Client has encountered a connection error",
];

export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08")))
    return true;
  if (err instanceof AggregateError) return err.errors.some(isDatabaseUnavailable);
  return UNAVAILABLE_MESSAGES.some((m) => err.message.includes(m));
}

const RETRY_AFTER_SECONDS = 2;

/**
 * Turns "database unreachable" into a 503 problem with Retry-After. Logged at most once per
 * LOG_EVERY_MS with a count (the access log already has every request; an outage at 1000 req/s
 * must not become 1000 warnings a second). Install after the routes, before the problem handler.
 */
export function databaseUnavailableHandler(logger: Logger): ErrorRequestHandler {
  const LOG_EVERY_MS = 5_000;
  let lastLogged = 0;
  let suppressed = 0;
  return (err, _req, _res, next) => {
    if (!isDatabaseUnavailable(err)) return next(err);
    const now = Date.now();
    if (now - lastLogged >= LOG_EVERY_MS) {
      const { message, code } = err as { message: string; code?: string };
      logger.warn(
        { err: { message, code }, failed_since_last_log: suppressed },
        "database unavailable",
      );
      lastLogged = now;
      suppressed = 0;
    } else {
      suppressed++;
    }
    next(
      new HttpProblem(503, "Database unavailable", {
        type: PROBLEM_TYPES.databaseUnavailable,
        detail:
          "The cold store cannot reach its database right now. Retry shortly (orders with the same Idempotency-Key).",
        headers: { "Retry-After": String(RETRY_AFTER_SECONDS) },
      }),
    );
  };
}
