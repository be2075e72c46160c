/**
 * Starts a server process for a benchmark and times its start-up.
 *
 * Unlike testkit/service-process (which pipes every log line into the test process), the
 * process logs at info into a file, as production logs to a collector: piping would make the
 * load generator's process parse every access-log line and steal CPU from the measurement.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { performance } from "node:perf_hooks";

export interface Launched {
  name: string;
  url: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  /** Spawn → the `{"msg":"listening"}` line. */
  listeningMs: number;
  /** Spawn → the readiness path answering 200. */
  readyMs: number;
  /** Resident set size (VmRSS) when it became ready, in MiB. */
  readyRssMiB: number | undefined;
  /** Peak resident set size (VmHWM) from spawn to ready, in MiB. */
  startupPeakRssMiB: number | undefined;
  /** Peak resident set size since it became ready (VmHWM, reset then), in MiB. */
  peakRssMiB(): number | undefined;
  /** The file-backed part of the resident set now (the node binary, shared libraries), in MiB. */
  fileRssMiB(): number | undefined;
  /** SIGTERM, then SIGKILL after timeoutMs; resolves when the process has exited. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface LaunchOptions {
  name: string;
  /** Arguments to node (the one given to useNode), e.g. [".../dist/index.js"]. */
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** Polled until it answers 200 (default /ready). */
  readyPath?: string;
  timeoutMs?: number;
}

const running = new Set<ChildProcess>();
const POLL_MS = 5;
/** The node binary every server is spawned with (bench/node-runtime.ts; set once by run.ts). */
let nodeBinary = process.execPath;

/** Runs every server launched from now on with this node executable. */
export function useNode(executable: string): void {
  nodeBinary = executable;
}

export async function launch(opts: LaunchOptions): Promise<Launched> {
  const { name, logFile, readyPath = "/ready", timeoutMs = 30_000 } = opts;
  for (const arg of opts.args) {
    if (arg.endsWith(".js") && !existsSync(arg)) {
      throw new Error(`${name} is not built (${arg} is missing): run \`npm run build\` first.`);
    }
  }
  const out = openSync(logFile, "a");
  const start = performance.now();
  const child = spawn(nodeBinary, opts.args, {
    env: opts.env,
    stdio: ["ignore", out, out],
  });
  closeSync(out);
  running.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      running.delete(child);
      resolve();
    });
  });
  const deadline = Date.now() + timeoutMs;
  const fail = (why: string): never => {
    child.kill("SIGKILL");
    throw new Error(`${name} did not start: ${why}\n--- ${logFile} ---\n${tail(logFile)}`);
  };

  let url: string | undefined;
  while (!url) {
    if (child.exitCode !== null || child.signalCode !== null) fail("it exited");
    if (Date.now() > deadline) fail(`no "listening" log line within ${timeoutMs} ms`);
    url = listeningUrl(logFile);
    if (!url) await sleep(POLL_MS);
  }
  const listeningMs = performance.now() - start;
  let last = "";
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) fail("it exited");
    if (Date.now() > deadline) fail(`${readyPath} not 200 within ${timeoutMs} ms (${last})`);
    const status = await getStatus(new URL(readyPath, url)).catch((e: Error) => e.message);
    if (status === 200) break;
    last = String(status);
    await sleep(POLL_MS);
  }
  const readyMs = performance.now() - start;
  const pid = child.pid as number;
  const readyRssMiB = procStatusMiB(pid, "VmRSS");
  // Start-up's own peak is kept apart from the peak under load: the kernel's high-water mark is
  // read now, then reset (clear_refs 5), so VmHWM from here on is what the load costs.
  const startupPeakRssMiB = procStatusMiB(pid, "VmHWM");
  resetPeakRss(pid);

  return {
    name,
    url,
    pid,
    child,
    logFile,
    listeningMs,
    readyMs,
    readyRssMiB,
    startupPeakRssMiB,
    peakRssMiB: () => procStatusMiB(pid, "VmHWM"),
    fileRssMiB: () => procStatusMiB(pid, "RssFile"),
    async stop(stopTimeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Kills whatever is still running (an interrupted or failed run). */
export function killAll(): void {
  for (const child of running) child.kill("SIGKILL");
}

/** Resets VmHWM to the current resident set (Linux's clear_refs, for processes we own). */
function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {
    // not Linux, or not permitted: VmHWM then includes start-up, which the report says
  }
}

/** A memory figure from /proc: VmHWM is the kernel's own high-water mark of the resident set. */
export function procStatusMiB(
  pid: number,
  field: "VmRSS" | "VmHWM" | "RssFile",
): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status)?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function listeningUrl(logFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith("{") || !line.includes('"listening"')) continue;
    try {
      const record = JSON.parse(line) as { msg?: unknown; url?: unknown };
      if (record.msg === "listening" && typeof record.url === "string") return record.url;
    } catch {
      // a partly written line: read again on the next poll
    }
  }
  return undefined;
}

/** A GET without keep-alive, so polling leaves no idle sockets behind. */
export function getStatus(url: URL, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    request.on("error", reject);
  });
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no output)";
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
