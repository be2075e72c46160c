import { readdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { createLogger, type Logger, loadConfigOrExit } from "tpi";
import { migrateConfigSchema } from "./config";
import { backoff, isDatabaseUnavailable } from "./db";

/** Next to src/ and dist/ alike, so tsx (tests) and node (production) find the same files. */
const MIGRATIONS_DIR = join(__dirname, "..", "migrations");

/** The migrations this build ships, by the name node-pg-migrate records for each. */
export const knownMigrations = () =>
  readdirSync(MIGRATIONS_DIR)
    .filter((f) => !f.startsWith("."))
    .map((f) => f.replace(/\.[^.]*$/, ""))
    .sort();

/** Ready when every migration this build needs is applied: with MIGRATE_ON_START=false, after the Job. */
export const schemaReady =
  (pool: pg.Pool, required = knownMigrations()) =>
  async () => {
    const { rows } = await pool.query<{ missing: string | null }>({
      name: "missing-migrations",
      text: "SELECT string_agg(m, ', ' ORDER BY m) AS missing FROM unnest($1::text[]) m WHERE m NOT IN (SELECT name FROM pgmigrations)",
      values: [required],
    });
    const missing = rows[0]?.missing;
    if (missing) throw new Error(`database schema is behind: ${missing} not applied`);
  };

/**
 * Runs node-pg-migrate. Of several instances starting at once, its advisory lock lets one run and
 * the others back off and retry (then usually find nothing to do); so for a database not up yet.
 */
export async function migrate(opts: {
  databaseUrl: string;
  logger: Logger;
  direction?: "up" | "down";
  count?: number | undefined; // default all for up, one for down
  MIGRATE_TIMEOUT_MS?: number; // how long to wait for the lock (another runner) or the database
  PG_CONNECT_TIMEOUT_MS?: number;
}): Promise<string[]> {
  // ESM-only package: a real dynamic import (module nodenext keeps it one in CommonJS output).
  const { runner } = await import("node-pg-migrate");
  const { logger, direction = "up" } = opts;
  const deadline = Date.now() + (opts.MIGRATE_TIMEOUT_MS ?? 60_000);
  // Its chatter as structured lines; its noise about our own retries goes to debug.
  const tag = { component: "node-pg-migrate" };
  const say = (level: "debug" | "warn" | "error") => (msg: string) =>
    logger[msg.includes("Failed to release migration lock") ? "debug" : level](tag, msg);
  const log = { debug: say("debug"), info: say("debug"), warn: say("warn"), error: say("error") };
  for (let attempt = 1; ; attempt++) {
    try {
      const ran = await runner({
        databaseUrl: {
          connectionString: opts.databaseUrl,
          connectionTimeoutMillis: opts.PG_CONNECT_TIMEOUT_MS ?? 5_000,
          application_name: "chillybin-migrate",
        },
        dir: MIGRATIONS_DIR,
        migrationsTable: "pgmigrations", // the readiness check reads it
        direction,
        count: opts.count ?? (direction === "up" ? Number.POSITIVE_INFINITY : 1),
        singleTransaction: true, // all pending migrations apply, or none do
        logger: log,
      });
      const names = ran.map((m) => m.name);
      const done = names.length ? "migrations applied" : "database schema up to date";
      logger.info({ direction, migrations: names }, done);
      return names;
    } catch (err) {
      const { message } = err as Error;
      const retryable =
        message?.includes("Another migration is already running") || isDatabaseUnavailable(err);
      const wait = backoff(attempt, 2_000);
      if (!retryable || Date.now() + wait > deadline) throw err;
      logger.info(
        { attempt, retry_in_ms: Math.round(wait), reason: message },
        "waiting to migrate (another instance holds the lock, or the database is not up yet)",
      );
      await sleep(wait);
    }
  }
}

/** `node dist/migrate.js [up | down [N|all]]` — the deploy step / Kubernetes Job. */
if (require.main === module) {
  const config = loadConfigOrExit(migrateConfigSchema);
  const { VERSION: version, LOG_LEVEL: level, DATABASE_URL: databaseUrl } = config;
  const logger = createLogger({ service: "chillybin-migrate", version, level });
  const [direction = "up", n] = process.argv.slice(2);
  const count = n === "all" ? Number.POSITIVE_INFINITY : n === undefined ? undefined : Number(n);
  if ((direction !== "up" && direction !== "down") || (count !== undefined && !(count >= 1))) {
    logger.error(
      `bad arguments "${process.argv.slice(2).join(" ")}"; use: migrate [up | down [N|all]]`,
    );
    process.exitCode = 2;
  } else {
    migrate({ ...config, databaseUrl, logger, direction, count }).catch((err) => {
      logger.error({ err }, "migration failed");
      process.exitCode = 1;
    });
  }
}
