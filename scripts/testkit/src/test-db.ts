/**
 * A fresh, uniquely named database per test (file), created on the server `npm test` provides
 * (with-db, in scripts/dev, sets TEST_ADMIN_DATABASE_URL) and dropped again afterwards.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { maskPassword, withDatabase } from "./db-url";

export interface TestDatabase {
  /** Connection URL of the new database. */
  url: string;
  name: string;
  /** Drops the database, disconnecting whoever is still connected. Safe to call twice. */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Name prefix; defaults to TEST_DATABASE_PREFIX (set by with-db, so it can sweep leftovers) or `t_`. */
  prefix?: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

export async function createTestDatabase(
  adminUrl = process.env.TEST_ADMIN_DATABASE_URL ?? process.env.DATABASE_URL,
  options: TestDatabaseOptions = {},
): Promise<TestDatabase> {
  if (!adminUrl) {
    throw new Error(
      "No PostgreSQL server for tests: run them with `npm test` (with-db provides one) " +
        "or set DATABASE_URL / TEST_ADMIN_DATABASE_URL.",
    );
  }
  const prefix = options.prefix ?? process.env.TEST_DATABASE_PREFIX ?? "t_";
  const name = `${prefix}${randomBytes(6).toString("hex")}`;
  if (!IDENTIFIER.test(name) || name.length > 63) {
    throw new Error(
      `Invalid test database name ${JSON.stringify(name)} (prefix ${JSON.stringify(prefix)})`,
    );
  }
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${quote(name)}`));
  let dropped: Promise<void> | undefined;
  return {
    url: withDatabase(adminUrl, name),
    name,
    drop: () => {
      dropped ??= dropDatabase(adminUrl, name);
      return dropped;
    },
  };
}

/** DROP DATABASE … WITH (FORCE): open connections (a leaked pool) must not keep it alive. */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withAdmin(adminUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`),
  );
}

/** Drops every database whose name starts with `prefix` (what a crashed test run left behind). */
export async function dropDatabasesWithPrefix(adminUrl: string, prefix: string): Promise<string[]> {
  if (!IDENTIFIER.test(prefix))
    throw new Error(`Invalid database prefix ${JSON.stringify(prefix)}`);
  const names = await withAdmin(adminUrl, async (client) => {
    const result = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
      [prefix],
    );
    return result.rows.map((row) => row.datname);
  });
  for (const name of names) await dropDatabase(adminUrl, name);
  return names;
}

/** Creates the database unless it exists (e.g. the stall's `toasties`). Returns whether it was created. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<boolean> {
  return withAdmin(adminUrl, async (client) => {
    const existing = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (existing.rowCount) return false;
    await client.query(`CREATE DATABASE ${quote(name)}`);
    return true;
  });
}

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  client.on("error", () => {}); // a dropped connection surfaces through the query instead
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `Cannot connect to PostgreSQL at ${maskPassword(adminUrl)}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
