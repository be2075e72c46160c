/**
 * `npm start`: the whole stall on one machine with zero setup.
 *
 * PostgreSQL is DATABASE_URL's when set, otherwise an embedded one whose data lives in .data/pg
 * (git-ignored, kept between runs); then chillybin, then jafflr, each started from its build with
 * plain node and awaited until /ready. Ctrl-C (or SIGTERM) stops them in reverse order, each
 * draining gracefully, then Postgres; a second Ctrl-C makes the services exit at once.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { maskPassword, withDatabase } from "testkit/db-url";
import { commandLine, isAlive, terminate } from "testkit/pids";
import {
  describeExit,
  type LaunchedService,
  launchService,
  REPO_ROOT,
  type ServiceName,
  serviceEntry,
} from "testkit/service-process";
import { ensureDatabase } from "testkit/test-db";
import { EmbeddedDb } from "./embedded-db";
import { reachableDataDir } from "./postgres-files";
import { reaper } from "./reaper";

const DATABASE = "toasties";
const READY_TIMEOUT_MS = 60_000; // the first start runs chillybin's migrations
const STOP_TIMEOUT_MS = 30_000; // a little over the services' own SHUTDOWN_TIMEOUT_MS default (25 s)
const tty = process.stdout.isTTY === true;

const config = {
  embeddedPort: portFromEnv("EMBEDDED_PG_PORT", 5433),
  /** Set explicitly, it is used as given; the default moves if PostgreSQL could not reach it. */
  dataDir: process.env.EMBEDDED_PG_DATA
    ? path.resolve(REPO_ROOT, process.env.EMBEDDED_PG_DATA)
    : undefined,
  chillybinPort: portFromEnv("CHILLYBIN_PORT", 7001),
  jafflrPort: portFromEnv("JAFFLR_PORT", 7000),
};
const DEFAULT_DATA_DIR = path.join(REPO_ROOT, ".data", "pg");

/**
 * Which processes this run owns, so a run after a `kill -9` can clean up the orphans. Beside the
 * data folder (.data/stall.json by default), so a stall on another data folder is another stall.
 */
let STATE_FILE = path.join(path.dirname(config.dataDir ?? DEFAULT_DATA_DIR), "stall.json");

const stopping = new AbortController();
const services: LaunchedService[] = [];

async function main(): Promise<number> {
  let signals = 0;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      signals += 1;
      if (signals === 1) {
        say(`${signal}: shutting down (again to make the services exit at once)`);
        stopping.abort();
      } else {
        for (const service of services) service.child.kill(signal);
      }
    });
  }
  // Services run in their own process groups (so Ctrl-C reaches only us); never leave them behind.
  process.on("exit", () => {
    for (const service of services) service.child.kill("SIGKILL");
  });

  let db: EmbeddedDb | undefined;
  let exitCode = 0;
  try {
    // Run by root in a checkout the postgres user cannot enter (under /root, a mktemp -d folder),
    // the default data folder moves to the staging folder (see postgres-files.ts). A failure
    // here is reported, in one line, by the start of PostgreSQL below.
    const dataDir =
      config.dataDir ??
      (process.env.DATABASE_URL
        ? DEFAULT_DATA_DIR
        : await reachableDataDir(DEFAULT_DATA_DIR, REPO_ROOT).catch(() => DEFAULT_DATA_DIR));
    STATE_FILE = path.join(path.dirname(dataDir), "stall.json");
    await clearLeftovers();
    let databaseUrl = process.env.DATABASE_URL;
    if (databaseUrl) {
      say(`using the PostgreSQL at DATABASE_URL ${maskPassword(databaseUrl)}`);
    } else {
      db = new EmbeddedDb({
        dataDir,
        port: config.embeddedPort,
        log: (message) => say(`postgres: ${message}`),
      });
      say(
        `starting the embedded PostgreSQL on 127.0.0.1:${config.embeddedPort} (data in ${displayPath(dataDir)})`,
      );
      const adminUrl = await db.start();
      if (await ensureDatabase(adminUrl, DATABASE)) say(`created database ${DATABASE}`);
      databaseUrl = withDatabase(adminUrl, DATABASE);
    }
    if (stopping.signal.aborted) return 0;

    const chillybin = await start("chillybin", {
      DATABASE_URL: databaseUrl,
      PORT: String(config.chillybinPort),
    });
    const jafflr = await start("jafflr", {
      CHILLYBIN_URL: chillybin.url,
      PORT: String(config.jafflrPort),
    });
    banner(jafflr.url, chillybin.url, db ? maskPassword(databaseUrl) : undefined);

    const died = await Promise.race([
      new Promise<undefined>((resolve) =>
        stopping.signal.addEventListener("abort", () => resolve(undefined)),
      ),
      ...services.map((service) => service.exited.then((exit) => ({ service, exit }))),
    ]);
    if (died) {
      say(
        `${died.service.name} exited unexpectedly (${describeExit(died.exit)}); stopping the rest.`,
      );
      exitCode = 1;
    }
  } catch (error) {
    if (!stopping.signal.aborted) {
      say(error instanceof Error ? error.message : String(error));
      exitCode = 1;
    }
  } finally {
    exitCode = (await shutdown(db)) ? exitCode : 1;
  }
  say(exitCode === 0 ? "stopped" : "stopped, with errors");
  return exitCode;
}

async function start(name: ServiceName, env: Record<string, string>): Promise<LaunchedService> {
  say(`starting ${name}`);
  const service = await launchService({
    name,
    entry: serviceEntry(name),
    env: { ...process.env, ...env },
    onLine: (line, stream) => output(name, line, stream),
    timeoutMs: READY_TIMEOUT_MS,
    detached: true,
    signal: stopping.signal,
  });
  services.push(service);
  saveState();
  // Killed without a chance to clean up, the stall leaves this to the reaper: the service gets a
  // few seconds to notice (its IPC channel closes) and drain, then SIGTERM, SIGKILL at last.
  const pid = service.child.pid;
  if (pid) {
    reaper().watch({ pid, name, waitMs: 10_000, graceMs: STOP_TIMEOUT_MS });
    void service.exited.then(() => reaper().forget(pid));
  }
  say(`${name} is ready at ${service.url}`);
  return service;
}

/** jafflr first (it calls chillybin), then chillybin, then Postgres. Returns whether all went well. */
async function shutdown(db: EmbeddedDb | undefined): Promise<boolean> {
  let clean = true;
  for (const service of [...services].reverse()) {
    if (service.child.exitCode !== null || service.child.signalCode !== null) continue;
    service.child.kill("SIGTERM");
    const exit = await Promise.race([service.exited, sleep(STOP_TIMEOUT_MS)]);
    if (!exit) {
      say(`${service.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
      service.child.kill("SIGKILL");
      await service.exited;
      clean = false;
    } else if (exit.code !== 0) {
      say(`${service.name} stopped with ${describeExit(exit)}`);
      clean = false;
    }
  }
  if (db?.isRunning) {
    say("stopping the embedded PostgreSQL");
    await db.stop().catch((error: unknown) => {
      say(error instanceof Error ? error.message : String(error));
      clean = false;
    });
  }
  if (readState()?.pid === process.pid) rmSync(STATE_FILE, { force: true });
  return clean;
}

interface StallState {
  pid: number;
  services: Partial<Record<ServiceName, number>>;
}

function readState(): StallState | undefined {
  try {
    return JSON.parse(readFileSync(STATE_FILE, "utf8")) as StallState;
  } catch {
    return undefined;
  }
}

function saveState(): void {
  const state: StallState = { pid: process.pid, services: {} };
  for (const service of services) {
    if (service.child.pid) state.services[service.name as ServiceName] = service.child.pid;
  }
  mkdirSync(path.dirname(STATE_FILE), { recursive: true });
  writeFileSync(STATE_FILE, `${JSON.stringify(state)}\n`);
}

/** Refuses to run twice; stops services orphaned by a run that was killed (they would hold the ports). */
async function clearLeftovers(): Promise<void> {
  const state = readState();
  if (!state) return;
  if (isAlive(state.pid) && commandLine(state.pid).includes("stall.ts")) {
    throw new Error(
      `The stall is already running (pid ${state.pid}). Stop it first (Ctrl-C in its terminal).`,
    );
  }
  for (const [name, pid] of Object.entries(state.services).reverse()) {
    if (pid && isAlive(pid) && commandLine(pid).includes(serviceEntry(name as ServiceName))) {
      say(`${name} (pid ${pid}) from an earlier run that was killed is still running; stopping it`);
      await terminate(pid, STOP_TIMEOUT_MS);
    }
  }
  rmSync(STATE_FILE, { force: true });
}

function banner(jafflr: string, chillybin: string, database: string | undefined): void {
  const examples: [string, string][] = [
    [`curl ${chillybin}/`, "stock levels"],
    [`curl -X POST '${jafflr}/toastie?i=cheese&i=vegemite'`, "a toastie, the original way"],
    [
      `curl -X POST ${jafflr}/toastie -H 'content-type: application/json' -d '{"customer":"gita","ingredients":["cheese","tomato"],"doneness":"medium"}'`,
      "",
    ],
    [`curl -X POST ${chillybin}/restock`, "back to the default stock"],
    [`curl ${jafflr}/health ${chillybin}/ready`, "liveness, readiness"],
    [`curl ${chillybin}/metrics`, "Prometheus metrics"],
  ];
  const width = Math.max(...examples.filter(([, note]) => note).map(([command]) => command.length));
  const lines = [
    "",
    "Toasties Galore is open:",
    `  jafflr     ${jafflr}   the grill: takes toastie orders`,
    `  chillybin  ${chillybin}   the cold store: stock and orders`,
    `  postgres   ${database ?? "the server at DATABASE_URL"}`,
    `  stall page ${jafflr}/   Gita's page: open it in a browser (live grill, cold store, meter)`,
    "",
    "Try:",
    ...examples.map(([command, note]) =>
      note ? `  ${command.padEnd(width)}   # ${note}` : `  ${command}`,
    ),
    "",
    "Ctrl-C stops everything.",
    "",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

const NAME_WIDTH = "chillybin".length;
const COLOURS: Record<string, string> = {
  chillybin: "\x1b[36m",
  jafflr: "\x1b[33m",
  stall: "\x1b[35m",
};

function say(message: string): void {
  output("stall", message, "stdout");
}

/** Each line prefixed with who wrote it; JSON logs made readable when a person is watching. */
function output(name: string, line: string, stream: "stdout" | "stderr"): void {
  const label = name.padEnd(NAME_WIDTH);
  const prefix = tty ? `${COLOURS[name] ?? ""}${label}\x1b[0m │ ` : `${label} | `;
  const text = tty ? readable(line) : line;
  (stream === "stderr" ? process.stderr : process.stdout).write(`${prefix}${text}\n`);
}

const LEVELS: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};
const QUIET_FIELDS = new Set(["level", "time", "msg", "service", "version", "pid", "hostname"]);

function readable(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const record = JSON.parse(line) as Record<string, unknown>;
    const level =
      typeof record.level === "number" ? (LEVELS[record.level] ?? record.level) : record.level;
    const extras = Object.entries(record)
      .filter(([key]) => !QUIET_FIELDS.has(key))
      .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
    return [String(level ?? "").padEnd(5), record.msg ?? "", ...extras].join(" ");
  } catch {
    return line;
  }
}

/** Relative to where `npm start` ran when inside it, else absolute (e.g. the staging folder). */
function displayPath(dir: string): string {
  const relative = path.relative(process.cwd(), dir);
  return relative.startsWith("..") || path.isAbsolute(relative) ? dir : relative || ".";
}

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(
      `Invalid configuration: ${name}: expected a port from 1 to 65535, got ${JSON.stringify(raw)}`,
    );
    process.exit(1);
  }
  return port;
}

function sleep(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
