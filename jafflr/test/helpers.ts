import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Express } from "express";
import { eventually as waitUntil } from "testkit/eventually";
import { flagOnFor } from "testkit/flags";
import { createLogger, createMetrics, Lifecycle, type Logger, type Metrics } from "tpi";
import { createApp } from "../src/app";
import { ChillybinClient } from "../src/chillybin-client";
import { DEFAULT_FLAGS_FILE } from "../src/config";
import { type Features, startFeatures } from "../src/features";
import { FLAGS, type FlagName } from "../src/flags";
import { Grill, type GrillOptions } from "../src/grill";
import type { ToastieOutcome } from "../src/toastie";

/** A logger whose JSON lines the test can read back. */
export function memoryLogger(level = "debug"): {
  logger: Logger;
  lines: () => Record<string, unknown>[];
} {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      raw.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  const logger = createLogger({
    service: "jafflr-test",
    version: "test",
    level,
    destination,
    pretty: false,
  });
  return { logger, lines: () => raw.map((l) => JSON.parse(l)) };
}

/**
 * A private flag file a test may rewrite, `flag` on for exactly `customers` (by default the
 * repo's `pick.v2`, for gita); `remove()` deletes it.
 */
export function tempFlagFile(
  customers: string[] = ["gita"],
  flag = "pick.v2",
): { file: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "jafflr-flags-"));
  const file = join(dir, "features.json");
  writeFileSync(file, flagFileFor(flag, customers));
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A flag file's text: `flag` on for exactly these customers. */
export function flagFileFor(flag: string, customers: string[]): string {
  return JSON.stringify(flagOnFor(flag, customers));
}

/** testkit's `eventually` for a yes/no `check`: a bounded wait, not a timing assertion. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  await waitUntil(async () => ((await check()) ? true : undefined), {
    timeoutMs,
    intervalMs: 20,
    message: () => `timed out waiting until ${what}`,
  });
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The client's side of the connection: equal ports mean a reused keep-alive connection. */
  remotePort: number | undefined;
}

/**
 * A real HTTP server on an ephemeral port that misbehaves on purpose (refuses, stalls, drops,
 * answers 503): network faults for the client to survive. It records what reached it.
 */
export async function faultServer(
  handle: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void,
): Promise<{ url: string; requests: RecordedRequest[]; close: () => Promise<void> }> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body,
        remotePort: req.socket.remotePort,
      });
      handle(req, res, requests.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port on which nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A stand-in for chillybin on an ephemeral port that answers like a chillybin with endless
 * stock (v2 order ids, v1 picks, /health), recording what reached it: for the tests of jafflr's
 * own behaviour (validation, the grill, the page hook). Behaviour against a real chillybin is in
 * integration-tests/test/jafflr-chillybin.test.ts.
 */
export async function standInChillybin() {
  return faultServer((req, res) => {
    res.setHeader("Content-Type", "application/json");
    if (req.url === "/v2/pick") res.end(JSON.stringify({ id: randomUUID() }));
    else res.end("{}");
  });
}

export interface TestJafflr {
  app: Express;
  grill: Grill;
  client: ChillybinClient;
  features: Features<FlagName>;
  metrics: Metrics;
  lifecycle: Lifecycle;
  logLines: () => Record<string, unknown>[];
  close: () => Promise<void>;
}

/** The real jafflr app (supertest drives it) wired to `chillybinUrl`, flags from `flagsFile`. */
export async function buildJafflr(opts: {
  chillybinUrl: string;
  flagsFile?: string;
  grill?: Partial<GrillOptions>;
  retries?: number;
  timeoutMs?: number;
  onToastie?: (outcome: ToastieOutcome) => void;
}): Promise<TestJafflr> {
  const { logger, lines } = memoryLogger(process.env.TEST_LOG_LEVEL ?? "info");
  const metrics = createMetrics({ service: "jafflr", version: "test" });
  const lifecycle = new Lifecycle();
  const features = await startFeatures({
    flags: FLAGS,
    logger,
    flagsFile: opts.flagsFile ?? DEFAULT_FLAGS_FILE,
    appName: "jafflr-test",
    waitMs: 1000,
    filePollMs: 20,
  });
  const client = new ChillybinClient({
    baseUrl: opts.chillybinUrl,
    connectTimeoutMs: 2_000,
    timeoutMs: opts.timeoutMs ?? 10_000,
    retries: opts.retries ?? 2,
    version: "test",
    registry: metrics.registry,
    logger,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
  });
  const grill = new Grill({ slots: 4, queue: 32, timeScale: 0, ...opts.grill });
  const app = createApp({
    config: { VERSION: "test", CHILLYBIN_URL: opts.chillybinUrl },
    logger,
    metrics,
    lifecycle,
    features,
    chillybin: client,
    grill,
    onToastie: opts.onToastie,
  });
  return {
    app,
    grill,
    client,
    features,
    metrics,
    lifecycle,
    logLines: lines,
    close: async () => {
      await features.close();
      await client.close();
    },
  };
}

/** A Prometheus sample's value from the text format, or undefined when absent. */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string>) {
  const text = await metrics.registry.metrics();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return undefined;
}
