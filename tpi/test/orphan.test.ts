/**
 * A service spawned with an IPC channel (by the stall, a test harness) shuts down by itself
 * when its supervisor dies — even by SIGKILL, which leaves the supervisor no time to say so.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { get } from "./helpers";

/** Running, i.e. neither gone nor a zombie waiting for its new parent to reap it. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("no orphans (real processes)", () => {
  it("exits by itself when the supervisor that spawned it is SIGKILLed", async () => {
    const supervisor = spawn(
      process.execPath,
      ["--import", "tsx", join(__dirname, "fixtures", "supervisor.ts")],
      { env: { ...process.env, SHUTDOWN_TIMEOUT_MS: "2000" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    supervisor.stdout.on("data", (c) => {
      out += c;
    });
    supervisor.stderr.on("data", (c) => {
      out += c;
    });
    const supervisorGone = new Promise((r) => supervisor.once("exit", r));
    let pid = 0;
    try {
      // Start-up (two processes compiling TypeScript) is not what is tested: a loaded machine may be slow.
      await until(() => /"msg":"listening"/.test(out), `the service listens:\n${out}`, 60_000);
      pid = Number(/"msg":"service started","pid":(\d+)/.exec(out)?.[1]);
      const url = /"url":"(http:[^"]+)","msg":"listening"/.exec(out)?.[1] as string;
      assert.ok(pid > 0 && running(pid), "the service runs");
      assert.equal((await get(`${url}/health`)).status, 200);

      supervisor.kill("SIGKILL");
      await supervisorGone;
      // Its IPC channel closed with the supervisor: graceful shutdown, within SHUTDOWN_TIMEOUT_MS
      // (2 s) + 1 s; the rest of the wait is for a loaded CI machine.
      await until(() => !running(pid), "the orphaned service exits", 10_000);
      assert.equal((await get(`${url}/health`)).error, "ECONNREFUSED", "its port is free");
    } finally {
      supervisor.kill("SIGKILL");
      if (pid && running(pid)) process.kill(pid, "SIGKILL");
    }
  });
});
