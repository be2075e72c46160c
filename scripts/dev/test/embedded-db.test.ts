import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { commandLine, EmbeddedDb, startThrowawayDb } from "local-dev/embedded-db";
import pg from "pg";
import { eventually } from "testkit/eventually";
import { freePort, isPortFree } from "testkit/net";

let root: string;
let dataDir: string;
let port: number;
const messages: string[] = [];
const servers = new Set<EmbeddedDb>();
const children = new Set<ChildProcess>();
const options = () => ({ dataDir, port, password: "s3cret", fast: true });
const postmasterPid = () =>
  Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);

function server(): EmbeddedDb {
  const db = new EmbeddedDb({ ...options(), log: (m) => messages.push(m) });
  servers.add(db);
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

/** Another node process that starts the same data folder and keeps it, as `npm start` does. */
async function startElsewhere(): Promise<{ child: ChildProcess; postmaster: number }> {
  const script = `const { EmbeddedDb } = require(${JSON.stringify(path.join(__dirname, "..", "embedded-db.ts"))});
    new EmbeddedDb(${JSON.stringify(options())}).start().then(() => console.log("started"));
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--import", "tsx", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => chunk.includes("started") && resolve());
    child.once("exit", (code) => reject(new Error(`the other process exited with ${code}`)));
  });
  return { child, postmaster: postmasterPid() };
}

const killed = async (child: ChildProcess) => {
  child.kill("SIGKILL");
  if (child.exitCode === null) await new Promise((resolve) => child.once("exit", resolve));
};

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "embedded-db-test-"));
  await fs.chmod(root, 0o755);
  dataDir = path.join(root, "pg");
  port = await freePort();
});

after(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const db of servers) await db.stop();
  await fs.rm(root, { recursive: true, force: true });
});

test("initialises once, serves, stops, and keeps its data for the next start", async () => {
  const db = server();
  const url = await db.start();
  assert.equal(url, `postgres://postgres:s3cret@127.0.0.1:${port}/postgres`);
  assert.ok(messages.some((m) => m.includes("initialising")));
  await query(url, "create table kept (x int); insert into kept values (42)");
  await db.stop();
  assert.equal(await isPortFree(port), true, "the port is released");
  messages.length = 0;
  await db.start();
  assert.ok(!messages.some((m) => m.includes("initialising")), "the data folder is reused");
  assert.deepEqual(await query(url, "select x from kept"), [{ x: 42 }]);
  await db.stop();
});

test("refuses a port another program holds, saying so", async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
  try {
    await assert.rejects(server().start(), /port \d+ on 127\.0\.0\.1 is already in use/);
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test("refuses a data folder a live process runs; killed, that run's reaper stops its server", async () => {
  const other = await startElsewhere();
  await assert.rejects(server().start(), /in use by another running process \(pid \d+\)/);
  await killed(other.child); // kill -9 of `npm start`: no clean-up code of its own runs
  await eventually(
    async () => (!commandLine(other.postmaster) && (await isPortFree(port)) ? true : undefined),
    {
      timeoutMs: 30_000,
      message: () => `postmaster ${other.postmaster} outlived its run`,
    },
  );
});

test("stops the orphan postmaster of a run killed with its reaper, and starts afresh", async () => {
  const other = await startElsewhere();
  const ps = execFileSync("ps", ["-A", "-o", "pid=,ppid=,args="], { encoding: "utf8" });
  for (const [, pid, ppid] of ps.matchAll(/^\s*(\d+)\s+(\d+)\s+.*-e const \[pid, dir\]/gm)) {
    if (Number(ppid) === other.child.pid) process.kill(Number(pid), "SIGKILL");
  }
  await killed(other.child);
  assert.equal(await isPortFree(port), false, "the orphan still holds the port");
  messages.length = 0;
  const db = server();
  const url = await db.start();
  assert.ok(
    messages.some(
      (m) =>
        m.includes(`PostgreSQL (pid ${other.postmaster})`) && m.includes("stale postmaster.pid"),
    ),
    messages.join(" / "),
  );
  assert.deepEqual(await query(url, "select x from kept"), [{ x: 42 }]);
  assert.notEqual(postmasterPid(), other.postmaster, "a new postmaster serves");
  await db.stop();
});

test("a throwaway server leaves nothing behind", async () => {
  const db = await startThrowawayDb();
  const rows = await query(db.url, "select current_setting('server_encoding') as encoding");
  assert.deepEqual(rows, [{ encoding: "UTF8" }]);
  await db.destroy();
  assert.equal(existsSync(db.dataDir), false);
  assert.equal(await isPortFree(db.port), true);
});
