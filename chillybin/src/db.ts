import type { ErrorRequestHandler } from "express";
import pg from "pg";
import type { Logger } from "tpi";
import type { Config } from "./config";
import { DatabaseUnavailable, fail } from "./problems";

export type PoolSettings = Pick<Config, "DATABASE_URL" | Extract<keyof Config, `PG_${string}`>>;

/** Timeouts bound every wait: connecting, a statement, and the answer (a dead network never answers). */
export const connection = (settings: PoolSettings, application_name: string) => ({
  connectionString: settings.DATABASE_URL,
  connectionTimeoutMillis: settings.PG_CONNECT_TIMEOUT_MS,
  statement_timeout: settings.PG_STATEMENT_TIMEOUT_MS,
  query_timeout: settings.PG_STATEMENT_TIMEOUT_MS + 1_000,
  keepAlive: true,
  application_name,
});

export function createPool(settings: PoolSettings, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    ...connection(settings, "chillybin"),
    max: settings.PG_POOL_MAX,
    idle_in_transaction_session_timeout: settings.PG_STATEMENT_TIMEOUT_MS * 2,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits 'error', fatal if unhandled; the pool drops it.
  pool.on("error", (err) => logger.warn({ err: describe(err) }, "idle database connection lost"));
  return pool;
}

/** Retry waits: 100 ms doubling up to `cap`, jittered so instances retrying together spread out. */
export const backoff = (n: number, cap: number) =>
  Math.min(cap, 100 * 2 ** n) * (0.5 + Math.random() / 2);
export const describe = ({ message, code }: Error & { code?: string }) => ({ message, code });

/**
 * Unreachable or overloaded, so retryable: network errors, SQLSTATE 08xxx (connection), 57P01-03
 * (shutting down, starting up), 53300 (too many connections), 57014 (statement_timeout), 55P03
 * (lock_not_available), and pg's own timeouts and lost connections.
 */
const UNAVAILABLE =
  /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|57P0[123]|53300|57014|55P03|08...)$/;
const UNAVAILABLE_MESSAGE =
  /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connect ETIMEDOUT|Client has encountered a connection error/;

export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (UNAVAILABLE.test(String((err as { code?: unknown }).code))) return true;
  if (err instanceof AggregateError) return err.errors.some(isDatabaseUnavailable);
  return UNAVAILABLE_MESSAGE.test(err.message);
}

/**
 * Turns "database unreachable" into a 503 problem with Retry-After. Logged at most once per 5 s
 * with a count (an outage at 1000 req/s must not become 1000 warnings a second).
 */
export function databaseUnavailableHandler(logger: Logger): ErrorRequestHandler {
  let [lastLogged, suppressed] = [0, 0];
  const detail =
    "The cold store cannot reach its database right now. Retry shortly (orders with the same Idempotency-Key).";
  return (err, _req, _res, next) => {
    if (!isDatabaseUnavailable(err)) return next(err);
    if (Date.now() - lastLogged < 5_000) suppressed++;
    else {
      const failed_since_last_log = suppressed;
      logger.warn({ err: describe(err), failed_since_last_log }, "database unavailable");
      [lastLogged, suppressed] = [Date.now(), 0];
    }
    next(fail(DatabaseUnavailable, detail, { headers: { "Retry-After": "2" } }));
  };
}
