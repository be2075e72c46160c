import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { eventually as waitUntil } from "testkit/eventually";
import { flagOnFor } from "testkit/flags";
import { createLogger, createMetrics, Lifecycle, type Metrics } from "tpi";
import { createApp } from "../src/app";
import { ChillybinClient } from "../src/chillybin-client";
import { DEFAULT_FLAGS_FILE } from "../src/config";
import { startFeatures } from "../src/features";
import { FLAGS } from "../src/flags";
import { Grill, type GrillOptions } from "../src/grill";
import type { Picked } from "../src/pick-v2";
import type { ToastieOutcome } from "../src/toastie";

/** A logger whose JSON lines the test can read back. */
export function memoryLogger(level = "debug") {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      raw.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  const logger = createLogger({
    service: "test",
    version: "test",
    level,
    destination,
    pretty: false,
  });
  return { logger, lines: (): Record<string, unknown>[] => raw.map((l) => JSON.parse(l)) };
}

/** A flag file's text: `flag` on for exactly these customers. */
export const flagFileFor = (flag: string, customers: string[]) =>
  JSON.stringify(flagOnFor(flag, customers));

/** A private flag file a test may rewrite, `flag` (pick.v2) on for exactly `customers`. */
export function tempFlagFile(customers = ["gita"], flag = "pick.v2") {
  const dir = mkdtempSync(join(tmpdir(), "jafflr-flags-"));
  const file = join(dir, "features.json");
  writeFileSync(file, flagFileFor(flag, customers));
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Flag settings for a test: the file's flags, re-read every 20 ms, or Unleash's at `url`. */
export const flagConfig = (file: string, url?: string) => ({
  ...{ FLAGS_FILE: file, FLAGS_WAIT_MS: 300, FLAGS_POLL_MS: 20, UNLEASH_URL: url },
  ...{ UNLEASH_APP_NAME: "jafflr-test", UNLEASH_REFRESH_MS: 100, UNLEASH_API_TOKEN: "t" },
});

/** A bounded wait until `check` holds, not a timing assertion. */
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

/** A real HTTP server on an ephemeral port that may misbehave on purpose; records what reached it. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

export async function faultServer(handle: Handler) {
  type Recorded = { method: string; url: string; body: string; remotePort?: number };
  const requests: (Recorded & { headers: http.IncomingHttpHeaders })[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const { method = "", url = "", headers } = req;
      requests.push({ method, url, headers, body, remotePort: req.socket.remotePort });
      handle(req, res, requests.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
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
  const { url, close } = await faultServer(() => {});
  await close();
  return Number(new URL(url).port);
}

/**
 * An HTTP stand-in for chillybin with endless stock (v2 order ids, v1 picks, /health) whose GET /
 * answers `stock`, for jafflr's own behaviour (validation, the grill, the page). Real chillybin:
 * integration-tests/test/jafflr-chillybin.test.ts.
 */
export function standInChillybin(stock = {}) {
  return faultServer((req, res) => {
    const body = req.url === "/v2/pick" ? { id: randomUUID() } : req.url === "/" ? stock : {};
    res.setHeader("Content-Type", "application/json").end(JSON.stringify(body));
  });
}

export type TestJafflr = Awaited<ReturnType<typeof buildJafflr>>;

/** The real jafflr app (supertest drives it) wired to `chillybinUrl`, flags from `flagsFile`. */
export async function buildJafflr(opts: {
  chillybinUrl: string;
  flagsFile?: string;
  grill?: Partial<GrillOptions>;
  timeoutMs?: number;
  onToastie?: (outcome: ToastieOutcome) => void;
}) {
  const { logger, lines } = memoryLogger(process.env.TEST_LOG_LEVEL ?? "info");
  const metrics = createMetrics({ service: "jafflr", version: "test" });
  const lifecycle = new Lifecycle();
  const flagsFile = opts.flagsFile ?? DEFAULT_FLAGS_FILE;
  const features = await startFeatures(FLAGS, flagConfig(flagsFile), logger);
  const client = testClient(opts.chillybinUrl, opts.timeoutMs ?? 10_000, metrics.registry, logger);
  const grill = new Grill({ GRILL_SLOTS: 4, GRILL_QUEUE: 32, COOK_TIME_SCALE: 0, ...opts.grill });
  const config = { VERSION: "test", CHILLYBIN_URL: opts.chillybinUrl };
  const deps = { config, logger, metrics, lifecycle, features, chillybin: client, grill };
  const app = createApp({ ...deps, onToastie: opts.onToastie });
  const close = async () => {
    await features.close();
    await client.close();
  };
  return { app, grill, client, features, metrics, lifecycle, logLines: lines, close };
}

/** The arm as tests use it: 2 retries after 5-20 ms, a /health check every 50 ms once started. */
export function testClient(
  url: string,
  timeoutMs = 200,
  registry = createMetrics({ service: "jafflr", version: "test" }).registry,
  logger = memoryLogger().logger,
) {
  const config = { VERSION: "9.9.9", CHILLYBIN_URL: url, CHILLYBIN_RETRIES: 2 };
  const timeouts = { CHILLYBIN_CONNECT_TIMEOUT_MS: 1_000, CHILLYBIN_TIMEOUT_MS: timeoutMs };
  return new ChillybinClient(
    { ...config, ...timeouts, CHILLYBIN_CHECK_MS: 50 },
    { registry, logger, backoffMs: [5, 20] },
  );
}

/** A Prometheus sample's value, or undefined when absent. */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string>) {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) =>
    [m.name, `${m.name}_count`].includes(name),
  );
  const sample = (metric?.values ?? []).find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? metric?.name) === name &&
      Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
  );
  return sample?.value;
}

/** The arm against a server answering with `handle`; `picked` and what reached the server. */
export async function pickAgainst(
  handle: Handler | "refused",
  pick: (c: ChillybinClient, order: typeof ORDER) => Promise<Picked>,
  order = ORDER,
) {
  const s = handle === "refused" ? undefined : await faultServer(handle);
  const url = s?.url ?? `http://127.0.0.1:${await closedPort()}`;
  const c = testClient(url);
  const picked = await pick(c, order).finally(() => Promise.all([c.close(), s?.close()]));
  return { picked, requests: s?.requests ?? [] };
}

export const ORDER = {
  customer: "gita",
  ingredients: ["cheese", "bread", "bread"],
  idempotencyKey: "k-1",
};

/** A (problem+)JSON answer. */
export const json =
  (status: number, body: unknown, headers: Record<string, string> = {}) =>
  (_req: http.IncomingMessage, res: http.ServerResponse) =>
    res
      .writeHead(status, { "Content-Type": "application/problem+json", ...headers })
      .end(JSON.stringify(body));
