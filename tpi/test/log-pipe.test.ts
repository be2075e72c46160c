/**
 * A real service process whose stdout is a pipe nobody reads (a stuck log shipper, a frozen
 * supervisor): it keeps serving, holds a bounded amount of log output, counts what it drops,
 * and still exits on SIGTERM within SHUTDOWN_TIMEOUT_MS + 1 s.
 */
import assert from "node:assert/strict";
import { type ChildProcessByStdio, spawn } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { describe, it } from "node:test";
import { get } from "./helpers";

const fixture = join(__dirname, "fixtures", "server.ts");
const BUFFER_BYTES = 64 * 1024;
const SHUTDOWN_TIMEOUT_MS = 2000;

interface Fixture {
  child: ChildProcessByStdio<null, Readable, Readable>;
  url: string;
  /** stdout read so far (only while reading is on). */
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the fixture and reads stdout until it is listening; then stdout is not read any more. */
async function startStuck(): Promise<Fixture> {
  const child = spawn(process.execPath, ["--import", "tsx", fixture], {
    env: {
      ...process.env,
      FIXTURE_LOG_BUFFER_BYTES: String(BUFFER_BYTES),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => {
    out += c;
  });
  child.stderr.on("data", (c) => {
    err += c;
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const m = out.match(/"url":"(http:[^"]+)","msg":"listening"/);
      if (m?.[1]) {
        child.stdout.off("data", onData);
        resolve(m[1]);
      }
    };
    child.stdout.on("data", onData);
    child.once("exit", () => reject(new Error(`fixture exited early:\n${out}${err}`)));
  });
  // From here on the pipe fills up: paused, this end stops reading from it.
  child.stdout.pause();
  return { child, url, output: () => out, exited };
}

async function metric(url: string, name: string): Promise<number> {
  const res = await get(`${url}/metrics`);
  assert.equal(res.status, 200, `GET /metrics: ${res.error ?? res.status}`);
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(res.body ?? "");
  assert.ok(m?.[1], `${name} in /metrics`);
  return Number(m[1]);
}

/** Sends `total` GETs, `concurrency` at a time; resolves with the statuses seen. */
async function load(url: string, total: number, concurrency: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let sent = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < total) {
        sent += 1;
        const r = await get(url, agent);
        const key = String(r.status ?? r.error);
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    }),
  );
  agent.destroy();
  return seen;
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("logging into a stdout pipe nobody reads (real process)", () => {
  it("keeps answering with bounded log memory, counts dropped lines, and SIGTERM still exits in time", async () => {
    const f = await startStuck();
    try {
      const rssBefore = await metric(f.url, "process_resident_memory_bytes");
      // About 100 MB of log lines (100 requests × 1000 lines of 1 KB) and thousands of requests.
      assert.deepEqual([...(await load(`${f.url}/chatty?n=1000`, 100, 4))], [["200", 100]]);
      assert.deepEqual([...(await load(`${f.url}/health`, 2000, 20))], [["200", 2000]]);

      const dropped = await metric(f.url, "log_lines_dropped_total");
      assert.ok(dropped >= 90_000, `most chatty lines were dropped and counted: ${dropped}`);
      const grewMiB =
        ((await metric(f.url, "process_resident_memory_bytes")) - rssBefore) / 2 ** 20;
      assert.ok(grewMiB < 80, `RSS grew ${grewMiB.toFixed(0)} MiB for ~100 MiB of log lines`);

      const signalled = Date.now();
      f.child.kill("SIGTERM");
      const code = await f.exited;
      const tookMs = Date.now() - signalled;
      assert.equal(code, 1, "exit 1: the last log lines could not be written");
      // The deadline is SHUTDOWN_TIMEOUT_MS + 1 s; the extra 2 s is for a loaded CI machine.
      // Before the bounded sink, this process never exited (a busy retry loop on EAGAIN).
      assert.ok(tookMs < SHUTDOWN_TIMEOUT_MS + 1000 + 2000, `exited ${tookMs} ms after SIGTERM`);
    } finally {
      f.child.kill("SIGKILL");
    }
  });

  it("once stdout drains again, one warning line says how many lines were dropped", async () => {
    const f = await startStuck();
    try {
      assert.equal((await get(`${f.url}/chatty?n=500`)).status, 200);
      const dropped = await metric(f.url, "log_lines_dropped_total");
      assert.ok(dropped > 0, "lines were dropped while nobody read stdout");

      f.child.stdout.resume();
      const warning = () =>
        f
          .output()
          .split("\n")
          .find((l) => l.includes("log lines were dropped"));
      await until(() => warning() !== undefined, "the warning line arrives");
      const line = JSON.parse(warning() as string);
      assert.equal(line.level, "warn");
      // Every dropped line: the chatty ones and the access line of the /metrics scrape above.
      assert.ok(line.dropped_lines >= dropped, `${line.dropped_lines} ≥ ${dropped}`);
      assert.equal(await metric(f.url, "log_lines_dropped_total"), line.dropped_lines);

      // "close" (stdout read to its end), not "exit", which may come before the last lines.
      const closed = new Promise((r) => f.child.once("close", r));
      f.child.kill("SIGTERM");
      assert.equal(await f.exited, 0, "a clean shutdown once stdout is read again");
      await closed;
      assert.match(f.output(), /"msg":"shutdown complete"/);
    } finally {
      f.child.kill("SIGKILL");
    }
  });
});
