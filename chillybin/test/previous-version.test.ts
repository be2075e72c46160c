/**
 * The previous chillybin serves on the newest schema: during a rollout, and after a rollback, it
 * runs (its own migrate step first) against a database the newest version has migrated, so
 * migrations must stay expand-only. "Previous" is the chillybin from just before the newest
 * migration change, taken from git history (a clean clone has it) and run by tsx over today's
 * node_modules, with the tpi of its own commit.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { type LaunchedService, launchService } from "testkit/service-process";
import type { TestDatabase } from "testkit/test-db";
import { knownMigrations } from "../src/migrate";
import { assertProblem, get, migratedDatabase, ok, post } from "./helpers";

const ROOT = path.resolve(__dirname, "..", "..");
const git = (...args: string[]) =>
  execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: "pipe" }).trim();
const has = (rev: string, file: string) => {
  try {
    return git("cat-file", "-e", `${rev}:${file}`) === "";
  } catch {
    return false;
  }
};

/** The parent of the newest commit that changed chillybin/migrations (HEAD while a change is
 * uncommitted); when that commit created chillybin, the chillybin commit before the newest. */
function previousVersion(): string {
  assert.equal(git("rev-parse", "--is-shallow-repository"), "false", "needs full git history");
  if (git("status", "--porcelain", "--", "chillybin/migrations")) return git("rev-parse", "HEAD");
  const changed = git("log", "-1", "--format=%H", "--", "chillybin/migrations");
  if (has(`${changed}^`, "chillybin/src/index.ts")) return git("rev-parse", `${changed}^`);
  const before = git("log", "-2", "--format=%H", "--", "chillybin").split("\n")[1];
  assert.ok(before, "the history holds no earlier chillybin");
  return before;
}

const rev = previousVersion();
const work = fs.mkdtempSync(path.join(tmpdir(), "chillybin-previous-"));
let db: TestDatabase;
let old: LaunchedService;
const output: string[] = [];

/** Its chillybin and tpi as of `rev`; tpi served from its TypeScript, every other package linked. */
function extract() {
  const archive = execFileSync("git", ["archive", rev, "chillybin", "tpi", "tsconfig.base.json"], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  execFileSync("tar", ["-x", "-C", work], { input: archive });
  fs.mkdirSync(path.join(work, "node_modules"));
  for (const name of fs.readdirSync(path.join(ROOT, "node_modules"))) {
    const target = name === "tpi" ? "../tpi" : path.join(ROOT, "node_modules", name);
    fs.symlinkSync(target, path.join(work, "node_modules", name));
  }
  const tpi = path.join(work, "tpi", "package.json");
  const exports = { ".": "./src/index.ts", "./register": "./src/register.ts" };
  fs.writeFileSync(tpi, JSON.stringify({ ...JSON.parse(fs.readFileSync(tpi, "utf8")), exports }));
}

before(async () => {
  extract();
  db = await migratedDatabase();
  const tsx = pathToFileURL(require.resolve("tsx")).href;
  const env = {
    ...process.env,
    ...{ DATABASE_URL: db.url, VERSION: rev.slice(0, 12), MIGRATE_ON_START: "true" },
    ...{ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", CHILLYBIN_ADMIN_TOKEN: undefined },
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${tsx}`,
  };
  old = await launchService({
    name: `chillybin ${rev.slice(0, 12)}`,
    entry: path.join(work, "chillybin", "src", "index.ts"),
    env,
    onLine: (line) => output.push(line),
  }).catch((e: Error) => Promise.reject(new Error(`${e.message}\n${output.join("\n")}`)));
});
after(async () => {
  if (old?.child.exitCode === null) old.child.kill("SIGTERM");
  await old?.exited;
  await db?.drop();
  fs.rmSync(work, { recursive: true, force: true });
});

test(`chillybin ${rev.slice(0, 12)} serves on the newest schema`, async () => {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const applied = await client
    .query<{ name: string }>("SELECT name FROM pgmigrations ORDER BY name")
    .finally(() => client.end());
  assert.deepEqual(
    applied.rows.map((r) => r.name),
    knownMigrations(),
    "its own migrate step left the newest schema as it was",
  );
  const url = old.url;
  assert.equal((await get(url, "/ready")).status, 200);
  assert.equal(JSON.parse((await get(url, "/health")).text).version, rev.slice(0, 12));
  const stock = await ok(post(url, "/restock", { cheese: 5, bread: 4 }));
  assert.deepEqual([stock.cheese, stock.bread], [5, 4]);
  const order = { customer: "ann", items: [{ ingredient: "cheese", quantity: 2 }] };
  const picked = await ok<{ id: string }>(post(url, "/v2/pick", order, { "Idempotency-Key": rev }));
  assert.equal((await ok(post(url, "/v2/pick", order, { "Idempotency-Key": rev }))).id, picked.id);
  assertProblem(await post(url, "/v2/pick", { customer: "ann", items: "cheese" }), 400);
  let cheese = 3;
  if (fs.existsSync(path.join(work, "chillybin", "src", "pick-v1.ts"))) {
    assert.equal((await get(url, "/pick?name=cheese&quantity=1")).status, 200);
    cheese = 2;
  }
  assert.equal((await ok(get(url, "/"))).cheese, cheese);
  assert.equal((await ok<{ id: string }>(get(url, `/orders/${picked.id}`))).id, picked.id);
});
