import { readdirSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, type Logger, loadConfigOrExit } from "tpi";
import { migrateConfigSchema } from "./config";
import { isDatabaseUnavailable } from "./db";

/** Next to src/ and dist/ alike, so tsx (tests) and node (production) find the same files. */
const MIGRATIONS_DIR = join(__dirname, "..", "migrations");
/** node-pg-migrate's default table; app.ts's readiness check queries it by this name. */
const MIGRATIONS_TABLE = "pgmigrations";

export interface MigrateOptions {
  databaseUrl: string;
  logger: Logger;
  direction?: "up" | "down";
  /** How many migrations; default all for up, one for down. */
  count?: number;
  /** Keep waiting for the lock (another runner) or the database this long before giving up. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
}

/** The migrations this build ships, by the name node-pg-migrate records for each. */
export function knownMigrations(): string[] {
  let files: string[];
  try {
    files = readdirSync(MIGRATIONS_DIR);
  } catch (err) {
    throw new Error(
      `chillybin's migrations are missing from ${MIGRATIONS_DIR} (a build or image must ship chillybin/migrations next to dist): ${(err as Error).message}`,
    );
  }
  return files
    .filter((f) => !f.startsWith("."))
    .map((f) => basename(f, extname(f)))
    .sort();
}

const LOCK_TAKEN = "Another migration is already running";

/**
 * Runs node-pg-migrate. Several instances may start at once: node-pg-migrate's advisory lock
 * lets one run and makes the others fail fast, so they back off and try again — by then the
 * winner has usually finished and there is nothing left to do. A database that is not up yet
 * is waited for the same way.
 */
export async function migrate(opts: MigrateOptions): Promise<string[]> {
  // ESM-only package: a real dynamic import (module nodenext keeps it one in CommonJS output).
  const { runner } = await import("node-pg-migrate");
  const direction = opts.direction ?? "up";
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const log = migrationLogger(opts.logger);
  for (let attempt = 1; ; attempt++) {
    try {
      const ran = await runner({
        databaseUrl: {
          connectionString: opts.databaseUrl,
          connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
          application_name: "chillybin-migrate",
        },
        dir: MIGRATIONS_DIR,
        migrationsTable: MIGRATIONS_TABLE,
        direction,
        count: opts.count ?? (direction === "up" ? Number.POSITIVE_INFINITY : 1),
        singleTransaction: true, // all pending migrations apply, or none do
        checkOrder: true,
        logger: log,
      });
      const names = ran.map((m) => m.name);
      opts.logger.info(
        { direction, migrations: names },
        names.length ? "migrations applied" : "database schema up to date",
      );
      return names;
    } catch (err) {
      const retryable = (err as Error).message?.includes(LOCK_TAKEN) || isDatabaseUnavailable(err);
      const wait = Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random() / 2);
      if (!retryable || Date.now() + wait > deadline) throw err;
      opts.logger.info(
        { attempt, retry_in_ms: Math.round(wait), reason: (err as Error).message },
        "waiting to migrate (another instance holds the lock, or the database is not up yet)",
      );
      await sleep(wait);
    }
  }
}

/** node-pg-migrate's chatter, as structured log lines; its noise about our own retries goes to debug. */
function migrationLogger(logger: Logger) {
  return {
    debug: (msg: string) => logger.debug({ component: "node-pg-migrate" }, msg),
    info: (msg: string) => logger.debug({ component: "node-pg-migrate" }, msg),
    warn: (msg: string) =>
      msg.includes("Failed to release migration lock")
        ? logger.debug({ component: "node-pg-migrate" }, msg)
        : logger.warn({ component: "node-pg-migrate" }, msg),
    error: (msg: string) => logger.error({ component: "node-pg-migrate" }, msg),
  };
}

/** `node dist/migrate.js [up | down [N|all]]` — the deploy step / Kubernetes Job. */
async function main(argv: string[]): Promise<number> {
  const config = loadConfigOrExit(migrateConfigSchema);
  const logger = createLogger({
    service: "chillybin-migrate",
    version: config.VERSION,
    level: config.LOG_LEVEL,
  });
  const [direction = "up", countArg] = argv;
  if (direction !== "up" && direction !== "down") {
    logger.error(`unknown direction "${direction}"; use: migrate [up | down [N|all]]`);
    return 2;
  }
  const count =
    countArg === undefined
      ? undefined
      : countArg === "all"
        ? Number.POSITIVE_INFINITY
        : Number(countArg);
  if (count !== undefined && !(count >= 1)) {
    logger.error(`bad count "${countArg}"; use a positive integer or "all"`);
    return 2;
  }
  try {
    await migrate({
      databaseUrl: config.DATABASE_URL,
      logger,
      direction,
      ...(count === undefined ? {} : { count }),
      timeoutMs: config.MIGRATE_TIMEOUT_MS,
      connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
    });
    return 0;
  } catch (err) {
    logger.error({ err }, "migration failed");
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
