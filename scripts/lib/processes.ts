/**
 * Real service processes for the integration and reliability suites: the built output started with
 * plain `node` on an ephemeral port, its output kept for failure messages instead of printed.
 *
 *   const chillybin = await startService("chillybin", { DATABASE_URL: db.url });
 *   const jafflr = await startService("jafflr", { CHILLYBIN_URL: chillybin.url });
 *   after(stopAll);
 */
import type { ChildProcess } from "node:child_process";
import { constants } from "node:os";
import {
  describeExit,
  type Exit,
  launchService,
  type ServiceName,
  serviceEntry,
} from "./service-process";

export { freePort } from "./net";
export { type Exit, get, listeningUrlOf, REPO_ROOT, type ServiceName } from "./service-process";

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
      const exit = await Promise.race([exited, sleep(timeoutMs)]);
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

export { describeExit };

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

function sleep(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}
