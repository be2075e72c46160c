#!/usr/bin/env tsx
/**
 * `with-db <command…>`: runs a test suite with a PostgreSQL: DATABASE_URL's server when set (CI's),
 * else a throwaway embedded one. The command gets DATABASE_URL (a fresh database) and
 * TEST_ADMIN_DATABASE_URL (where tests make their own); all are dropped afterwards, whatever happens.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants } from "node:os";
import { createTestDatabase, dropDatabasesWithPrefix } from "testkit/test-db";
import { type EmbeddedDb, maskPassword, startThrowawayDb } from "./embedded-db";

const say = (message: string, code = 0) => {
  console.error(`with-db: ${message}`);
  return code;
};
const signalCode = (signal: NodeJS.Signals) => 128 + (constants.signals[signal] ?? 1);
const [command, ...args] = process.argv.slice(2);
// A signal before the child runs: clean up and exit as interrupted; after: forwarded to it.
let interrupted: NodeJS.Signals | undefined;
let forward: ((signal: NodeJS.Signals) => void) | undefined;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
  process.on(signal, () => {
    interrupted ??= signal;
    forward?.(signal);
  });

async function main(): Promise<number> {
  if (!command) return say("usage: with-db <command> [args...]", 2);
  let server: EmbeddedDb | undefined;
  let adminUrl = process.env.DATABASE_URL;
  const prefix = `t_${randomBytes(5).toString("hex")}_`;
  try {
    if (adminUrl) say(`using the server at DATABASE_URL ${maskPassword(adminUrl)}`);
    else {
      server = await startThrowawayDb({ log: say });
      adminUrl = server.url;
      say(`using an embedded PostgreSQL on 127.0.0.1:${server.port} (removed afterwards)`);
    }
    const db = interrupted ? undefined : await createTestDatabase(adminUrl, { prefix });
    if (interrupted || !db) return signalCode(interrupted ?? "SIGINT");
    const env = { ...process.env, TEST_DATABASE_PREFIX: prefix, TEST_ADMIN_DATABASE_URL: adminUrl };
    const child = spawn(command, args, { stdio: "inherit", env: { ...env, DATABASE_URL: db.url } });
    forward = (signal) => child.exitCode === null && child.kill(signal);
    return await new Promise<number>((resolve) => {
      child.once("error", (error) => resolve(say(`cannot run ${command}: ${error.message}`, 127)));
      child.once("exit", (code, signal) => resolve(signal ? signalCode(signal) : (code ?? 1)));
    });
  } finally {
    forward = undefined;
    // The throwaway server goes with every database in it; on a given server, the run's prefix.
    if (server) await server.destroy();
    else if (adminUrl) await dropDatabasesWithPrefix(adminUrl, prefix);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => process.exit(say(error instanceof Error ? error.message : String(error), 1)),
);
