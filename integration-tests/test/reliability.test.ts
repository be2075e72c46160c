/**
 * Deploying at any moment loses nothing. Two instances of each service, each pair behind a
 * TcpProxy that takes only instances whose /ready says 200 (a Kubernetes Service stand-in;
 * jafflr reaches chillybin through its proxy), on one fresh database. The books are read with
 * SQL. In turn: bad input changes nothing; no overselling; a rolling restart under load fails no
 * request; SIGTERM under load finishes everything in flight.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, type TestContext, test } from "node:test";
import pg from "pg";
import { pickV2FlagFile } from "testkit/flags";
import { arrangeClient } from "testkit/http-client";
import { tryConnect } from "testkit/net";
import {
  type ServiceName,
  type ServiceProcess,
  startService,
  stopAll,
} from "testkit/service-process";
import { TcpProxy } from "testkit/tcp-proxy";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { ADMIN_TOKEN, badInputTests, CORPUS, INVALID } from "../src/bad-input";
import {
  assertNoOverselling,
  census,
  describeOutcome,
  minus,
  type Outcome,
  pickV2,
  readBooks,
  send,
  sent,
  startLoad,
  toastie,
  total,
} from "../src/load";
import { eventually, needsOwnProcesses, serviceEnv, tail, withLogs } from "../src/stall";

const SHUTDOWN_TIMEOUT_MS = 10_000;
const PLENTY = { bread: 10_000, cheese: 5_000, ham: 5_000, tomato: 5_000, vegemite: 5_000 };

describe(
  "reliability: two instances of each service behind Service stand-ins",
  needsOwnProcesses,
  () => {
    let db: TestDatabase;
    let pool: pg.Pool;
    let flags: string; // the file's own copy: nothing another test does to a flag reaches it
    const proxies = {
      chillybin: new TcpProxy([], { ready: true }),
      jafflr: new TcpProxy([], { ready: true }),
    };
    const instances: { name: ServiceName; process: ServiceProcess }[] = [];
    const env = (name: ServiceName) =>
      serviceEnv({
        // The pre-stop delay: /ready says 503 this long before the listener closes, so the proxy's
        // next poll (every 100 ms, slower on a busy machine) sees it first.
        SHUTDOWN_DELAY_MS: "1000",
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        ...(name === "chillybin"
          ? {
              DATABASE_URL: db.url,
              CHILLYBIN_ADMIN_TOKEN: ADMIN_TOKEN,
              // Orders queued behind a storm or a test's row lock wait rather than time out.
              PG_CONNECT_TIMEOUT_MS: "30000",
              PG_STATEMENT_TIMEOUT_MS: "30000",
            }
          : {
              CHILLYBIN_URL: proxies.chillybin.url,
              FLAGS_FILE: path.join(flags, "features.json"),
              CHILLYBIN_TIMEOUT_MS: "30000",
              COOK_TIME_SCALE: "0.1", // light 100 ms, medium 200 ms, well-done 500 ms
              GRILL_SLOTS: "32",
              GRILL_QUEUE: "500",
            }),
      });
    /** Starts an instance and waits until its proxy has it in rotation. */
    const launch = async (name: ServiceName) => {
      const process = await startService(name, env(name));
      proxies[name].add(process.url);
      await eventually(
        () => proxies[name].backends.find((b) => b.url === process.url)?.ready || undefined,
        {
          timeoutMs: 30_000,
          message: () => `${process.url} never came into rotation`,
        },
      );
      return process;
    };
    const admin = () =>
      arrangeClient(proxies.chillybin.url, { Authorization: `Bearer ${ADMIN_TOKEN}` });
    const logs = () =>
      instances
        .map((i) => `--- ${i.name} ${i.process.url}\n${tail(i.process.logs(), 15)}`)
        .join("\n");

    before(async () => {
      db = await createTestDatabase();
      pool = new pg.Pool({ connectionString: db.url, max: 3 });
      flags = await mkdtemp(path.join(tmpdir(), "reliability-"));
      await writeFile(path.join(flags, "features.json"), JSON.stringify(pickV2FlagFile(["gita"])));
      await Promise.all(Object.values(proxies).map((p) => p.open()));
      // The second chillybin waits for the first one's migrations; the jafflrs for a chillybin.
      const names: ServiceName[] = ["chillybin", "chillybin", "jafflr", "jafflr"];
      for (const [i, process] of (await Promise.all(names.map(launch))).entries()) {
        instances.push({ name: names[i] as ServiceName, process });
      }
      await admin().post("/restock", { json: { ...PLENTY, pineapple: 50, sheese: 50 } });
      await admin().post("/v2/pick", {
        json: { customer: "gita", items: [{ ingredient: "ham", quantity: 1 }] },
      });
    });
    after(async () => {
      // Every instance started, also those beside one that failed to start.
      await stopAll().catch(() => {});
      await Promise.all(Object.values(proxies).map((p) => p.close()));
      await pool?.end();
      await db?.drop();
      if (flags) await rm(flags, { recursive: true, force: true });
    });

    badInputTests(
      () => ({
        urls: { chillybin: proxies.chillybin.url, jafflr: proxies.jafflr.url },
        books: async () => ({
          api: (await send(proxies.chillybin.url, { path: "/" })).json,
          sql: await readBooks(pool),
        }),
      }),
      CORPUS,
      INVALID,
    );

    test(
      "no overselling: 200 concurrent v2 orders and toasties against 50 cheeses",
      withLogs(logs, async () => {
        await admin().post("/restock", { json: { ...PLENTY, cheese: 50 } });
        const [cold, grill] = [proxies.chillybin.url, proxies.jafflr.url];
        const requests = Array.from({ length: 200 }, (_, i) =>
          i % 2 === 0
            ? pickV2(
                cold,
                { cheese: 1, ham: 1 + (i % 3), bread: 2 },
                i % 4 === 0 ? randomUUID() : undefined,
              )
            : toastie(grill, "gita", ["cheese", "vegemite"], {
                kind: "toastie-v2",
                queryForm: i % 4 === 1,
              }),
        );
        await assertNoOverselling(pool, cold, requests, 50);
      }),
    );

    test(
      "a rolling restart under constant load: each instance replaced in turn, zero failed requests, clean exits, exact stock",
      withLogs(logs, async (t: TestContext) => {
        await admin().post("/restock", { json: PLENTY });
        const start = await readBooks(pool);
        const failedBefore = proxies.chillybin.failed + proxies.jafflr.failed;
        const [cold, grill] = [proxies.chillybin.url, proxies.jafflr.url];
        const load = startLoad([
          () => toastie(grill, "gita", ["cheese", "vegemite"], { kind: "toastie-v2" }),
          (n) =>
            toastie(grill, "gita", ["cheese", "ham"], {
              kind: "toastie-v2",
              doneness: "medium",
              queryForm: n % 2 === 0,
            }),
          (n) => pickV2(cold, { cheese: 1, bread: 1 }, `rolling-${n}-${randomUUID()}`),
        ]);
        /** Until every instance in rotation has accepted connections since now. */
        const everyInstanceServed = async () => {
          const live = () =>
            Object.values(proxies).flatMap((p) => p.backends.filter((b) => !b.removed));
          const before = new Map(live().map((b) => [b, b.served]));
          await eventually(
            () => live().every((b) => b.served > (before.get(b) ?? 0)) || undefined,
            {
              timeoutMs: 30_000,
              message: () => `the load did not reach every instance (${census(load.outcomes)})`,
            },
          );
        };
        const exits: string[] = [];
        for (const instance of instances) {
          await everyInstanceServed();
          // As a Deployment rolls (maxSurge 1): the replacement starts while the old one drains.
          const [old, next] = [instance.process, launch(instance.name)];
          const exit = await old.stop("SIGTERM", 20_000);
          exits.push(`${instance.name} ${old.url}: ${exit.signal ?? exit.code}`);
          proxies[instance.name].remove(old.url);
          instance.process = await next;
        }
        await everyInstanceServed();
        const outcomes = await load.stop();
        t.diagnostic(`${outcomes.length} requests: ${census(outcomes)}`);
        assert.deepEqual(
          outcomes.filter((o) => o.status !== 200).map(describeOutcome),
          [],
          "no request failed",
        );
        assert.deepEqual(
          exits.filter((e) => !e.endsWith(": 0")),
          [],
          `every instance exited 0: ${exits}`,
        );
        assert.equal(
          proxies.chillybin.failed + proxies.jafflr.failed,
          failedBefore,
          "no connection broke off",
        );
        const books = await readBooks(pool);
        assert.deepEqual(
          books.stock,
          minus(start.stock, total(outcomes.map((o) => o.request.takes))),
        );
        const v2 = outcomes.filter(
          (o) => o.request.kind === "pick-v2" || o.json?.pickedVia === "v2",
        );
        assert.equal(
          books.orderIds.size - start.orderIds.size,
          v2.length,
          "one order per v2 request",
        );
      }),
    );

    test(
      "SIGTERM under load, jafflr then chillybin: everything started before the signal completes, later requests are served or refused, both exit 0 in time",
      withLogs(logs, async (t: TestContext) => {
        const jafflr = instances.find((i) => i.name === "jafflr")?.process as ServiceProcess;
        const chillybin = instances.find((i) => i.name === "chillybin")?.process as ServiceProcess;
        await admin().post("/restock", { json: PLENTY });
        const start = await readBooks(pool);
        const load = startLoad([
          ...["light", "medium", "well-done"].map(
            (doneness) => () => toastie(jafflr.url, "gita", ["cheese", "vegemite"], { doneness }),
          ),
          (n) => pickV2(chillybin.url, { cheese: 1, bread: 2 }, `stream-${n}-${randomUUID()}`),
        ]);
        await eventually(
          async () => {
            const toasted = load.outcomes.filter((o) => o.request.kind === "toastie").length;
            return toasted >= 6 && (await send(jafflr.url, { path: "/" })).json?.toasting >= 2
              ? true
              : undefined;
          },
          { timeoutMs: 20_000, message: () => `no steady toastie load (${census(load.outcomes)})` },
        );
        const jafflrSignalAt = performance.now();
        jafflr.child.kill("SIGTERM");
        const jafflrExit = await jafflr.exited;
        const jafflrMs = performance.now() - jafflrSignalAt;

        // chillybin, with orders queued behind a row lock at its signal: in flight for certain.
        const lock = await pool.connect();
        let blocked: Promise<Outcome>[] = [];
        let chillybinSignalAt = 0;
        let refused = "";
        try {
          await lock.query("BEGIN");
          await lock.query("SELECT 1 FROM ingredients WHERE name = 'ham' FOR UPDATE");
          blocked = [1, 2, 3, 4, 5].map((i) =>
            sent(pickV2(chillybin.url, { ham: 1 }, `blocked-${i}-${randomUUID()}`)),
          );
          await eventually(
            async () => {
              const sql =
                "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
              return (await pool.query(sql)).rows[0].n >= 5 || undefined;
            },
            { timeoutMs: 10_000, message: () => "the orders never queued behind the row lock" },
          );
          chillybinSignalAt = performance.now();
          chillybin.child.kill("SIGTERM");
          // The listener closes after the pre-stop delay, while the queued orders still wait.
          refused = await eventually(
            async () => {
              const outcome = await tryConnect(chillybin.port);
              return outcome === "connected" || outcome === "TIMEOUT" ? undefined : outcome;
            },
            {
              timeoutMs: 10_000,
              message: () => "chillybin kept accepting connections after SIGTERM",
            },
          );
          assert.equal(chillybin.child.exitCode, null, "chillybin waits for its in-flight orders");
        } finally {
          await lock.query("COMMIT").finally(() => lock.release());
        }
        const chillybinExit = await chillybin.exited;
        const chillybinMs = performance.now() - chillybinSignalAt;
        const blockedOutcomes = await Promise.all(blocked);
        const outcomes = [...(await load.stop()), ...blockedOutcomes];

        const toasties = outcomes.filter((o) => o.request.kind === "toastie");
        const picks = outcomes.filter((o) => o.request.kind === "pick-v2");
        const [before1, after1] = split(toasties, jafflrSignalAt);
        const [before2, after2] = split(picks, chillybinSignalAt);
        t.diagnostic(
          `after jafflr's signal: ${census(after1)}; after chillybin's: ${census(after2)}`,
        );
        assert.ok(
          before1.some((o) => o.endedAt > jafflrSignalAt),
          "toasties were on the grill at the signal",
        );
        const failedBefore = [...before1, ...before2].filter((o) => o.status !== 200);
        assert.deepEqual(
          failedBefore.map(describeOutcome),
          [],
          "everything started before the signal succeeded",
        );
        assert.deepEqual(
          blockedOutcomes.map((o) => o.status),
          [200, 200, 200, 200, 200],
          "the queued orders completed",
        );
        // After the signal a new connection is served (pre-stop delay), refused (listener closed) or
        // reset before any answer (caught in the accept queue as it closed): never half-answered.
        const notServed = (o: Outcome) => o.error === "ECONNREFUSED" || o.error === "ECONNRESET";
        const broken = [...after1, ...after2].filter((o) => o.status !== 200 && !notServed(o));
        assert.deepEqual(
          broken.map(describeOutcome),
          [],
          "a request after the signal is served or never accepted",
        );
        assert.ok(
          after1.some(notServed),
          `new connections to jafflr were refused (${census(after1)})`,
        );
        assert.match(
          refused,
          /^(ECONNREFUSED|ECONNRESET)$/,
          "chillybin stopped accepting while draining",
        );
        assert.deepEqual(
          [jafflrExit, chillybinExit],
          [
            { code: 0, signal: null },
            { code: 0, signal: null },
          ],
        );
        assert.ok(
          Math.max(jafflrMs, chillybinMs) < SHUTDOWN_TIMEOUT_MS,
          `${jafflrMs} ms, ${chillybinMs} ms`,
        );
        const served = outcomes.filter((o) => o.status === 200);
        const books = await readBooks(pool);
        assert.deepEqual(
          books.stock,
          minus(start.stock, total(served.map((o) => o.request.takes))),
          "nothing half-done",
        );
        const v2 = served.filter((o) => o.request.kind === "pick-v2" || o.json?.pickedVia === "v2");
        assert.equal(
          books.orderIds.size - start.orderIds.size,
          v2.length,
          "one order per v2 success",
        );
      }),
    );
  },
);

const split = (outcomes: Outcome[], at: number): [Outcome[], Outcome[]] => [
  outcomes.filter((o) => o.startedAt < at),
  outcomes.filter((o) => o.startedAt >= at),
];
