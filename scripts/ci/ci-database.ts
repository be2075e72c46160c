/**
 * Creates or drops the database a URL names, through the server's `postgres` maintenance database.
 * .ci/run uses it for the per-run database on the machine's real PostgreSQL.
 *
 *   tsx scripts/ci/ci-database.ts create postgres://postgres@127.0.0.1:5432/ci_20250101_1234
 *   tsx scripts/ci/ci-database.ts drop   postgres://postgres@127.0.0.1:5432/ci_20250101_1234
 */
import { databaseName, maskPassword, withDatabase } from "testkit/db-url";
import { dropDatabase, ensureDatabase } from "testkit/test-db";

async function main(): Promise<void> {
  const [action, url] = process.argv.slice(2);
  if ((action !== "create" && action !== "drop") || !url) {
    throw new Error("usage: tsx scripts/ci/ci-database.ts create|drop <database-url>");
  }
  const name = databaseName(url);
  const adminUrl = withDatabase(url, "postgres");
  if (action === "create") {
    if (!(await ensureDatabase(adminUrl, name))) throw new Error(`database ${name} already exists`);
    console.log(`created database ${name} on ${maskPassword(adminUrl)}`);
  } else {
    await dropDatabase(adminUrl, name);
    console.log(`dropped database ${name}`);
  }
}

main().catch((error: unknown) => {
  console.error(`ci-database: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
