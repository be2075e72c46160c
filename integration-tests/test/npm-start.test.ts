/**
 * `npm start` as a newcomer runs it, minus the build: scripts/dev/stall.ts on a fresh embedded
 * PostgreSQL (no DATABASE_URL). Ctrl-C stops everything cleanly; started again on the same data
 * and killed outright (kill -9: no chance to clean up), it leaves no process and no port behind.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { eventually } from "testkit/eventually";
import { actClient } from "testkit/http-client";
import { freePort, isPortFree } from "testkit/net";
import { REPO_ROOT } from "testkit/service-process";
import { needsOwnProcesses } from "../src/stall";

const dir = mkdtempSync(join(tmpdir(), "stall-test-"));
chmodSync(dir, 0o755); // PostgreSQL runs as the postgres user, who must reach the data folder
after(() => rmSync(dir, { recursive: true, force: true }));

/** Whether the process runs; a zombie (exited, not yet reaped by its new parent) does not. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const stat = ((file) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return ""; // no /proc (not Linux): no zombie check
    }
  })(`/proc/${pid}/stat`);
  return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

async function npmStart() {
  const [postgres, chillybin, jafflr] = [await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EMBEDDED_PG_PORT: `${postgres}`,
    EMBEDDED_PG_DATA: join(dir, "pg"),
  };
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/dev/stall.ts"], {
    cwd: REPO_ROOT,
    env: { ...env, CHILLYBIN_PORT: `${chillybin}`, JAFFLR_PORT: `${jafflr}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) stream.on("data", (c) => (output += c));
  const closed = new Promise((resolve) => child.once("close", (code) => resolve(code)));
  after(() => child.exitCode ?? child.signalCode ?? child.kill("SIGKILL"));
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`the stall exited early\n${output}`);
      // The banner comes once both are ready and the stall has noted their pids.
      return output.includes("Toasties Galore is open") || undefined;
    },
    { timeoutMs: 90_000, message: () => `the stall did not open\n${output}` },
  );
  const stock = await actClient(`http://127.0.0.1:${chillybin}`).get("/");
  assert.equal(stock.body.cheese, 10, "migrated and seeded");
  return { child, closed, ports: { postgres, chillybin, jafflr }, output: () => output };
}

test(
  "npm start serves both services; SIGINT stops everything with exit code 0",
  needsOwnProcesses,
  async () => {
    const stall = await npmStart();
    stall.child.kill("SIGINT");
    assert.equal(await stall.closed, 0, stall.output());
    assert.match(stall.output(), /stopped/);
    for (const port of Object.values(stall.ports))
      assert.ok(await isPortFree(port), `port ${port} is free`);
  },
);

test(
  "killed with SIGKILL, it leaves no service, no PostgreSQL and no port behind",
  needsOwnProcesses,
  async () => {
    const stall = await npmStart();
    const { services } = JSON.parse(readFileSync(join(dir, "stall.json"), "utf8"));
    const postmaster = Number(
      readFileSync(join(dir, "pg", "postmaster.pid"), "utf8").split("\n")[0],
    );
    const pids: Record<string, number> = { ...services, postgres: postmaster };
    assert.deepEqual(Object.keys(pids).sort(), ["chillybin", "jafflr", "postgres"]);
    stall.child.kill("SIGKILL");
    after(() => {
      for (const pid of Object.values(pids)) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    });
    // The services notice their supervisor is gone (their IPC channel closes) and drain; the
    // stall's reaper then stops PostgreSQL. The bound is the reaper's own worst case, and more.
    let left: string[] = [];
    await eventually(
      async () => {
        left = Object.entries(pids).flatMap(([name, pid]) =>
          isAlive(pid) ? [`${name} (pid ${pid})`] : [],
        );
        for (const [name, port] of Object.entries(stall.ports))
          if (!(await isPortFree(port))) left.push(`${name} port ${port}`);
        return left.length === 0 || undefined;
      },
      {
        timeoutMs: 90_000,
        intervalMs: 200,
        message: () => `still there: ${left.join(", ")}\n${stall.output()}`,
      },
    );
  },
);
