/**
 * Starts a service's built entry point with plain `node` (as production does), learns its URL
 * from the `{"msg":"listening","url":…}` log line (tpi logs it; PORT=0 makes it ephemeral) and
 * waits until `/ready` answers 200.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { createInterface } from "node:readline";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

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
  const child = spawn(process.execPath, [entry], {
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  let listeningUrl: ((url: string) => void) | undefined;
  const listening = new Promise<string>((resolve) => {
    listeningUrl = resolve;
  });
  for (const stream of ["stdout", "stderr"] as const) {
    const lines = createInterface({ input: child[stream], crlfDelay: Number.POSITIVE_INFINITY });
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
