import { spawn } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { createLogger } from "../src/index";

/** A logger whose JSON lines the test can read back. */
export function capturingLogger() {
  const written: string[] = [];
  const destination = { write: (line: string) => written.push(line) };
  const logger = createLogger({ service: "test", version: "1.2.3", level: "debug", destination });
  const lines = (): Record<string, unknown>[] => written.map((line) => JSON.parse(line));
  return { logger, lines };
}

/** A GET that never throws: resolves with the status and body, or the network error code. */
export function get(url: string, agent?: http.Agent, headers: Record<string, string> = {}) {
  const options = { agent, headers, signal: AbortSignal.timeout(10_000) };
  return new Promise<{ status?: number; body?: string; error?: string }>((resolve) => {
    const answered = (res: http.IncomingMessage) =>
      text(res).then((body) => resolve({ status: res.statusCode, body }));
    const failed = (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message });
    http.get(url, options, answered).on("error", failed);
  });
}

/** Polls until `check` holds: never a fixed sleep. */
export async function until(check: () => unknown, what: string, timeoutMs = 10_000) {
  for (const deadline = Date.now() + timeoutMs; !(await check()); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A real service process (fixtures/server.ts, or another fixture), with its output. */
export function startFixture(env: Record<string, string> = {}, fixture = "server.ts") {
  const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "fixtures", fixture)], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c) => (out += c));
  child.stderr.on("data", (c) => (out += c));
  // "close", not "exit": by then the output pipes are drained.
  const exited = new Promise<number | null>((r) => child.once("close", r));
  const output = () => out;
  const listening = () => /"url":"(http:[^"]+)","msg":"listening"/.exec(out)?.[1];
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const url = until(() => listening() || gone(), "it listens", 60_000).then(
    () => listening() ?? Promise.reject(new Error(`exited before listening:\n${out}`)),
  );
  url.catch(() => {}); // a fixture meant not to start is awaited through `exited`
  return { child, url, exited, output };
}
