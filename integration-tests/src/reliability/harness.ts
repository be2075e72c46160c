/**
 * What every reliability test file sets up and must take down again: fresh databases, real
 * service processes (built output), pg pools, temporary flag files, proxies. Everything is
 * registered as it is created and torn down in reverse order by `cleanup()` (the file's
 * `after()`), so a failing test leaves nothing behind.
 *
 *   const h = new Harness();
 *   after(() => h.cleanup());
 *   test("…", h.withLogs(async () => { … }));   // failures carry the services' output
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { eventually } from "testkit/eventually";
import { userIdStrategy } from "testkit/flags";
import {
  REPO_ROOT,
  type ServiceName,
  type ServiceProcess,
  type StartServiceOptions,
  startService,
} from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { type Env, serviceEnv, tail } from "../stall";

const REPO_FLAGS = path.join(REPO_ROOT, "jafflr", "flags", "features.json");

export class Harness {
  private readonly cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  private readonly started: ServiceProcess[] = [];

  /** A fresh database on the server `npm test` provides (or on `adminUrl`), dropped at clean-up. */
  async database(adminUrl?: string): Promise<TestDatabase> {
    const db = await createTestDatabase(adminUrl);
    this.defer(`drop database ${db.name}`, () => db.drop());
    return db;
  }

  /**
   * Starts a service's built output on an ephemeral port (unless env sets PORT) with only the
   * given settings (the test's own UNLEASH_*, CHILLYBIN_… variables are not passed on).
   */
  async start(name: ServiceName, env: Env, options?: StartServiceOptions): Promise<ServiceProcess> {
    const service = await startService(name, serviceEnv(env), options);
    this.started.push(service);
    this.defer(`stop ${name} ${service.url}`, () => service.stop("SIGTERM", 15_000));
    return service;
  }

  /** A small pg pool on `url`, for reading what the database really holds. */
  pool(url: string): pg.Pool {
    const pool = new pg.Pool({ connectionString: url, max: 3, connectionTimeoutMillis: 10_000 });
    pool.on("error", () => {}); // the server may go away on purpose (dependency faults)
    this.defer("close pg pool", () => pool.end());
    return pool;
  }

  /**
   * A private copy of jafflr's flag file with `pick.v2` on for exactly these customers, so a
   * test knows which toasties go through v2 whatever the repo's file says.
   */
  async flagFile(v2Customers: string[]): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), "reliability-flags-"));
    this.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
    const doc = JSON.parse(await readFile(REPO_FLAGS, "utf8"));
    const pickV2 = doc.features.find((f: { name: string }) => f.name === "pick.v2");
    if (!pickV2) throw new Error(`${REPO_FLAGS} has no pick.v2 flag`);
    pickV2.enabled = true;
    pickV2.strategies = [userIdStrategy("pick.v2", v2Customers)];
    const file = path.join(dir, "features.json");
    await writeFile(file, JSON.stringify(doc, null, 2));
    return file;
  }

  /** Registers a clean-up step; steps run last-registered first. */
  defer(what: string, run: () => Promise<unknown> | unknown): void {
    this.cleanups.push({ what, run: async () => run() });
  }

  /**
   * Every service's output so far, for assertion messages: its warnings and errors (where the
   * explanation usually is, often long before the end), then its last lines.
   */
  logs(lines = 25): string {
    return this.started
      .map((s) => {
        const { exitCode, signalCode } = s.child;
        const state =
          exitCode === null && signalCode === null ? "running" : `exited ${signalCode ?? exitCode}`;
        const output = s.logs();
        const trouble = output
          .split("\n")
          .filter((line) => /^\[stderr\]|"level":"(warn|error|fatal)"/.test(line))
          .slice(-15);
        return [
          `--- ${s.name} ${s.url} (pid ${s.child.pid}, ${state}) ---`,
          ...(trouble.length > 0 ? ["warnings and errors:", ...trouble, "last lines:"] : []),
          tail(output, lines),
        ].join("\n");
      })
      .join("\n");
  }

  /** Wraps a test body so that a failure's message ends with the services' output. */
  withLogs<A extends unknown[]>(
    body: (...args: A) => Promise<void>,
  ): (...args: A) => Promise<void> {
    return async (...args) => {
      try {
        await body(...args);
      } catch (error) {
        if (error instanceof Error) error.message += `\n${this.logs()}`;
        throw error;
      }
    };
  }

  /** Runs every clean-up step (all of them, even when some fail), newest first. */
  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    while (this.cleanups.length > 0) {
      const step = this.cleanups.pop();
      if (!step) break;
      try {
        await step.run();
      } catch (error) {
        errors.push(new Error(`clean-up "${step.what}" failed: ${(error as Error).message}`));
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "reliability clean-up failed");
  }
}

/** `eventually`, polling every 50 ms unless told otherwise. */
export function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs: number; intervalMs?: number; message: () => string },
): Promise<T> {
  return eventually(probe, { ...options, intervalMs: options.intervalMs ?? 50 });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
