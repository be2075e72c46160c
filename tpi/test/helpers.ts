import { spawn } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../src/index";

export function silentLogger(): Logger {
  return createLogger({ service: "test", version: "0", level: "silent" });
}

/** A logger whose JSON lines the test can read back. */
export function capturingLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ service: "test", version: "1.2.3", level: "debug", destination });
  return {
    logger,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

/** A GET that never throws: resolves with the status, or the network error code. */
export function get(
  url: string,
  agent?: http.Agent,
  headers: Record<string, string> = {},
): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http
      .get(url, { agent, headers, timeout: 10_000 }, (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode, body }));
      })
      .on("error", (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
  });
}

const fixture = join(__dirname, "fixtures", "server.ts");

export function startFixture(env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", fixture], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c) => {
    out += c;
  });
  child.stderr.on("data", (c) => {
    out += c;
  });
  // "close", not "exit": by then the output pipes are drained, so output() is complete.
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  const url = new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = out.match(/"url":"(http:[^"]+)","msg":"listening"/);
      if (m?.[1]) {
        clearInterval(timer);
        resolve(m[1]);
      }
    }, 20);
    child.once("exit", () => {
      clearInterval(timer);
      reject(new Error(`fixture exited early:\n${out}`));
    });
  });
  return { child, url, exited, output: () => out };
}
