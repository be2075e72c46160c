/**
 * A service as a real process: its built entry point run by plain `node` (as production runs it),
 * its URL read from tpi's "listening" log line (PORT=0: ephemeral), then `/ready` awaited.
 * `launchService` is the bare launcher (`npm start` uses it); `startService` is the tests' form:
 * output kept for failure messages, every service stopped when the test process ends.
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
export type Exit = { code: number | null; signal: NodeJS.Signals | null };
/** waitForReady false: the listening line is enough (e.g. a dependency is down). */
export type StartServiceOptions = { waitForReady?: boolean; timeoutMs?: number };
export type LaunchOptions = StartServiceOptions & {
  name: string;
  entry: string;
  env: NodeJS.ProcessEnv;
  onLine: (line: string, stream: "stdout" | "stderr") => void;
  /** Own process group: a terminal's Ctrl-C reaches only the parent, which stops services in order. */
  detached?: boolean;
  /** Aborting kills the half-started service. */
  signal?: AbortSignal;
};
/** `exited` settles when the process has exited and its output is drained. */
export type LaunchedService = { name: string; url: string; port: number } & {
  child: ChildProcess;
  exited: Promise<Exit>;
};

export const serviceEntry = (name: ServiceName) => path.join(REPO_ROOT, name, "dist", "index.js");
export const describeExit = ({ code, signal }: Exit) =>
  signal ? `signal ${signal}` : `exit code ${code}`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
const listeningUrl = (line: string): string | undefined =>
  line.includes('"msg":"listening"') ? JSON.parse(line).url : undefined;

export async function launchService(o: LaunchOptions): Promise<LaunchedService> {
  if (!existsSync(o.entry))
    throw new Error(`${o.name} is not built (no ${o.entry}): run \`npm run build\`.`);
  // An IPC channel: should this process die, even by SIGKILL, the channel closes and tpi drains
  // the service on 'disconnect', so no orphan holds a port. Unref'd: it must not keep us alive.
  const child = spawn(process.execPath, [o.entry], {
    env: o.env,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    detached: o.detached,
  });
  child.channel?.unref();
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) =>
    child.once("close", (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  let url: string | undefined;
  for (const stream of ["stdout", "stderr"] as const) {
    createInterface({ input: child[stream] as NodeJS.ReadableStream }).on("line", (line) => {
      o.onLine(line, stream);
      url ??= listeningUrl(line);
    });
  }
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let last = "no answer yet";
  try {
    for (;;) {
      const state = url ? "ready" : "listening";
      if (exit) throw new Error(`it exited (${describeExit(exit)}) before it was ${state}`);
      if (o.signal?.aborted) throw new Error("start-up was cancelled");
      if (Date.now() > deadline)
        throw new Error(`not ${state} within ${o.timeoutMs ?? 60_000} ms (${last})`);
      if (url && o.waitForReady === false) break;
      if (url) {
        const failed = (e: Error) => ({ status: 0, body: e.message });
        const ready = await get(new URL("/ready", url), 2_000).catch(failed);
        if (ready.status === 200) break;
        last = `/ready: ${ready.status} ${ready.body.slice(0, 300)}`;
      }
      await sleep(url ? 100 : 20);
    }
  } catch (error) {
    if (!exit) child.kill("SIGKILL");
    await exited;
    throw new Error(`${o.name} did not start: ${(error as Error).message}`);
  }
  return {
    name: o.name,
    url: url as string,
    port: Number(new URL(url as string).port),
    child,
    exited,
  };
}

/** A GET without keep-alive, so polling leaves no socket holding the event loop open. */
export function get(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      response
        .on("end", () => resolve({ status: response.statusCode ?? 0, body }))
        .on("error", reject);
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
  const onLine = (line: string, stream: string) => {
    lines.push(stream === "stderr" ? `[stderr] ${line}` : line);
    if (lines.length > 5_000) lines.shift();
  };
  // The listening line is logged at info, so info is the quietest level that works here.
  const base = { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info" };
  const launched = await launchService({
    name,
    entry: serviceEntry(name),
    env: { ...process.env, ...base, ...env },
    onLine,
    ...options,
  }).catch((error: Error) =>
    Promise.reject(new Error(`${error.message}\n--- ${name} output ---\n${logs()}`)),
  );
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
      throw new Error(`${name} did not exit within ${timeoutMs} ms of ${signal}.\n${logs()}`);
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
