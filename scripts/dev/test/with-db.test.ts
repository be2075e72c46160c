import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import { type EmbeddedDb, startThrowawayDb } from "local-dev/embedded-db";
import pg from "pg";
import { databaseName } from "testkit/db-url";
import { isPortFree } from "testkit/net";

const scripts = path.resolve(__dirname, "..");
const withDb = path.join(scripts, "with-db.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `with-db.ts node -e <script>`; the script sees with-db's environment. */
function runWithDb(
  script: string,
  env: NodeJS.ProcessEnv,
  onStdout?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<Run> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", withDb, process.execPath, "--import", "tsx", "-e", script],
    { cwd: scripts, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
    onStdout?.(stdout, child);
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

/** The child reports what it was given and what it sees in the database. */
const reportScript = `
  const pg = require("pg");
  const { createTestDatabase } = require("testkit/test-db");
  (async () => {
    const client = new pg.Client(process.env.DATABASE_URL);
    await client.connect();
    const { rows } = await client.query("select current_database() as db");
    await client.end();
    const extra = await createTestDatabase(); // deliberately not dropped: with-db must sweep it
    console.log(JSON.stringify({ url: process.env.DATABASE_URL, admin: process.env.TEST_ADMIN_DATABASE_URL, db: rows[0].db, extra: extra.name }));
    process.exit(3);
  })();`;

function environment(overrides: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ["DATABASE_URL", "TEST_ADMIN_DATABASE_URL", "TEST_DATABASE_PREFIX"])
    delete env[key];
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) env[key] = value;
  return env;
}

async function existingDatabases(adminUrl: string, names: string[]): Promise<string[]> {
  const client = new pg.Client(adminUrl);
  await client.connect();
  try {
    const result = await client.query<{ datname: string }>(
      "select datname from pg_database where datname = any($1)",
      [names],
    );
    return result.rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

let server: EmbeddedDb;
before(async () => {
  server = await startThrowawayDb();
});
after(async () => {
  await server.destroy();
});

test("without DATABASE_URL: a fresh database on a throwaway embedded server, all gone afterwards", async () => {
  const run = await runWithDb(reportScript, environment({}));
  assert.equal(run.code, 3, `the child's exit code is passed on\n${run.stderr}`);
  const seen = JSON.parse(run.stdout) as { url: string; admin: string; db: string; extra: string };
  assert.match(seen.db, /^t_[0-9a-f]{10}_[0-9a-f]{12}$/);
  assert.equal(databaseName(seen.url), seen.db);
  assert.equal(databaseName(seen.admin), "postgres");
  const port = Number(new URL(seen.admin).port);
  assert.match(run.stderr, new RegExp(`using an embedded PostgreSQL on 127\\.0\\.0\\.1:${port}`));
  assert.equal(await isPortFree(port), true, "the embedded server is stopped");
});

test("with DATABASE_URL: that server, password masked, every database of the run dropped", async () => {
  const run = await runWithDb(reportScript, environment({ DATABASE_URL: server.url }));
  assert.equal(run.code, 3, run.stderr);
  const seen = JSON.parse(run.stdout) as { url: string; admin: string; db: string; extra: string };
  assert.equal(seen.admin, server.url);
  assert.equal(new URL(seen.url).port, String(server.port));
  const password = decodeURIComponent(new URL(server.url).password);
  assert.match(
    run.stderr,
    /using the server at DATABASE_URL postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres/,
  );
  assert.equal(run.stderr.includes(password), false, "the password is never printed");
  assert.equal(
    seen.extra.startsWith(seen.db.slice(0, 13)),
    true,
    "tests' databases share the run prefix",
  );
  assert.deepEqual(await existingDatabases(server.url, [seen.db, seen.extra]), []);
});

test("forwards SIGTERM to the command, then cleans up and exits with the command's code", async () => {
  const script = `
    process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(7); });
    console.log("waiting " + process.env.DATABASE_URL);
    setInterval(() => {}, 1000);`;
  let signalled = false;
  const run = await runWithDb(
    script,
    environment({ DATABASE_URL: server.url }),
    (stdout, child) => {
      if (!signalled && stdout.includes("waiting")) {
        signalled = true;
        child.kill("SIGTERM");
      }
    },
  );
  assert.equal(run.code, 7, run.stderr);
  assert.match(run.stdout, /got SIGTERM/);
  const url = /waiting (\S+)/.exec(run.stdout)?.[1] ?? "";
  assert.deepEqual(await existingDatabases(server.url, [databaseName(url)]), []);
});
