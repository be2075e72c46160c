/**
 * A service as a real process: its built entry point started with plain `node` (as production
 * does), its URL learnt from the `{"msg":"listening","url":…}` log line (tpi logs it; PORT=0 makes
 * it ephemeral), then `/ready` awaited until it answers 200.
 *
 * `launchService` is the bare launcher (`npm start`'s stall uses it); `startService` is what tests
 * use: an ephemeral port, the output kept for failure messages instead of printed, and every
 * service stopped again when the test process ends.
 *
 *   const chillybin = await startService("chillybin", { DATABASE_URL: db.url });
 *   const jafflr = await startService("jafflr", { CHILLYBIN_URL: chillybin.url });
 *   after(stopAll);
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import { constants } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

export { freePort } from "./net";

/** The repository checkout this test kit lives in (scripts/testkit/src → three levels up). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

export type ServiceName = "chillybin" | "jafflr";

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchOptions {
  name: string;
  /** The script node runs, e.g. <repo>/chillybin/dist/index.js. */
  entry: string;
  env: NodeJS.ProcessEnv;
  /** Every line the service writes. */
  onLine: (line: string, stream: "stdout" | "stderr") => void;
  /** Wait for `/ready` to answer 200 (default) or only for the listening line. */
  waitForReady?: boolean;
  timeoutMs?: number;
  /** Own process group, so a terminal's Ctrl-C reaches only the parent, which stops services in order. */
  detached?: boolean;
  /** Aborting kills the half-started service and rejects. */
  signal?: AbortSignal;
}

export interface LaunchedService {
  name: string;
  url: string;
  port: number;
  child: ChildProcess;
  /** Settles when the process has exited. */
  exited: Promise<Exit>;
}

export function serviceEntry(name: ServiceName): string {
  return path.join(REPO_ROOT, name, "dist", "index.js");
}

export async function launchService(options: LaunchOptions): Promise<LaunchedService> {
  const { name, entry, timeoutMs = 30_000 } = options;
  if (!existsSync(entry)) {
    throw new Error(`${name} is not built (${entry} is missing): run \`npm run build\` first.`);
  }
  // An IPC channel: should this process die, even by SIGKILL, the channel closes and tpi starts
  // the service's graceful shutdown on 'disconnect' (issue 10.2: no orphans holding ports). It is
  // unref'd: the channel alone must not keep this process alive.
  const child = spawn(process.execPath, [entry], {
    env: options.env,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    detached: options.detached ?? false,
  });
  child.channel?.unref();
  // "close", not "exit": by then stdout and stderr are drained, so logs() holds the last lines.
  const exited = new Promise<Exit>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  let listeningUrl: ((url: string) => void) | undefined;
  const listening = new Promise<string>((resolve) => {
    listeningUrl = resolve;
  });
  for (const stream of ["stdout", "stderr"] as const) {
    const input = child[stream];
    if (!input) continue; // never: both are pipes above
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on("line", (line) => {
      options.onLine(line, stream);
      const url = listeningUrlOf(line);
      if (url) listeningUrl?.(url);
    });
  }

  const deadline = Date.now() + timeoutMs;
  const failed = (why: string) => new Error(`${name} did not start: ${why}`);
  let phase = "listening";
  const exitedEarly = exited.then((exit) => {
    throw failed(`it exited (${describeExit(exit)}) before it was ${phase}`);
  });
  exitedEarly.catch(() => {});
  try {
    const aborted = abortPromise(options.signal, failed("start-up was cancelled"));
    const url = await Promise.race([
      listening,
      exitedEarly,
      aborted,
      sleep(timeoutMs).then(() => {
        throw failed(`no "listening" log line within ${timeoutMs} ms`);
      }),
    ]);
    if (options.waitForReady ?? true) {
      phase = "ready";
      await Promise.race([waitForReady(url, deadline, name, options.signal), exitedEarly, aborted]);
    }
    return { name, url, port: Number(new URL(url).port), child, exited };
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    throw error;
  }
}

/** The url of tpi's `{"msg":"listening","url":…}` line, if this is it. */
export function listeningUrlOf(line: string): string | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const record = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return record.msg === "listening" && typeof record.url === "string" ? record.url : undefined;
  } catch {
    return undefined;
  }
}

export function describeExit({ code, signal }: Exit): string {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}

async function waitForReady(
  url: string,
  deadline: number,
  name: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  let last = "no answer yet";
  while (!signal?.aborted) {
    try {
      const response = await get(new URL("/ready", url), 2_000);
      if (response.status === 200) return;
      last = `${response.status} ${response.body.slice(0, 300)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${name} did not start: ${url}/ready is not 200 in time (last answer: ${last})`,
      );
    }
    await sleep(100);
  }
}

/** A GET without keep-alive, so polling leaves no sockets that would hold the event loop open. */
export function get(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    request.on("error", reject);
  });
}

function abortPromise(signal: AbortSignal | undefined, error: Error): Promise<never> {
  return new Promise((_, reject) => {
    if (!signal) return;
    if (signal.aborted) reject(error);
    signal.addEventListener("abort", () => reject(error), { once: true });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

// ── tests' services ──────────────────────────────────────────────────────────────────────────

export interface ServiceProcess {
  name: ServiceName;
  /** e.g. http://127.0.0.1:43211 */
  url: string;
  port: number;
  child: ChildProcess;
  /** Settles when the process has exited. */
  exited: Promise<Exit>;
  /** Everything the process wrote so far (stderr lines marked), for assertion messages. */
  logs(): string;
  /** Sends `signal` and waits for the exit; SIGKILLs and throws if it takes longer than timeoutMs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** SIGKILL, no waiting: a crash. */
  kill(): void;
}

export interface StartServiceOptions {
  /** Wait for `/ready` to be 200 (default); false: only for the listening line (e.g. dependency down). */
  waitForReady?: boolean;
  timeoutMs?: number;
}

const MAX_LOG_LINES = 5_000;
const running = new Set<ServiceProcess>();

export async function startService(
  name: ServiceName,
  env: Record<string, string> = {},
  options: StartServiceOptions = {},
): Promise<ServiceProcess> {
  const lines: string[] = [];
  const logs = () => lines.join("\n");
  installGuards();
  let launched: Awaited<ReturnType<typeof launchService>>;
  try {
    launched = await launchService({
      name,
      entry: serviceEntry(name),
      // The listening line is logged at info, so info is the quietest level that works here.
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
      onLine: (line, stream) => {
        lines.push(stream === "stderr" ? `[stderr] ${line}` : line);
        if (lines.length > MAX_LOG_LINES) lines.splice(0, lines.length - MAX_LOG_LINES);
      },
      waitForReady: options.waitForReady,
      timeoutMs: options.timeoutMs,
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- ${name} output ---\n${logs()}`);
  }
  const { child, exited } = launched;
  const service: ServiceProcess = {
    name,
    url: launched.url,
    port: launched.port,
    child,
    exited,
    logs,
    async stop(signal = "SIGTERM", timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const exit = await Promise.race([exited, sleep(timeoutMs).then(() => undefined)]);
      if (exit) return exit;
      child.kill("SIGKILL");
      await exited;
      throw new Error(
        `${name} did not exit within ${timeoutMs} ms of ${signal} and was killed.\n--- ${name} output ---\n${logs()}`,
      );
    },
    kill() {
      child.kill("SIGKILL");
    },
  };
  running.add(service);
  void exited.then(() => running.delete(service));
  return service;
}

/** Stops every service this process started and has not stopped yet; for `after()` hooks. */
export async function stopAll(timeoutMs = 15_000): Promise<void> {
  const results = await Promise.allSettled(
    [...running].map((service) => service.stop("SIGTERM", timeoutMs)),
  );
  const errors = results.flatMap((result) => (result.status === "rejected" ? [result.reason] : []));
  if (errors.length > 0) throw new AggregateError(errors, "some services did not stop cleanly");
}

/** The services still running (tests can assert nothing leaked). */
export function runningServices(): ServiceProcess[] {
  return [...running];
}

let guarded = false;

/** Never leave services behind, even when the test process crashes or is interrupted. */
function installGuards(): void {
  if (guarded) return;
  guarded = true;
  const killAll = () => {
    for (const service of running) service.kill();
  };
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(128 + constants.signals[signal]);
    });
  }
}
