/**
 * Migrations on empty databases: every step goes up, down and up again; three service instances
 * started at the same moment all come up (one migrates, the others wait for its lock); the
 * migrate command works as a deploy step.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, test } from "node:test";
import pg from "pg";
import { describeExit, type LaunchedService, launchService } from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { knownMigrations, migrate } from "../src/migrate";
import { DEFAULT_STOCK } from "../src/stock";
import { act, silentLogger, startApp } from "./helpers";

const CHILLYBIN = path.resolve(__dirname, "..");
const databases: TestDatabase[] = [];
const services: LaunchedService[] = [];

after(async () => {
  await Promise.all(
    services.map(async (s) => {
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
      await s.exited;
    }),
  );
  await Promise.all(databases.map((d) => d.drop()));
});

async function emptyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

async function inspect(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    );
    const applied = await client.query<{ name: string }>(
      "SELECT name FROM pgmigrations ORDER BY id",
    );
    const stock = tables.rows.some((t) => t.tablename === "ingredients")
      ? Object.fromEntries(
          (
            await client.query<{ name: string; quantity: number }>(
              "SELECT name, quantity FROM ingredients",
            )
          ).rows.map((r) => [r.name, r.quantity]),
        )
      : undefined;
    const triggers = await client.query<{ tgname: string }>(
      "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname",
    );
    return {
      tables: tables.rows.map((t) => t.tablename),
      triggers: triggers.rows.map((t) => t.tgname),
      applied: applied.rows.map((r) => r.name),
      stock,
    };
  } finally {
    await client.end();
  }
}

test("up, down step by step, and up again on an empty database", async () => {
  const db = await emptyDatabase();
  const all = knownMigrations();
  assert.ok(all.length >= 2);
  const options = { databaseUrl: db.url, logger: silentLogger };

  assert.deepEqual(await migrate(options), all);
  const up = await inspect(db.url);
  assert.deepEqual(up.tables, ["ingredients", "order_items", "orders", "pgmigrations"]);
  assert.deepEqual(up.applied, all);
  assert.deepEqual(up.stock, DEFAULT_STOCK);
  assert.equal(up.triggers.length, 4, "the stock feed's NOTIFY triggers");
  assert.deepEqual(await migrate(options), [], "a second run has nothing to do");

  // Each down undoes exactly its own migration, newest first.
  const tablesAfterDown: Record<string, string[]> = {
    "1764000001000_orders": ["ingredients", "pgmigrations"],
    "1764000000000_ingredients": ["pgmigrations"],
  };
  for (const [i, name] of all.map((n, i) => [i, n] as const).reverse()) {
    assert.deepEqual(await migrate({ ...options, direction: "down" }), [name]);
    const state = await inspect(db.url);
    assert.deepEqual(state.applied, all.slice(0, i));
    assert.deepEqual(state.tables, tablesAfterDown[name] ?? up.tables, `after undoing ${name}`);
    if (name === "1764000002000_stock-notify") assert.deepEqual(state.triggers, []);
  }
  const down = await inspect(db.url);
  assert.deepEqual(down.tables, ["pgmigrations"]);
  assert.deepEqual(down.applied, []);

  assert.deepEqual(await migrate(options), all);
  const again = await inspect(db.url);
  assert.deepEqual(again.tables, up.tables);
  assert.deepEqual(again.stock, DEFAULT_STOCK);
});

test("three instances started at the same moment on an empty database all come up", async () => {
  const db = await emptyDatabase();
  const logs: string[] = [];
  const start = (name: string) =>
    launchService({
      name,
      entry: path.join(CHILLYBIN, "src", "index.ts"),
      env: {
        ...process.env,
        NODE_OPTIONS: "--import tsx",
        DATABASE_URL: db.url,
        PORT: "0",
        LOG_LEVEL: "info",
        MIGRATE_ON_START: "true",
      },
      onLine: (line) => logs.push(`${name}: ${line}`),
      timeoutMs: 60_000,
    });
  const launched = await Promise.allSettled([start("a"), start("b"), start("c")]);
  for (const l of launched) if (l.status === "fulfilled") services.push(l.value);
  assert.deepEqual(
    launched.map((l) => l.status),
    ["fulfilled", "fulfilled", "fulfilled"],
    `${launched.map((l) => (l.status === "rejected" ? String(l.reason) : "")).join("\n")}\n${logs.join("\n")}`,
  );

  // One of them applied the migrations, once; /ready (checked by launchService) means the schema is there.
  const state = await inspect(db.url);
  assert.deepEqual(state.applied, knownMigrations());
  assert.equal(logs.filter((l) => l.includes('"migrations applied"')).length, 1);
  for (const s of services) {
    const res = await fetch(new URL("/", s.url));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), DEFAULT_STOCK);
  }

  for (const s of services) s.child.kill("SIGTERM");
  const exits = await Promise.all(services.map((s) => s.exited));
  assert.deepEqual(exits.map(describeExit), ["exit code 0", "exit code 0", "exit code 0"]);
});

function runMigrateCommand(
  url: string,
  ...args: string[]
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(CHILLYBIN, "src", "migrate.ts"), ...args],
      {
        cwd: CHILLYBIN,
        env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: "info" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output })); // "exit" may precede the last output
  });
}

test("the migrate command (the deploy step): three started at once all succeed, one applies", async () => {
  const db = await emptyDatabase();
  const runs = await Promise.all([1, 2, 3].map(() => runMigrateCommand(db.url)));
  assert.deepEqual(
    runs.map((r) => r.code),
    [0, 0, 0],
    runs.map((r) => r.output).join("\n"),
  );
  assert.deepEqual((await inspect(db.url)).applied, knownMigrations());
  assert.equal(runs.filter((r) => r.output.includes('"migrations applied"')).length, 1);
});

test("readiness waits for the schema: an instance that does not migrate is not ready until someone has", async () => {
  const db = await emptyDatabase();
  const app = await startApp(db.url);
  try {
    const client = act(app.url);
    const notReady = await client.get("/ready");
    assert.equal(notReady.status, 503);
    assert.match(JSON.stringify(notReady.body), /database/);
    await migrate({ databaseUrl: db.url, logger: silentLogger, count: 1 });
    const halfway = await client.get("/ready");
    assert.equal(halfway.status, 503);
    assert.match(JSON.stringify(halfway.body), /schema is behind: 1764000001000_orders/);
    await migrate({ databaseUrl: db.url, logger: silentLogger });
    assert.equal((await client.get("/ready")).status, 200);
  } finally {
    await app.close();
  }
});
