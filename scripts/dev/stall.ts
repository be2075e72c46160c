/**
 * `npm start`: the whole stall on one machine with zero setup.
 *
 * PostgreSQL is DATABASE_URL's when set, otherwise an embedded one whose data is kept between runs
 * (.data/pg); then chillybin, then jafflr, each started from its build with plain node and awaited
 * until /ready. Ctrl-C (or SIGTERM) stops them in reverse order, each draining gracefully, then
 * PostgreSQL; a second Ctrl-C makes the services exit at once.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { prettyFactory } from "pino-pretty";
import {
  describeExit,
  type LaunchedService,
  launchService,
  REPO_ROOT,
  type ServiceName,
  serviceEntry,
} from "testkit/service-process";
import { ensureDatabase } from "testkit/test-db";
import { commandLine, defaultDataDir, EmbeddedDb, maskPassword } from "./embedded-db";

const STOP_TIMEOUT_MS = 30_000; // a little over the services' SHUTDOWN_TIMEOUT_MS default (25 s)
const NO_REF = { ref: false };
const tty = process.stdout.isTTY === true;
const pretty = prettyFactory({
  colorize: tty,
  singleLine: true,
  translateTime: "SYS:HH:MM:ss.l",
  ignore: "pid,hostname,service,version",
});
const stopping = new AbortController();
const services: LaunchedService[] = [];

function port(name: string, fallback: number): number {
  const raw = process.env[name] || String(fallback);
  const value = Number(raw);
  if (Number.isInteger(value) && value >= 1 && value <= 65535) return value;
  console.error(`Invalid configuration: ${name}: expected a port from 1 to 65535, got "${raw}"`);
  process.exit(1);
}
const pgPort = port("EMBEDDED_PG_PORT", 5433);
const ports = { chillybin: port("CHILLYBIN_PORT", 7001), jafflr: port("JAFFLR_PORT", 7000) };

/** Each line prefixed with who wrote it; JSON logs made readable when a person is watching. */
function output(name: string, line: string, stream: "stdout" | "stderr" = "stdout"): void {
  const colour = { chillybin: "\x1b[36m", jafflr: "\x1b[33m" }[name] ?? "\x1b[35m";
  const label = name.padEnd(9);
  const prefix = tty ? `${colour}${label}\x1b[0m │ ` : `${label} | `;
  const text = tty && line.startsWith("{") ? pretty(line).trimEnd() : line;
  (stream === "stderr" ? process.stderr : process.stdout).write(`${prefix}${text}\n`);
}
const say = (message: string) => output("stall", message);

async function main(): Promise<number> {
  let signals = 0;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (++signals > 1) for (const service of services) service.child.kill(signal);
      else say(`${signal}: shutting down (again to make the services exit at once)`);
      stopping.abort();
    });
  }
  // Services run in their own process groups (so Ctrl-C reaches only us); never leave them behind.
  process.on("exit", () => {
    for (const service of services) service.child.kill("SIGKILL");
  });
  const given = process.env.EMBEDDED_PG_DATA;
  const dataDir = given ? path.resolve(REPO_ROOT, given) : await defaultDataDir(REPO_ROOT);
  // Which processes this run owns (integration-tests read it), so a second run refuses to start.
  const stateFile = path.join(path.dirname(dataDir), "stall.json");
  const { pid } = existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, "utf8")) : { pid: 0 };
  if (pid && commandLine(pid).includes("stall.ts")) {
    say(`The stall is already running (pid ${pid}). Stop it first (Ctrl-C in its terminal).`);
    return 1;
  }
  let db: EmbeddedDb | undefined;
  let exitCode = 0;
  try {
    let databaseUrl = process.env.DATABASE_URL;
    if (databaseUrl) {
      say(`using the PostgreSQL at DATABASE_URL ${maskPassword(databaseUrl)}`);
    } else {
      db = new EmbeddedDb({ dataDir, port: pgPort, log: (m) => say(`postgres: ${m}`) });
      say(`starting the embedded PostgreSQL on 127.0.0.1:${pgPort} (data in ${dataDir})`);
      const adminUrl = await db.start();
      if (await ensureDatabase(adminUrl, "toasties")) say("created database toasties");
      databaseUrl = adminUrl.replace(/\/postgres$/, "/toasties");
    }
    const env = { DATABASE_URL: databaseUrl, PORT: String(ports.chillybin) };
    const chillybin = await start("chillybin", env, db);
    await start("jafflr", { CHILLYBIN_URL: chillybin.url, PORT: String(ports.jafflr) }, db);
    const pids = Object.fromEntries(services.map((s) => [s.name, s.child.pid]));
    mkdirSync(path.dirname(stateFile), { recursive: true });
    writeFileSync(stateFile, `${JSON.stringify({ pid: process.pid, services: pids })}\n`);
    banner(services[1]?.url ?? "", chillybin.url, db ? maskPassword(databaseUrl) : undefined);
    const aborted = new Promise<void>((r) => stopping.signal.addEventListener("abort", () => r()));
    const died = await Promise.race([
      aborted,
      ...services.map((service) => service.exited.then((exit) => ({ service, exit }))),
    ]);
    if (died) {
      say(`${died.service.name} exited unexpectedly (${describeExit(died.exit)}); stopping.`);
      exitCode = 1;
    }
  } catch (error) {
    if (!stopping.signal.aborted) {
      say(error instanceof Error ? error.message : String(error));
      exitCode = 1;
    }
  }
  if (!(await shutdown(db))) exitCode = 1;
  rmSync(stateFile, { force: true });
  say(exitCode === 0 ? "stopped" : "stopped, with errors");
  return exitCode;
}

async function start(name: ServiceName, env: Record<string, string>, db?: EmbeddedDb) {
  say(`starting ${name}`);
  const service = await launchService({
    name,
    entry: serviceEntry(name),
    env: { ...process.env, ...env },
    onLine: (line, stream) => output(name, line, stream),
    timeoutMs: 60_000, // the first start runs chillybin's migrations
    detached: true,
    signal: stopping.signal,
  });
  services.push(service);
  // Killed outright, the stall leaves the services to stop by themselves (their IPC channel
  // closes) and PostgreSQL to the reaper, which waits for them first.
  if (service.child.pid) db?.reapAfter(service.child.pid);
  say(`${name} is ready at ${service.url}`);
  return service;
}

/** jafflr first (it calls chillybin), then chillybin, then PostgreSQL. Whether all went well. */
async function shutdown(db: EmbeddedDb | undefined): Promise<boolean> {
  let clean = true;
  for (const service of [...services].reverse()) {
    if (service.child.exitCode !== null || service.child.signalCode !== null) continue;
    service.child.kill("SIGTERM");
    const exit = await Promise.race([service.exited, sleep(STOP_TIMEOUT_MS, undefined, NO_REF)]);
    if (!exit) {
      say(`${service.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
      service.child.kill("SIGKILL");
      await service.exited;
    } else if (exit.code !== 0) say(`${service.name} stopped with ${describeExit(exit)}`);
    clean &&= exit?.code === 0;
  }
  if (db?.isRunning) {
    say("stopping the embedded PostgreSQL");
    await db.stop().catch((error: unknown) => {
      say(error instanceof Error ? error.message : String(error));
      clean = false;
    });
  }
  return clean;
}

function banner(jafflr: string, chillybin: string, database: string | undefined): void {
  const order = `'{"customer":"gita","ingredients":["cheese","tomato"],"doneness":"medium"}'`;
  process.stdout.write(`
Toasties Galore is open:
  jafflr     ${jafflr}   the grill: takes toastie orders
  chillybin  ${chillybin}   the cold store: stock and orders
  postgres   ${database ?? "the server at DATABASE_URL"}
  stall page ${jafflr}/   Gita's page: open it in a browser (live grill, cold store, meter)

Try:
  curl ${chillybin}/                                   # stock levels
  curl -X POST '${jafflr}/toastie?i=cheese&i=vegemite'   # a toastie, the original way
  curl -X POST ${jafflr}/toastie -H 'content-type: application/json' -d ${order}
  curl -X POST ${chillybin}/restock                    # back to the default stock
  curl ${jafflr}/health ${chillybin}/ready ${chillybin}/metrics   # liveness, readiness, metrics
  npm run traffic                                      # a steady stream of customers to watch

Ctrl-C stops everything.

`);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
