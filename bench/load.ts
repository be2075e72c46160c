/** The two load generators: autocannon against HTTP, pgbench against PostgreSQL. */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import autocannon from "autocannon";

/** One timed run. Throughput counts only 2xx answers, so errors never look like speed. */
export interface Sample {
  /** Successful operations per second (2xx answers, or pgbench transactions). */
  perSec: number;
  /** Successful operations in the run. */
  ok: number;
  /** Latency percentiles in ms; undefined where the tool does not report them. */
  p50?: number | undefined;
  p99?: number | undefined;
  /** Answers that were not 2xx, transport errors and timeouts (0 for pgbench). */
  failed: number;
  /** Status codes other than 2xx, e.g. {"503": 12}, for the report. */
  statuses: Record<string, number>;
  /**
   * CPU time the measured server processes used per successful operation, in µs: far less
   * sensitive to noisy neighbours than throughput, so it shows what a layer costs.
   */
  cpuUsPerOp?: number | undefined;
  /** The same per process, e.g. {jafflr: 900, chillybin: 2100}. */
  cpuUsPerOpBy?: Record<string, number>;
}

export interface HttpLoad {
  url: string;
  method?: "GET" | "POST";
  body?: unknown;
  headers?: Record<string, string>;
  connections: number;
  durationS: number;
  /** Server processes whose CPU time to count (e.g. jafflr and chillybin for a toastie). */
  processes?: { name: string; pid: number }[];
}

export async function httpLoad(load: HttpLoad): Promise<Sample> {
  const processes = load.processes ?? [];
  const cpuBefore = processes.map((p) => cpuSeconds(p.pid));
  const result = await autocannon({
    url: load.url,
    method: load.method ?? "GET",
    connections: load.connections,
    duration: load.durationS,
    pipelining: 1,
    timeout: 10,
    headers: {
      ...(load.body === undefined ? {} : { "content-type": "application/json" }),
      ...load.headers,
    },
    ...(load.body === undefined ? {} : { body: JSON.stringify(load.body) }),
  });
  const statuses: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) {
    if (!code.startsWith("2")) statuses[code] = count;
  }
  if (result.errors > 0) statuses.errors = result.errors;
  if (result.timeouts > 0) statuses.timeouts = result.timeouts;
  const ok = result["2xx"];
  const cpuBy = Object.fromEntries(
    processes.map((p, i) => [p.name, ((cpuSeconds(p.pid) - (cpuBefore[i] ?? 0)) * 1e6) / ok]),
  );
  const cpuTotal = Object.values(cpuBy).reduce((sum, us) => sum + us, 0);
  return {
    cpuUsPerOp: processes.length > 0 && ok > 0 ? cpuTotal : undefined,
    cpuUsPerOpBy: processes.length > 0 && ok > 0 ? cpuBy : undefined,
    perSec: result["2xx"] / result.duration,
    ok,
    p50: result.latency.p50,
    p99: result.latency.p99,
    failed: result.non2xx + result.errors + result.timeouts,
    statuses,
  };
}

export interface PgbenchLoad {
  databaseUrl: string;
  /** One transaction of the custom script, e.g. the statement chillybin's v1 pick runs. */
  script: string;
  scriptFile: string;
  connections: number;
  durationS: number;
}

/**
 * pgbench with a custom script, prepared statements (chillybin's pg queries are named, i.e.
 * prepared, too), no vacuum of the pgbench tables (-n: there are none), -j threads ≤ clients.
 */
export async function pgbench(load: PgbenchLoad): Promise<Sample> {
  writeFileSync(load.scriptFile, `${load.script.trim()}\n`);
  const url = new URL(load.databaseUrl);
  const args = [
    "-n",
    "-M",
    "prepared",
    "-f",
    load.scriptFile,
    "-c",
    String(load.connections),
    "-j",
    String(Math.min(load.connections, 2)),
    "-T",
    String(load.durationS),
    "-h",
    url.hostname,
    "-p",
    url.port || "5432",
    "-U",
    decodeURIComponent(url.username || "postgres"),
    decodeURIComponent(url.pathname.slice(1)),
  ];
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password) };
  let { code, stdout, stderr } = await run("pgbench", args, env);
  // A shared server can be full for a moment (other people's test suites): try again, twice.
  for (let retry = 0; retry < 2 && code !== 0 && /too many clients/.test(stderr); retry++) {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    ({ code, stdout, stderr } = await run("pgbench", args, env));
  }
  const tps = /^tps = ([\d.]+) \(without initial connection time\)/m.exec(stdout)?.[1];
  const failedTx = /^number of failed transactions: (\d+)/m.exec(stdout)?.[1];
  const latency = /^latency average = ([\d.]+) ms/m.exec(stdout)?.[1];
  // A run too short to finish one transaction (50 connections to open on a busy machine) is a
  // zero, like an autocannon run with no answers, not a failure of the bench.
  const none = /^number of transactions actually processed: 0\b/m.test(stdout);
  if (code !== 0 || (!tps && !none)) {
    throw new Error(`pgbench failed (exit ${code}):\n${stdout}\n${stderr}`);
  }
  const failed = Number(failedTx ?? 0);
  return {
    perSec: Number(tps ?? 0),
    ok: Math.round(Number(tps ?? 0) * load.durationS),
    p50: latency ? Number(latency) : undefined, // pgbench reports the mean, not percentiles
    failed,
    statuses: failed > 0 ? { failed } : {},
  };
}

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat, 10 ms ticks). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ: 100 on Linux
}

export function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}
