/**
 * The set-up of the dependency-fault tests (reliability-dependency-faults*.test.ts): chillybin on
 * a PostgreSQL this file starts on its own port and data directory — never the machine's shared
 * one, since the tests stop it — and jafflr in front.
 */
import assert from "node:assert/strict";
import { type AddressInfo, createServer } from "node:net";
import { type EmbeddedDb, startThrowawayDb } from "local-dev/embedded-db";
import type pg from "pg";
import { actClient, arrangeClient, type Client, type Reply } from "testkit/http-client";
import type { ServiceProcess } from "testkit/service-process";
import type { Env } from "../stall";
import type { Harness } from "./harness";

export interface FaultyStall {
  postgres: EmbeddedDb;
  pool: pg.Pool;
  chillybinEnv: Env;
  chillybin: ServiceProcess;
  jafflr: ServiceProcess;
  /** jafflr's flag settings: FLAGS_FILE when the test chose the flag's customers. */
  flagsEnv: Env;
  /** Act clients for chillybin (the cold store) and jafflr (the grill). */
  cold: Client;
  grill: Client;
}

/** `v2Customers`: pick.v2 on for exactly these (a private flag file); default: the repo's file. */
export async function startFaultyStall(h: Harness, v2Customers?: string[]): Promise<FaultyStall> {
  const postgres = await startThrowawayDb();
  h.defer("destroy the embedded PostgreSQL", () => postgres.destroy());
  const db = await h.database(postgres.url);
  const pool = h.pool(db.url);
  // Default timeouts: a stopped server refuses connections at once, so the 503s come quickly.
  const chillybinEnv = { DATABASE_URL: db.url };
  const chillybin = await h.start("chillybin", chillybinEnv);
  const flagsEnv = v2Customers ? { FLAGS_FILE: await h.flagFile(v2Customers) } : {};
  const jafflr = await h.start("jafflr", {
    CHILLYBIN_URL: chillybin.url,
    COOK_TIME_SCALE: "0",
    ...flagsEnv,
  });
  await arrangeClient(chillybin.url).post("/restock", {
    json: { cheese: 50, vegemite: 50, bread: 100 },
  });
  return {
    postgres,
    pool,
    chillybinEnv,
    chillybin,
    jafflr,
    flagsEnv,
    cold: actClient(chillybin.url),
    grill: actClient(jafflr.url),
  };
}

/**
 * A second jafflr pointed at an Unleash that is not there — every connection to its address is
 * reset at once — which must start within its bounded wait, on the flag file's flags. `polls()`
 * counts the attempts, so a test can wait for several failed polls instead of for a time.
 */
export async function startUnleashlessJafflr(h: Harness, stall: FaultyStall) {
  let polls = 0;
  const nobody = createServer((socket) => {
    polls++;
    socket.resetAndDestroy();
  });
  await new Promise<void>((resolve) => nobody.listen(0, "127.0.0.1", resolve));
  h.defer("close the unreachable Unleash", () => new Promise((r) => nobody.close(r)));
  const { port } = nobody.address() as AddressInfo;
  const jafflr = await h.start(
    "jafflr",
    {
      CHILLYBIN_URL: stall.chillybin.url,
      COOK_TIME_SCALE: "0",
      ...stall.flagsEnv,
      UNLEASH_URL: `http://127.0.0.1:${port}/api`,
      UNLEASH_API_TOKEN: "default:development.reliability-test",
      UNLEASH_REFRESH_MS: "200",
      FLAGS_WAIT_MS: "1000",
    },
    { timeoutMs: 20_000 }, // it must not wait for Unleash forever
  );
  return Object.assign(jafflr, { polls: () => polls });
}

/** 503 problem+json with a Retry-After in seconds, and no stack trace. */
export function assertUnavailable(what: string, reply: Reply) {
  assert.equal(reply.status, 503, `${what}: ${reply.status} ${reply.error ?? reply.text}`);
  assert.match(reply.contentType, /^application\/problem\+json/, `${what}: ${reply.contentType}`);
  assert.equal(reply.body.status, 503, `${what}: ${reply.text}`);
  const retryAfter = reply.headers.get("retry-after");
  assert.match(
    retryAfter ?? "",
    /^\d+$/,
    `${what}: Retry-After is a number of seconds, got ${retryAfter}`,
  );
  assert.doesNotMatch(reply.text, /\n\s+at /, `${what}: no stack trace in the answer`);
}
