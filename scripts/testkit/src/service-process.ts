/**
 * A service as a real process: its built entry point started with plain `node` (as production
 * runs it), its URL read from tpi's `{"msg":"listening","url":…}` log line (PORT=0: ephemeral),
 * then `/ready` awaited. `launchService` is the bare launcher (`npm start` uses it);
 * `startService` is the tests' form: output kept for failure messages, stopped with the test.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { createInterface } from "node:readline";

export { freePort } from "./net";

/** The checkout this kit lives in (scripts/testkit/src → three levels up). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
export type ServiceName = "chillybin" | "jafflr";
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}
export interface LaunchOptions {
  name: string;
  entry: string;
  env: NodeJS.ProcessEnv;
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
  /** Settles when the process has exited and its output is drained. */
  exited: Promise<Exit>;
}

export const serviceEntry = (name: ServiceName) => path.join(REPO_ROOT, name, "dist", "index.js");
export const describeExit = ({ code, signal }: Exit) =>
  signal ? `signal ${signal}` : `exit code ${code}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export async function launchService(options: LaunchOptions): Promise<LaunchedService> {
  const { name, entry, timeoutMs = 30_000 } = options;
  if (!existsSync(entry))
    throw new Error(`${name} is not built (${entry} is missing): run \`npm run build\` first.`);
  // An IPC channel: should this process die, even by SIGKILL, the channel closes and tpi drains
  // the service on 'disconnect', so no orphan holds a port. Unref'd: it must not keep us alive.
  const child = spawn(process.execPath, [entry], {
    env: options.env,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    detached: options.detached ?? false,
  });
  child.channel?.unref();
  const exited = new Promise<Exit>((r) =>
    child.once("close", (code, signal) => r({ code, signal })),
  );
  let heard: (url: string) => void = () => {};
  const listening = new Promise<string>((r) => (heard = r));
  for (const stream of ["stdout", "stderr"] as const) {
    createInterface({ input: child[stream] as NodeJS.ReadableStream }).on("line", (line) => {
      options.onLine(line, stream);
      const url =
        /^\{.*"msg":"listening"/.test(line) && (JSON.parse(line) as { url?: unknown }).url;
      if (typeof url === "string") heard(url);
    });
  }
  const deadline = Date.now() + timeoutMs;
  const fail = (why: string) => new Error(`${name} did not start: ${why}`);
  let phase = "listening";
  const died = exited.then((exit) =>
    Promise.reject(fail(`it exited (${describeExit(exit)}) before it was ${phase}`)),
  );
  died.catch(() => {});
  const aborted = new Promise<never>((_, reject) => {
    const abort = () => reject(fail("start-up was cancelled"));
    if (options.signal?.aborted) abort();
    options.signal?.addEventListener("abort", abort, { once: true });
  });
  try {
    const late = sleep(timeoutMs).then(() =>
      Promise.reject(fail(`no "listening" log line within ${timeoutMs} ms`)),
    );
    const url = await Promise.race([listening, died, aborted, late]);
    phase = "ready";
    let last = "no answer yet";
    while (options.waitForReady ?? true) {
      const reply = await Promise.race([
        get(new URL("/ready", url), 2_000).catch((e: Error) => ({ status: 0, body: e.message })),
        died,
        aborted,
      ]);
      if (reply.status === 200) break;
      last = `${reply.status} ${reply.body.slice(0, 300)}`;
      if (Date.now() > deadline)
        throw fail(`${url}/ready is not 200 in time (last answer: ${last})`);
      await sleep(100);
    }
    return { name, url, port: Number(new URL(url).port), child, exited };
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    throw error;
  }
}

/** A GET without keep-alive, so polling leaves no socket holding the event loop open. */
export function get(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    request.on("error", reject);
  });
}

export interface ServiceProcess extends LaunchedService {
  name: ServiceName;
  /** Everything the process wrote so far (stderr lines marked), for assertion messages. */
  logs(): string;
  /** Sends `signal` and waits for the exit; SIGKILLs and throws after timeoutMs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** SIGKILL, no waiting: a crash. */
  kill(): void;
}
export interface StartServiceOptions {
  /** false: wait only for the listening line (e.g. a dependency is down). */
  waitForReady?: boolean;
  timeoutMs?: number;
}

const running = new Set<ServiceProcess>();
process.once("exit", () => {
  for (const service of running) service.kill();
});

export async function startService(
  name: ServiceName,
  env: Record<string, string | undefined> = {},
  options: StartServiceOptions = {},
): Promise<ServiceProcess> {
  const lines: string[] = [];
  const logs = () => lines.join("\n");
  const launched = await launchService({
    name,
    entry: serviceEntry(name),
    // The listening line is logged at info, so info is the quietest level that works here.
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    onLine: (line, stream) => {
      lines.push(stream === "stderr" ? `[stderr] ${line}` : line);
      if (lines.length > 5_000) lines.shift();
    },
    ...options,
  }).catch((error: Error) => {
    throw new Error(`${error.message}\n--- ${name} output ---\n${logs()}`);
  });
  const { child, exited } = launched;
  const service: ServiceProcess = {
    ...launched,
    name,
    logs,
    async stop(signal = "SIGTERM", timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const exit = await Promise.race([exited, sleep(timeoutMs)]);
      if (exit) return exit;
      child.kill("SIGKILL");
      await exited;
      throw new Error(
        `${name} did not exit within ${timeoutMs} ms of ${signal}.\n--- ${name} output ---\n${logs()}`,
      );
    },
    kill: () => child.kill("SIGKILL"),
  };
  running.add(service);
  void exited.then(() => running.delete(service));
  return service;
}

/** Stops every service this process started and has not stopped yet; for `after()` hooks. */
export async function stopAll(timeoutMs = 15_000): Promise<void> {
  const results = await Promise.allSettled([...running].map((s) => s.stop("SIGTERM", timeoutMs)));
  const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  if (errors.length > 0) throw new AggregateError(errors, "some services did not stop cleanly");
}
