/**
 * Migrations on empty databases: every step goes up, down and up again; three service instances
 * started at the same moment all come up (one migrates, the others wait for its lock); the
 * migrate command works as a deploy step; /ready waits for the schema.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { describeExit, type LaunchedService, launchService } from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { knownMigrations, migrate } from "../src/migrate";
import { DEFAULT_STOCK } from "../src/stock";
import { get, silentLogger, startApp } from "./helpers";

const CHILLYBIN = path.resolve(__dirname, "..");
const databases: TestDatabase[] = [];
const services: LaunchedService[] = [];
after(async () => {
  for (const s of services) if (s.child.exitCode === null) s.child.kill("SIGKILL");
  await Promise.all(services.map((s) => s.exited));
  await Promise.all(databases.map((d) => d.drop()));
});

async function emptyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

/** Tables, triggers, applied migrations and the stock (when there is an ingredients table). */
async function inspect(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT
      ARRAY(SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1) AS tables,
      ARRAY(SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1) AS triggers,
      ARRAY(SELECT name FROM pgmigrations ORDER BY id) AS applied`);
    const state = rows[0] as { tables: string[]; triggers: string[]; applied: string[] };
    const stock = state.tables.includes("ingredients")
      ? (await client.query("SELECT json_object_agg(name, quantity) AS s FROM ingredients")).rows[0]
          .s
      : undefined;
    return { ...state, stock };
  } finally {
    await client.end();
  }
}

test("up, down step by step, and up again on an empty database", async () => {
  const db = await emptyDatabase();
  const all = knownMigrations();
  const options = { databaseUrl: db.url, logger: silentLogger };
  assert.deepEqual(await migrate(options), all);
  const up = await inspect(db.url);
  assert.deepEqual(up.tables, ["ingredients", "order_items", "orders", "pgmigrations"]);
  assert.deepEqual([up.applied, up.stock, up.triggers.length], [all, DEFAULT_STOCK, 4]);
  assert.deepEqual(await migrate(options), [], "a second run has nothing to do");
  // Each down undoes exactly its own migration, newest first.
  const tablesAfter: Record<string, string[]> = {
    "1764000001000_orders": ["ingredients", "pgmigrations"],
    "1764000000000_ingredients": ["pgmigrations"],
  };
  for (const [i, name] of [...all.entries()].reverse()) {
    assert.deepEqual(await migrate({ ...options, direction: "down" }), [name]);
    const state = await inspect(db.url);
    assert.deepEqual(state.applied, all.slice(0, i));
    assert.deepEqual(state.tables, tablesAfter[name] ?? up.tables, `after undoing ${name}`);
    if (name === "1764000002000_stock-notify") assert.deepEqual(state.triggers, []);
  }
  assert.deepEqual(await migrate(options), all);
  assert.deepEqual(await inspect(db.url), up);
});

test("three instances started at the same moment on an empty database all come up", async () => {
  const db = await emptyDatabase();
  const logs: string[] = [];
  const env = { ...process.env, NODE_OPTIONS: "--import tsx", DATABASE_URL: db.url, PORT: "0" };
  const launched = await Promise.allSettled(
    ["a", "b", "c"].map((name) =>
      launchService({
        name,
        entry: path.join(CHILLYBIN, "src", "index.ts"),
        env: { ...env, LOG_LEVEL: "info", MIGRATE_ON_START: "true" },
        onLine: (line) => logs.push(`${name}: ${line}`),
        timeoutMs: 60_000,
      }),
    ),
  );
  for (const l of launched) if (l.status === "fulfilled") services.push(l.value);
  assert.equal(
    services.length,
    3,
    `${launched.map((l) => (l.status === "rejected" ? l.reason : ""))}\n${logs.join("\n")}`,
  );
  // One of them applied the migrations, once; /ready (checked by launchService) means they are there.
  assert.deepEqual((await inspect(db.url)).applied, knownMigrations());
  assert.equal(logs.filter((l) => l.includes('"migrations applied"')).length, 1);
  for (const s of services)
    assert.deepEqual(await (await fetch(new URL("/", s.url))).json(), DEFAULT_STOCK);
  for (const s of services) s.child.kill("SIGTERM");
  const exits = await Promise.all(services.map((s) => s.exited));
  assert.deepEqual(exits.map(describeExit), ["exit code 0", "exit code 0", "exit code 0"]);
});

test("the migrate command (the deploy step): three started at once all succeed, one applies", async () => {
  const db = await emptyDatabase();
  const run = () =>
    promisify(execFile)(
      process.execPath,
      ["--import", "tsx", path.join(CHILLYBIN, "src", "migrate.ts")],
      {
        cwd: CHILLYBIN,
        env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: "info" },
      },
    );
  const runs = await Promise.all([run(), run(), run()]); // each rejects on a non-zero exit
  assert.deepEqual((await inspect(db.url)).applied, knownMigrations());
  assert.equal(
    runs.filter((r) => `${r.stdout}${r.stderr}`.includes('"migrations applied"')).length,
    1,
  );
});

test("readiness waits for the schema: an instance that does not migrate is not ready until someone has", async () => {
  const db = await emptyDatabase();
  const app = await startApp(db.url);
  try {
    const notReady = await get(app.url, "/ready");
    assert.deepEqual([notReady.status, /database/.test(notReady.text)], [503, true]);
    await migrate({ databaseUrl: db.url, logger: silentLogger, count: 1 });
    const halfway = await get(app.url, "/ready");
    assert.equal(halfway.status, 503);
    assert.match(halfway.text, /schema is behind: 1764000001000_orders/);
    await migrate({ databaseUrl: db.url, logger: silentLogger });
    assert.equal((await get(app.url, "/ready")).status, 200);
  } finally {
    await app.close();
  }
});
