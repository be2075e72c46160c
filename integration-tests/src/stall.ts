/**
 * The system under test: chillybin and jafflr as real processes (their built `dist/index.js`, as
 * production runs them) on ephemeral ports, against a fresh database of their own.
 *
 * With JAFFLR_URL and CHILLYBIN_URL set (the deploy pipeline's post-deploy check), tests that only
 * talk HTTP run against those deployed services instead; tests that must start, stop or signal
 * processes are skipped in that mode only, saying why (`needsOwnProcesses`).
 */

import { actClient, arrangeClient, type Client } from "testkit/http-client";
import {
  type ServiceProcess,
  type StartServiceOptions,
  startService,
} from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";

// The test kit's one `eventually`, also importable from here beside the stall it waits on.
export { eventually } from "testkit/eventually";

export interface Deployed {
  jafflrUrl: string;
  chillybinUrl: string;
  /** For POST /restock when the deployed chillybin requires it. */
  adminToken?: string;
}

/** The deployed services to check, when JAFFLR_URL and CHILLYBIN_URL are both set. */
export const deployed: Deployed | undefined =
  process.env.JAFFLR_URL && process.env.CHILLYBIN_URL
    ? {
        jafflrUrl: process.env.JAFFLR_URL,
        chillybinUrl: process.env.CHILLYBIN_URL,
        adminToken: process.env.CHILLYBIN_ADMIN_TOKEN || undefined,
      }
    : undefined;

/** `describe(name, needsOwnProcesses, …)`: skipped, with the reason, only against deployed services. */
export const needsOwnProcesses: { skip?: string } = deployed
  ? {
      skip: "JAFFLR_URL/CHILLYBIN_URL are set: this test starts, stops or signals its own processes, which a deployed system does not allow",
    }
  : {};

export type Env = Record<string, string | undefined>;

/**
 * Settings from the test's own environment that must not leak into the services it starts
 * (HOST and PORT are startService's own).
 */
const AMBIENT =
  /^(UNLEASH_|OTEL_|FLAGS_|CHILLYBIN_|JAFFLR_|GRILL_|COOK_|PG_|MIGRATE_|SHUTDOWN_)|^VERSION$/;

/**
 * The services' environment: the ambient variables above removed (an `undefined` value makes
 * spawn leave the variable out), then the test's own settings.
 */
export function serviceEnv(env: Env): Record<string, string> {
  const cleared = Object.fromEntries(
    Object.keys(process.env)
      .filter((key) => AMBIENT.test(key))
      .map((key) => [key, undefined]),
  );
  return { ...cleared, ...env } as Record<string, string>;
}

export interface Stall {
  db: TestDatabase;
  chillybin: ServiceProcess;
  jafflr: ServiceProcess;
  /** Arrange/act clients for both services. */
  jafflrArrange: Client;
  jafflrAct: Client;
  chillybinArrange: Client;
  chillybinAct: Client;
  /**
   * Starts chillybin again (stopping it first if it runs) on the same port and database, so
   * jafflr's CHILLYBIN_URL and these clients stay valid, as with a pod restarted behind a Service.
   */
  restartChillybin(): Promise<ServiceProcess>;
  /** Both services' output, for assertion messages. */
  logs(): string;
  /** Stops both services and drops the database. */
  stop(): Promise<void>;
}

export interface StallOptions {
  chillybinEnv?: Env;
  /**
   * Added to jafflr's environment (CHILLYBIN_URL is set here; COOK_TIME_SCALE defaults to 0).
   * A promise is awaited while chillybin starts, e.g. a flag server jafflr needs from the start.
   */
  jafflrEnv?: Env | Promise<Env>;
  jafflrStart?: StartServiceOptions;
}

export async function startStall(options: StallOptions = {}): Promise<Stall> {
  const db = await createTestDatabase();
  const started: ServiceProcess[] = [];
  const chillybinEnv = serviceEnv({ DATABASE_URL: db.url, ...options.chillybinEnv });
  try {
    const chillybinStarted = startService("chillybin", chillybinEnv).then((service) => {
      started.push(service);
      return service;
    });
    const [chillybinResult, jafflrEnvResult] = await Promise.allSettled([
      chillybinStarted,
      options.jafflrEnv,
    ]);
    if (chillybinResult.status === "rejected") throw chillybinResult.reason;
    if (jafflrEnvResult.status === "rejected") throw jafflrEnvResult.reason;
    let chillybin = chillybinResult.value;
    const jafflr = await startService(
      "jafflr",
      serviceEnv({ CHILLYBIN_URL: chillybin.url, COOK_TIME_SCALE: "0", ...jafflrEnvResult.value }),
      options.jafflrStart,
    );
    started.push(jafflr);
    const stall: Stall = {
      db,
      get chillybin() {
        return chillybin;
      },
      jafflr,
      jafflrArrange: arrangeClient(jafflr.url),
      jafflrAct: actClient(jafflr.url),
      chillybinArrange: arrangeClient(chillybin.url),
      chillybinAct: actClient(chillybin.url),
      async restartChillybin() {
        if (chillybin.child.exitCode === null && chillybin.child.signalCode === null) {
          await chillybin.stop();
        }
        chillybin = await startService("chillybin", {
          ...chillybinEnv,
          PORT: String(chillybin.port),
        });
        started.push(chillybin);
        return chillybin;
      },
      logs: () => started.map((s) => `--- ${s.name} (${s.url}) ---\n${tail(s.logs())}`).join("\n"),
      async stop() {
        const results = await Promise.allSettled(started.map((s) => s.stop("SIGTERM", 15_000)));
        await db.drop();
        const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
        if (failures.length > 0)
          throw new AggregateError(failures, "a service did not stop cleanly");
      },
    };
    return stall;
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.stop("SIGKILL", 5_000)));
    await db.drop();
    throw error;
  }
}

/** The last lines of a log, enough to explain a failure without drowning it. */
export function tail(text: string, lines = 60): string {
  return text.split("\n").slice(-lines).join("\n");
}
