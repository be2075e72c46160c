/**
 * What the bench measures with: servers started as child processes (logging into a file, as
 * production logs to a collector — piping would make the load generator parse every access-log
 * line), autocannon against HTTP, pgbench against PostgreSQL, and /proc for CPU and memory.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import autocannon from "autocannon";

/** One timed run. Throughput counts only 2xx answers, so errors never look like speed. */
export interface Sample {
  perSec: number;
  p99?: number;
  /** Non-2xx answers, socket errors and timeouts (pgbench: failed transactions). */
  failed: number;
  /** Server CPU (user + system) per 2xx answer, in µs: steadier than throughput on a busy machine. */
  cpuUs?: number;
}

/** A measured run: what it is called in the report, its length, and how to do it once. */
export interface Run {
  key: string;
  /** Toastie runs take several hops each: they run longer for a steady median. */
  long?: boolean;
  /** Brings the database to the same state before every run (bottomless stock, …). */
  before?: () => Promise<void>;
  measure: (seconds: number) => Promise<Sample>;
}

/** What the cases share; ./pick-v1.ts builds its runs from it. */
export interface Stage {
  chillybin: Server;
  jafflr: Server;
  /** Bottomless stock on the main database, vacuumed. */
  stocked: () => Promise<void>;
  /** Toasties for `customer` through jafflr at 50 connections. */
  toastie: (customer: string, seconds: number) => Promise<Sample>;
  /** One request that must succeed (and pass `expect`) before anything is measured. */
  check: (url: string, init?: RequestInit, expect?: (body: string) => boolean) => Promise<void>;
}

export const PICK_CONNECTIONS = [1, 10, 50];

/** One row of the results table: the run `a` against its reference `b`. */
export interface Ratio {
  question: string;
  a: string;
  b: string;
}

export interface Server {
  name: string;
  url: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
}

/** Spawns `node args…` and waits for its `listening` log line and, if given, `readyPath` → 200. */
export async function start(
  name: string,
  node: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  readyPath?: string,
): Promise<Server> {
  const out = openSync(logFile, "a");
  const child = spawn(node, args, { env, stdio: ["ignore", out, out] });
  closeSync(out);
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  for (;;) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} did not start:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
    }
    const line = /^.*"msg":"listening".*$/m.exec(readFileSync(logFile, "utf8"))?.[0];
    url ??= line && /"url":"([^"]+)"/.exec(line)?.[1];
    const ready =
      url &&
      (!readyPath ||
        (await fetch(url + readyPath).then(
          (r) => r.ok,
          () => false,
        )));
    if (ready && url) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // From here on VmHWM (the kernel's peak resident set) counts the load, not start-up.
  writeFileSync(`/proc/${child.pid}/clear_refs`, "5");
  return { name, url, pid: child.pid as number, child, logFile };
}

export async function httpLoad(opts: {
  url: string;
  seconds: number;
  connections: number;
  /** The processes whose CPU the run is charged with (jafflr and chillybin for a toastie). */
  servers: Server[];
  body?: unknown;
  headers?: Record<string, string>;
}): Promise<Sample> {
  const cpuBefore = opts.servers.map((s) => cpuSeconds(s.pid));
  const result = await autocannon({
    url: opts.url,
    method: opts.body === undefined ? "GET" : "POST",
    connections: opts.connections,
    duration: opts.seconds,
    timeout: 10,
    headers: { "content-type": "application/json", ...opts.headers },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
  const ok = result["2xx"];
  const cpu = opts.servers.reduce((sum, s, i) => sum + cpuSeconds(s.pid) - (cpuBefore[i] ?? 0), 0);
  return {
    perSec: ok / result.duration,
    p99: result.latency.p99,
    failed: result.non2xx + result.errors + result.timeouts,
    ...(ok > 0 ? { cpuUs: (cpu * 1e6) / ok } : {}),
  };
}

/** pgbench running one statement as a prepared statement, like chillybin's named queries. */
export async function pgbench(
  databaseUrl: string,
  sql: string,
  connections: number,
  seconds: number,
) {
  const url = new URL(databaseUrl);
  const args = ["-n", "-M", "prepared", "-f", "-", "-c", String(connections)];
  args.push("-j", String(Math.min(connections, 2)), "-T", String(seconds));
  args.push("-h", url.hostname, "-p", url.port || "5432", "-U", url.username || "postgres");
  args.push(url.pathname.slice(1));
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password) };
  // A shared server can be full for a moment (other people's test suites): try again, twice.
  for (let attempt = 1; ; attempt++) {
    const run = spawnSync("pgbench", args, { input: `${sql}\n`, env, encoding: "utf8" });
    // A run too short for 50 connections to finish one transaction is a zero, not a failure.
    const none = /^number of transactions actually processed: 0\b/m.test(run.stdout);
    const tps = none ? "0" : /^tps = ([\d.]+)/m.exec(run.stdout)?.[1];
    const failed = Number(/^number of failed transactions: (\d+)/m.exec(run.stdout)?.[1] ?? 0);
    if (tps) return { perSec: Number(tps), failed } satisfies Sample;
    if (attempt === 3 || !/too many clients/.test(run.stderr)) {
      throw new Error(`pgbench failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat, 10 ms ticks). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A /proc/<pid>/status figure in MB: VmHWM is the peak resident set, VmRSS the current one. */
export function memoryMB(pid: number, field: "VmHWM" | "VmRSS"): number {
  const kB = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
    readFileSync(`/proc/${pid}/status`, "utf8"),
  )?.[1];
  return (Number(kB) * 1024) / 1e6;
}
