import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import { type EmbeddedDb, startThrowawayDb } from "local-dev/embedded-db";
import pg from "pg";

const databaseName = (url: string) => new URL(url).pathname.slice(1);

import { isPortFree } from "testkit/net";

/** Runs `with-db node -e <script>` without the test runner's database settings. */
function withDb(
  script: string,
  databaseUrl?: string,
  onStdout?: (text: string, kill: () => void) => void,
) {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: databaseUrl };
  for (const key of [
    "TEST_ADMIN_DATABASE_URL",
    "TEST_DATABASE_PREFIX",
    ...(databaseUrl ? [] : ["DATABASE_URL"]),
  ])
    delete env[key];
  const args = [
    path.join(__dirname, "..", "with-db.ts"),
    process.execPath,
    "--import",
    "tsx",
    "-e",
    script,
  ];
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: __dirname, env });
  let [stdout, stderr] = ["", ""];
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
    onStdout?.(stdout, () => child.kill("SIGTERM"));
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once("close", (code) => resolve({ code, stdout, stderr })),
  );
}

/** The command reports what it was given, and makes a database of its own it does not drop. */
const report = `const { createTestDatabase } = require("testkit/test-db");
  createTestDatabase().then((extra) => {
    console.log(JSON.stringify({ url: process.env.DATABASE_URL, admin: process.env.TEST_ADMIN_DATABASE_URL, extra: extra.name }));
    process.exit(3);
  });`;

async function existing(adminUrl: string, names: string[]): Promise<string[]> {
  const client = new pg.Client(adminUrl);
  await client.connect();
  const { rows } = await client.query("select datname from pg_database where datname = any($1)", [
    names,
  ]);
  await client.end();
  return rows.map((row) => row.datname);
}

let server: EmbeddedDb;
before(async () => {
  server = await startThrowawayDb();
});
after(() => server.destroy());

test("without DATABASE_URL: a fresh database on a throwaway embedded server, gone afterwards", async () => {
  const run = await withDb(report);
  assert.equal(run.code, 3, `the command's exit code is passed on\n${run.stderr}`);
  const seen = JSON.parse(run.stdout);
  assert.match(databaseName(seen.url), /^t_[0-9a-f]{10}_[0-9a-f]{12}$/);
  assert.equal(databaseName(seen.admin), "postgres");
  assert.equal(await isPortFree(Number(new URL(seen.admin).port)), true, "the server is stopped");
});

test("with DATABASE_URL: that server, password masked, every database of the run dropped", async () => {
  const run = await withDb(report, server.url);
  assert.equal(run.code, 3, run.stderr);
  const seen = JSON.parse(run.stdout);
  assert.equal(seen.admin, server.url);
  assert.match(
    run.stderr,
    /using the server at DATABASE_URL postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres/,
  );
  assert.ok(!run.stderr.includes(new URL(server.url).password), "the password is never printed");
  assert.deepEqual(await existing(server.url, [databaseName(seen.url), seen.extra]), []);
});

test("forwards SIGTERM to the command, cleans up, and exits with the command's code", async () => {
  const script = `process.on("SIGTERM", () => process.exit(7)); console.log("waiting " + process.env.DATABASE_URL); setInterval(() => {}, 1000);`;
  const run = await withDb(
    script,
    server.url,
    (stdout, kill) => stdout.includes("waiting") && kill(),
  );
  assert.equal(run.code, 7, run.stderr);
  const url = /waiting (\S+)/.exec(run.stdout)?.[1] ?? "";
  assert.deepEqual(await existing(server.url, [databaseName(url)]), []);
});
