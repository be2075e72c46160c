import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { eventually } from "testkit/eventually";
import { actClient } from "testkit/http-client";
import { freePorts, isPortFree } from "testkit/net";
import { isAlive } from "testkit/pids";
import { REPO_ROOT } from "testkit/service-process";

/**
 * `npm start` as a newcomer runs it, minus the build: the stall script on a fresh embedded
 * PostgreSQL (no DATABASE_URL), both services up; Ctrl-C stops everything cleanly, and a stall
 * killed outright (kill -9: no chance to clean up) leaves no process and no port behind.
 */
describe("npm start (scripts/dev/stall.ts) on the embedded PostgreSQL", () => {
  const dir = mkdtempSync(join(tmpdir(), "stall-test-"));
  chmodSync(dir, 0o755); // PostgreSQL runs as the postgres user, who must reach the data folder
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The stall as `npm start` runs it (node --import tsx: one process, no wrapper in between). */
  async function startStall(data: string) {
    const [pgPort, chillybinPort, jafflrPort] = (await freePorts(3)) as [number, number, number];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      EMBEDDED_PG_PORT: String(pgPort),
      EMBEDDED_PG_DATA: join(dir, data, "pg"),
      CHILLYBIN_PORT: String(chillybinPort),
      JAFFLR_PORT: String(jafflrPort),
    };
    delete env.DATABASE_URL;
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", "scripts/dev/stall.ts"],
      { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout?.on("data", (c) => {
      output += c;
    });
    child.stderr?.on("data", (c) => {
      output += c;
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    // "close" comes once the output pipes are drained too: then output() holds the last lines.
    const closed = new Promise<void>((r) => child.once("close", () => r()));
    after(async () => {
      // A failed test must not leave its stall running (nor hang the run waiting for it).
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await exited;
      clearTimeout(timer);
    });
    const chillybin = actClient(`http://127.0.0.1:${chillybinPort}`);
    const jafflr = actClient(`http://127.0.0.1:${jafflrPort}`);
    // The first start initialises PostgreSQL and runs chillybin's migrations.
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`the stall exited early\n${output}`);
        const statuses = [
          (await chillybin.get("/health")).status,
          (await jafflr.get("/health")).status,
        ];
        // The banner comes once both are ready and the stall has noted their pids.
        const open = statuses.every((s) => s === 200) && output.includes("Toasties Galore is open");
        return open ? true : undefined;
      },
      { timeoutMs: 90_000, message: () => `both services answer /health\n${output}` },
    );
    return {
      child,
      exited,
      closed,
      chillybin,
      jafflr,
      ports: { postgres: pgPort, chillybin: chillybinPort, jafflr: jafflrPort },
      output: () => output,
    };
  }

  it("serves both /health endpoints, then shuts down on SIGINT with exit code 0", async () => {
    const stall = await startStall("sigint");
    try {
      const stock = await stall.chillybin.get("/");
      assert.equal((stock.body as Record<string, number>).cheese, 10, "migrated and seeded");
    } finally {
      stall.child.kill("SIGINT");
    }
    assert.equal(await stall.exited, 0, stall.output());
    await stall.closed;
    assert.match(stall.output(), /stopped/);
    const gone = await stall.jafflr.get("/health");
    assert.equal(gone.status, 0, "nothing is left listening");
  });

  it("killed with SIGKILL, leaves no service, no PostgreSQL and no port behind", async () => {
    const stall = await startStall("sigkill");
    const state = JSON.parse(readFileSync(join(dir, "sigkill", "stall.json"), "utf8")) as {
      services: Record<string, number>;
    };
    const postmaster = Number(
      readFileSync(join(dir, "sigkill", "pg", "postmaster.pid"), "utf8").split("\n")[0],
    );
    const pids = { ...state.services, postgres: postmaster };
    assert.deepEqual(Object.keys(pids).sort(), ["chillybin", "jafflr", "postgres"]);
    for (const [name, pid] of Object.entries(pids)) assert.ok(isAlive(pid), `${name} runs`);

    stall.child.kill("SIGKILL");
    await stall.exited;

    const left = async () => {
      const running = Object.entries(pids).filter(([, pid]) => isAlive(pid));
      const taken = [];
      for (const [name, port] of Object.entries(stall.ports)) {
        if (!(await isPortFree(port))) taken.push(`${name} port ${port}`);
      }
      return [...running.map(([name, pid]) => `${name} (pid ${pid})`), ...taken];
    };
    // The services notice their supervisor is gone (their IPC channel closes) and drain; the
    // stall's reaper then stops PostgreSQL: ~3 s. The bound is the reaper's own worst case
    // (10 s for a service to go by itself, 30 s after SIGTERM, then SIGKILL) with room to spare.
    let still: string[] = [];
    after(() => {
      // Only when the assertion below failed: leave nothing behind for the next test either.
      for (const pid of Object.values(pids)) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    });
    await eventually(
      async () => {
        still = await left();
        return still.length === 0 ? true : undefined;
      },
      {
        timeoutMs: 90_000,
        intervalMs: 200,
        message: () =>
          `still there after the stall was killed: ${still.join(", ")}\n${stall.output()}`,
      },
    );
  });
});
