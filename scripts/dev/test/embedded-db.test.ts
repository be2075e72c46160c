import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { EmbeddedDb, startThrowawayDb } from "local-dev/embedded-db";
import pg from "pg";
import { eventually } from "testkit/eventually";
import { freePort, isPortFree } from "testkit/net";
import { isAlive } from "testkit/pids";

const PASSWORD = "s3cret";
let root: string;
let dataDir: string;
let port: number;
const messages: string[] = [];
const open = new Set<EmbeddedDb>();
const children = new Set<ChildProcess>();

function server(): EmbeddedDb {
  const db = new EmbeddedDb({
    dataDir,
    port,
    password: PASSWORD,
    fast: true,
    log: (m) => messages.push(m),
  });
  open.add(db);
  return db;
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

function postgresProcesses(dir: string): string {
  try {
    return execFileSync("pgrep", ["-af", `postgres -D ${dir}`], { encoding: "utf8" }).trim();
  } catch {
    return ""; // pgrep exits 1 when nothing matches
  }
}

/** Another node process that starts the same data directory and keeps it, as `npm start` would. */
async function startInAnotherProcess(): Promise<{ child: ChildProcess; postmasterPid: number }> {
  const script = `
    const { EmbeddedDb } = require(${JSON.stringify(path.join(__dirname, "..", "embedded-db.ts"))});
    const db = new EmbeddedDb({ dataDir: ${JSON.stringify(dataDir)}, port: ${port}, password: ${JSON.stringify(PASSWORD)}, fast: true, log: () => {} });
    db.start().then(() => console.log("started"), (e) => { console.error(e); process.exit(1); });
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--import", "tsx", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("started")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the other process exited with ${code}`)));
  });
  const postmasterPid = Number(
    (await fs.readFile(path.join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0],
  );
  return { child, postmasterPid };
}

/** SIGKILL the reaper `parent` started (reaper.ts), as if it had been killed too. */
function killReaperOf(parent: number): void {
  const ps = execFileSync("ps", ["-A", "-o", "pid=,ppid=,args="], { encoding: "utf8" });
  for (const line of ps.split("\n")) {
    const [pid, ppid, ...args] = line.trim().split(/\s+/);
    if (Number(ppid) === parent && args.join(" ").includes("reaper-process.cjs")) {
      process.kill(Number(pid), "SIGKILL");
    }
  }
}

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "embedded-db-test-"));
  await fs.chmod(root, 0o755);
  dataDir = path.join(root, "pg");
  port = await freePort();
});

after(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const db of open) await db.stop();
  const leftovers = postgresProcesses(dataDir);
  await fs.rm(root, { recursive: true, force: true });
  assert.equal(leftovers, "", "no postgres process may outlive the tests");
});

test("initialises once, serves queries, stops, and keeps its data for the next start", async () => {
  const db = server();
  const url = await db.start();
  assert.equal(url, `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`);
  assert.ok(
    messages.some((m) => m.includes("initialising")),
    "first start runs initdb",
  );
  assert.deepEqual(await query(url, "select 1 as one"), [{ one: 1 }]);
  await query(url, "create table kept (x int); insert into kept values (42)");
  await db.stop();
  assert.equal(db.isRunning, false);
  assert.equal(await isPortFree(port), true, "the port is released");
  assert.equal(postgresProcesses(dataDir), "");

  messages.length = 0;
  await db.start();
  assert.ok(!messages.some((m) => m.includes("initialising")), "the data directory is reused");
  assert.deepEqual(await query(url, "select x from kept"), [{ x: 42 }]);
  await db.stop();
});

test("refuses to start when another program holds the port, saying so", async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
  try {
    await assert.rejects(server().start(), /port \d+ on 127\.0\.0\.1 is already in use/);
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test("refuses a data directory another live process is running", async () => {
  const other = await startInAnotherProcess();
  try {
    await assert.rejects(server().start(), /in use by another running process \(pid \d+\)/);
    assert.equal(
      existsSync(`/proc/${other.postmasterPid}`),
      true,
      "the other server is left alone",
    );
  } finally {
    other.child.kill("SIGKILL");
    // Its reaper stops its server: wait, so the next test starts from a stopped data directory.
    await eventually(() => (isAlive(other.postmasterPid) ? undefined : true), {
      timeoutMs: 30_000,
      message: () => `postmaster ${other.postmasterPid} outlived its run`,
    });
  }
});

test("a killed run's postmaster is stopped by its reaper: no process, no port left", async () => {
  const other = await startInAnotherProcess();
  other.child.kill("SIGKILL"); // kill -9 of `npm start`: no clean-up code of its own runs
  await new Promise((resolve) => other.child.once("exit", resolve));
  await eventually(
    async () => (!isAlive(other.postmasterPid) && (await isPortFree(port)) ? true : undefined),
    { timeoutMs: 30_000, message: () => `postmaster ${other.postmasterPid} outlived its run` },
  );
});

test("recovers from a stale postmaster.pid left by a killed run (orphan postmaster on the port)", async () => {
  const other = await startInAnotherProcess();
  // Its reaper killed first, then the run (kill -9 of both): the postmaster lives on, holding the port.
  killReaperOf(other.child.pid ?? 0);
  other.child.kill("SIGKILL");
  await new Promise((resolve) => other.child.once("exit", resolve));
  assert.equal(await isPortFree(port), false, "the orphan still holds the port");

  messages.length = 0;
  const db = server();
  const url = await db.start();
  assert.ok(
    messages.some(
      (m) =>
        m.includes(`PostgreSQL (pid ${other.postmasterPid})`) && m.includes("stale postmaster.pid"),
    ),
    `a clear message about the orphan, got: ${messages.join(" / ")}`,
  );
  assert.deepEqual(await query(url, "select x from kept"), [{ x: 42 }]);
  const pid = Number(
    (await fs.readFile(path.join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0],
  );
  assert.notEqual(pid, other.postmasterPid, "a new postmaster serves");
  await db.stop();
});

test("a throwaway server leaves nothing behind", async () => {
  const db = await startThrowawayDb();
  assert.deepEqual(await query(db.url, "select current_setting('server_encoding') as encoding"), [
    { encoding: "UTF8" },
  ]);
  await db.destroy();
  assert.equal(existsSync(db.dataDir), false);
  assert.equal(postgresProcesses(db.dataDir), "");
  assert.equal(await isPortFree(db.port), true);
});
