#!/usr/bin/env tsx
/**
 * Runs a command (a workspace's test suite) with a PostgreSQL to test against:
 *
 *   with-db node --import tsx --test test/*.test.ts
 *
 * The server is DATABASE_URL's when set (CI's real PostgreSQL), otherwise an embedded one on a free
 * port with a throwaway data directory. The command gets DATABASE_URL = a fresh database for this
 * run and TEST_ADMIN_DATABASE_URL = where tests create their own (testkit/test-db). Every
 * database created here or by the tests is dropped afterwards, whatever happens.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants } from "node:os";
import { maskPassword } from "testkit/db-url";
import { createTestDatabase, dropDatabasesWithPrefix } from "testkit/test-db";
import { type EmbeddedDb, startThrowawayDb } from "./embedded-db";

const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
let cleanUpFailed = false;

async function main(): Promise<number> {
  const [command, ...args] = process.argv.slice(2);
  if (!command) {
    console.error("usage: with-db <command> [args...]");
    return 2;
  }

  // A signal before the child runs: remember it, clean up, and exit as interrupted.
  let interrupted: NodeJS.Signals | undefined;
  let forward: ((signal: NodeJS.Signals) => void) | undefined;
  for (const signal of FORWARDED_SIGNALS) {
    process.on(signal, () => {
      interrupted ??= signal;
      forward?.(signal);
    });
  }

  let server: EmbeddedDb | undefined;
  let adminUrl = process.env.DATABASE_URL;
  const prefix = `t_${randomBytes(5).toString("hex")}_`;
  try {
    if (adminUrl) {
      console.error(`with-db: using the server at DATABASE_URL ${maskPassword(adminUrl)}`);
    } else {
      server = await startThrowawayDb({ log: (message) => console.error(`with-db: ${message}`) });
      adminUrl = server.url;
      console.error(
        `with-db: using an embedded PostgreSQL on 127.0.0.1:${server.port} (throwaway data directory, removed afterwards)`,
      );
    }
    if (interrupted) return exitCodeFor(interrupted);
    const database = await createTestDatabase(adminUrl, { prefix });
    if (interrupted) return exitCodeFor(interrupted);

    const child = spawn(command, args, {
      stdio: "inherit",
      env: {
        ...process.env,
        DATABASE_URL: database.url,
        TEST_ADMIN_DATABASE_URL: adminUrl,
        TEST_DATABASE_PREFIX: prefix,
      },
    });
    forward = (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    return await new Promise<number>((resolve) => {
      child.once("error", (error) => {
        console.error(`with-db: cannot run ${command}: ${error.message}`);
        resolve(127);
      });
      child.once("exit", (code, signal) => resolve(signal ? exitCodeFor(signal) : (code ?? 1)));
    });
  } finally {
    forward = undefined;
    await cleanUp(server, adminUrl, prefix);
  }
}

async function cleanUp(
  server: EmbeddedDb | undefined,
  adminUrl: string | undefined,
  prefix: string,
) {
  try {
    if (server) {
      await server.destroy(); // the whole throwaway server goes, with every database in it
    } else if (adminUrl) {
      const dropped = await dropDatabasesWithPrefix(adminUrl, prefix);
      if (dropped.length > 1) {
        console.error(
          `with-db: dropped ${dropped.length - 1} test database(s) the tests left behind`,
        );
      }
    }
  } catch (error) {
    console.error(
      `with-db: clean-up failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    cleanUpFailed = true;
  }
}

function exitCodeFor(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 1);
}

main().then(
  (code) => process.exit(code === 0 && cleanUpFailed ? 1 : code),
  (error: unknown) => {
    console.error(`with-db: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
