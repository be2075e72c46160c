import { baseEnv, envBool, envInt, z } from "tpi";

const databaseUrl = z
  .string({ error: "expected a postgres:// URL" })
  .trim()
  .regex(/^postgres(ql)?:\/\/\S+$/, "expected a postgres:// URL");

/** What the migration command needs; the service needs it too. */
export const migrateConfigSchema = z.object({
  ...baseEnv({ port: 7001, dir: __dirname }),
  DATABASE_URL: databaseUrl,
  PG_CONNECT_TIMEOUT_MS: envInt(5_000, 100, 120_000),
  /** How long a starting instance waits for another one's migration (or for the database). */
  MIGRATE_TIMEOUT_MS: envInt(60_000, 0, 3_600_000),
});

export const configSchema = migrateConfigSchema.extend({
  /** false when a deploy step / Job runs the migrations. */
  MIGRATE_ON_START: envBool(true),
  PG_POOL_MAX: envInt(10, 1, 1_000),
  PG_STATEMENT_TIMEOUT_MS: envInt(5_000, 100, 600_000),
  /** GET /events streams one instance serves at once; one more gets a 503 problem. */
  EVENT_STREAMS_MAX: envInt(100, 1, 10_000),
  /** When set, POST /restock needs `Authorization: Bearer <token>`; unset (dev) it is open. */
  CHILLYBIN_ADMIN_TOKEN: z.string().trim().min(16, "expected at least 16 characters").optional(),
});

export type Config = z.infer<typeof configSchema>;
