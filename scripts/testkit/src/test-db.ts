/**
 * A fresh, uniquely named database per test file on the server `npm test` provides (with-db sets
 * TEST_ADMIN_DATABASE_URL and TEST_DATABASE_PREFIX), dropped again afterwards.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database, disconnecting whoever is still connected. Safe to call twice. */
  drop(): Promise<void>;
}

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

export async function createTestDatabase(
  adminUrl = process.env.TEST_ADMIN_DATABASE_URL ?? process.env.DATABASE_URL,
  options: { prefix?: string } = {},
): Promise<TestDatabase> {
  if (!adminUrl)
    throw new Error("No PostgreSQL for tests: run them with `npm test` or set DATABASE_URL.");
  const name = `${options.prefix ?? process.env.TEST_DATABASE_PREFIX ?? "t_"}${randomBytes(6).toString("hex")}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${quote(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return { url: url.href, name, drop: () => (dropped ??= dropDatabase(adminUrl, name)) };
}

/** WITH (FORCE): a leaked pool must not keep it alive. pg's pool.end() resolves before its
 * connections close, and one FORCE ends errors in its test: so first wait ≤ 2 s for them to go. */
const dropDatabase = (adminUrl: string, name: string) =>
  withAdmin(adminUrl, async (client) => {
    const sessions = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1";
    for (let i = 0; i < 40 && (await client.query(sessions, [name])).rows[0].n > 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await client.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`);
  });

/** Drops every database whose name starts with `prefix` (what a crashed run left behind). */
export async function dropDatabasesWithPrefix(adminUrl: string, prefix: string): Promise<string[]> {
  const sql = "SELECT datname FROM pg_database WHERE starts_with(datname, $1)";
  const names = (await withAdmin(adminUrl, (c) => c.query(sql, [prefix]))).rows.map(
    (r) => r.datname,
  );
  for (const name of names) await dropDatabase(adminUrl, name);
  return names;
}

/** Creates the database unless it exists (e.g. the stall's `toasties`); whether it was created. */
export const ensureDatabase = (adminUrl: string, name: string) =>
  withAdmin(adminUrl, async (client) => {
    if ((await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount)
      return false;
    await client.query(`CREATE DATABASE ${quote(name)}`);
    return true;
  });

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  client.on("error", () => {}); // a dropped connection surfaces through the query instead
  await client.connect().catch((error: Error) => {
    throw new Error(`Cannot connect to PostgreSQL at ${new URL(adminUrl).host}: ${error.message}`);
  });
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
