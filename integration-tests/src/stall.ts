/**
 * The system under test: chillybin and jafflr as real processes (their built dist/index.js, as
 * production runs them) on ephemeral ports and a fresh database, jafflr's flags from a file of
 * the test's own. Optionally a TcpProxy between jafflr and chillybin, to watch and hurt that link.
 *
 * With JAFFLR_URL and CHILLYBIN_URL set (the pipeline's post-deploy check), tests that only talk
 * HTTP run against those services; tests that start or signal processes skip, saying why.
 */
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { pickV2FlagFile } from "testkit/flags";
import { actClient, arrangeClient } from "testkit/http-client";
import {
  freePort,
  type ServiceProcess,
  type StartServiceOptions,
  startService,
} from "testkit/service-process";
import { TcpProxy } from "testkit/tcp-proxy";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";

export { eventually } from "testkit/eventually";

export const deployed =
  process.env.JAFFLR_URL && process.env.CHILLYBIN_URL
    ? { jafflrUrl: process.env.JAFFLR_URL, chillybinUrl: process.env.CHILLYBIN_URL }
    : undefined;

/** `describe(name, needsOwnProcesses, …)`: skipped, with the reason, against deployed services. */
export const needsOwnProcesses: { skip?: string } = deployed
  ? { skip: "JAFFLR_URL/CHILLYBIN_URL are set: this test starts or signals its own processes" }
  : {};

export type Env = Record<string, string | undefined>;

/** The test's own settings of these kinds must not leak into the services it starts. */
const AMBIENT = /^(UNLEASH_|OTEL_|FLAGS_|CHILLYBIN_|JAFFLR_|GRILL_|COOK_|PG_|SHUTDOWN_)|^VERSION$/;

/** The services' environment: the ambient settings above left out, then the test's own. */
export function serviceEnv(env: Env): Record<string, string> {
  const cleared = Object.keys(process.env).filter((key) => AMBIENT.test(key));
  // An undefined value makes spawn leave the variable out.
  return { ...Object.fromEntries(cleared.map((key) => [key, undefined])), ...env } as Record<
    string,
    string
  >;
}

export interface StallOptions {
  chillybinEnv?: Env;
  /** Added to jafflr's (COOK_TIME_SCALE 0 unless given). */
  jafflrEnv?: Env;
  /** pick.v2 on for exactly these customers; default gita, as in the repo's flag file. */
  v2Customers?: string[];
  /** A TcpProxy between jafflr and chillybin. */
  proxy?: boolean;
  /** A TcpProxy between chillybin and PostgreSQL (close it: the database is gone). */
  pgProxy?: boolean;
}

export type Stall = Awaited<ReturnType<typeof startStall>>;

export async function startStall(options: StallOptions = {}) {
  const db: TestDatabase = await createTestDatabase();
  const started: ServiceProcess[] = [];
  const cleanups: (() => Promise<unknown>)[] = [() => db.drop()];
  const dir = await mkdtemp(path.join(tmpdir(), "stall-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const flagsFile = path.join(dir, "features.json");
  /** Rewrites the flag file (write and rename, never half-written): pick.v2 on for these. */
  const setV2For = async (customers: string[]) => {
    await writeFile(`${flagsFile}.tmp`, JSON.stringify(pickV2FlagFile(customers)));
    await rename(`${flagsFile}.tmp`, flagsFile);
  };
  await setV2For(options.v2Customers ?? ["gita"]);
  const pgUrl = new URL(db.url);
  const pgProxy = options.pgProxy
    ? new TcpProxy({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) })
    : undefined;
  await pgProxy?.open();
  if (pgProxy) {
    cleanups.push(() => pgProxy.close());
    pgUrl.port = String(pgProxy.port);
  }
  // chillybin's port is chosen here: a restart keeps it, as a pod behind its Service does.
  const coldUrl = `http://127.0.0.1:${await freePort()}`;
  const PORT = new URL(coldUrl).port;
  const chillybinEnv = serviceEnv({ DATABASE_URL: pgUrl.href, PORT, ...options.chillybinEnv });
  const start = async (name: "chillybin" | "jafflr", env: Env, o?: StartServiceOptions) => {
    const service = await startService(name, env, o);
    started.push(service);
    return service;
  };
  const proxy = options.proxy ? new TcpProxy(coldUrl) : undefined;
  await proxy?.open();
  if (proxy) cleanups.push(() => proxy.close());
  const pool = new pg.Pool({ connectionString: db.url, max: 3 });
  pool.on("error", () => {}); // the server may go away on purpose
  cleanups.push(() => pool.end());
  const jafflrEnv = (env: Env = {}) =>
    serviceEnv({
      CHILLYBIN_URL: proxy?.url ?? coldUrl,
      FLAGS_FILE: flagsFile,
      FLAGS_POLL_MS: "50",
      COOK_TIME_SCALE: "0",
      ...options.jafflrEnv,
      ...env,
    });
  const stop = async () => {
    const stops = await Promise.allSettled(started.map((s) => s.stop("SIGTERM", 15_000)));
    for (const cleanup of cleanups.reverse()) await cleanup();
    const failed = stops.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    if (failed.length > 0) throw new AggregateError(failed, "a service did not stop cleanly");
  };
  // In turn: a jafflr that finds chillybin down at first says so until its next check.
  let chillybin: ServiceProcess;
  let jafflr: ServiceProcess;
  try {
    chillybin = await start("chillybin", chillybinEnv);
    jafflr = await start("jafflr", jafflrEnv());
  } catch (error) {
    // No stall for the caller's after() to stop: a chillybin left running would hold the test open.
    await stop().catch(() => {});
    throw error;
  }
  const stall = {
    db,
    pool,
    proxy,
    pgProxy,
    flagsFile,
    setV2For,
    get chillybin() {
      return chillybin;
    },
    jafflr,
    /** Arrange (throws unless 2xx) and act clients for both services. */
    cold: arrangeClient(chillybin.url),
    coldAct: actClient(chillybin.url),
    grill: actClient(jafflr.url),
    /** Another jafflr beside the first, e.g. with other settings. */
    startJafflr: (env: Env, o?: StartServiceOptions) => start("jafflr", jafflrEnv(env), o),
    /** chillybin again on the same port and database (a pod restarted behind its Service). */
    async restartChillybin(env: Env = {}) {
      await chillybin.stop();
      chillybin = await start("chillybin", { ...chillybinEnv, ...env });
      return chillybin;
    },
    async stock(): Promise<Record<string, number>> {
      return (await stall.cold.get("/")).body;
    },
    logs: () => started.map((s) => `--- ${s.name} ${s.url}\n${tail(s.logs())}`).join("\n"),
    /** Wraps a test body so that its failure ends with the services' output. */
    withLogs: <A extends unknown[]>(body: (...args: A) => Promise<void>) =>
      withLogs(stall.logs, body),
    stop,
  };
  return stall;
}

/** `body`, whose failure ends with `logs()` (the services' output). */
export const withLogs =
  <A extends unknown[]>(logs: () => string, body: (...args: A) => Promise<void>) =>
  async (...args: A) => {
    try {
      await body(...args);
    } catch (error) {
      if (error instanceof Error) error.message += `\n${logs()}`;
      throw error;
    }
  };

/** The last lines of a log, and every warning or error before them. */
export function tail(text: string, lines = 40): string {
  const all = text.split("\n");
  const trouble = all.slice(0, -lines).filter((l) => /^\[stderr\]|"level":"(warn|error)"/.test(l));
  return [...trouble.slice(-10), ...all.slice(-lines)].join("\n");
}
