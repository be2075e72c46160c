/**
 * Reliability 2 — SIGTERM under load: with toasties cooking (cook time > 0) and picks streaming
 * in, jafflr and then chillybin get SIGTERM. Every request started before the signal must finish
 * successfully; requests started afterwards either still get in (during the pre-stop delay) and
 * succeed, or are never accepted (connection refused, or reset before any answer when they race
 * the listener's close) — counted separately. Both exit 0 within SHUTDOWN_TIMEOUT_MS, and the
 * stock accounts exactly for the successes, so nothing was half-done.
 *
 * To be sure chillybin has requests in flight at its signal, the test holds a row lock in
 * PostgreSQL that a few orders queue behind, and releases it only after the listener has closed.
 *
 * The streaming load is the test file's: v2 toasties and orders in reliability-sigterm.test.ts,
 * v1 toasties and picks in its *pick-v1* sibling.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, type TestContext, test } from "node:test";
import type pg from "pg";
import { arrangeClient } from "testkit/http-client";
import type { Exit, ServiceProcess } from "testkit/service-process";
import { needsOwnProcesses } from "../stall";
import { Harness, sleep, waitFor } from "./harness";
import { minus, readBooks, total } from "./ledger";
import type { LoadRequest } from "./load";
import { census, describe as describeOutcome, type Outcome, startLoad } from "./load";
import { send } from "./raw-http";
import { pickV2 } from "./requests";

const SHUTDOWN_TIMEOUT_MS = 10_000;
/** Pre-stop delay: connections already made when the signal lands are accepted before the listener closes. */
const SHUTDOWN_DELAY_MS = 250;
const BLOCKED_ORDERS = 5;

export const DONENESSES = ["light", "medium", "well-done"] as const;

export interface SigtermLoad {
  /**
   * One worker per function, each sending one request after another. Toasties must be labelled
   * "toastie", picks "pick-…"; the toasties are what jafflr must finish after its signal.
   */
  workers(services: {
    chillybin: ServiceProcess;
    jafflr: ServiceProcess;
  }): ((n: number) => LoadRequest)[];
  /** pick.v2 on for exactly these customers (a private copy of the flag file); default: the repo's file. */
  v2Customers?: string[];
}

export function describeSigtermUnderLoad(title: string, load: SigtermLoad) {
  describe(title, needsOwnProcesses, () => {
    const h = new Harness();
    let pool: pg.Pool;
    let chillybin: ServiceProcess;
    let jafflr: ServiceProcess;

    before(async () => {
      const db = await h.database();
      pool = h.pool(db.url);
      const shutdown = {
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        SHUTDOWN_DELAY_MS: String(SHUTDOWN_DELAY_MS),
      };
      chillybin = await h.start("chillybin", {
        DATABASE_URL: db.url,
        PG_STATEMENT_TIMEOUT_MS: "30000", // the orders queued behind the test's row lock must wait, not time out
        ...shutdown,
      });
      jafflr = await h.start("jafflr", {
        CHILLYBIN_URL: chillybin.url,
        COOK_TIME_SCALE: "0.2", // light 200 ms, medium 400 ms, well-done 1 s
        GRILL_SLOTS: "4",
        GRILL_QUEUE: "64",
        ...(load.v2Customers ? { FLAGS_FILE: await h.flagFile(load.v2Customers) } : {}),
        ...shutdown,
      });
      await arrangeClient(chillybin.url).post("/restock", {
        json: { cheese: 1_000, bread: 2_000, ham: 100, tomato: 1_000, vegemite: 1_000 },
      });
    });

    after(() => h.cleanup());

    test(
      "everything started before each signal completes, later requests are refused or served, both exit 0 in time",
      h.withLogs(async (t: TestContext) => {
        const start = await readBooks(pool);
        const stream = startLoad(load.workers({ chillybin, jafflr }));

        // ── jafflr ──
        await waitFor(
          async () => {
            const done = stream.outcomes.filter((o) => o.request.kind === "toastie").length;
            const grill = await send(jafflr.url, { path: "/" });
            return done >= 6 && grill.json?.toasting >= 2 ? true : undefined;
          },
          {
            timeoutMs: 20_000,
            message: () => `no steady toastie load (${census(stream.outcomes)})`,
          },
        );
        const jafflrSignalAt = performance.now();
        jafflr.child.kill("SIGTERM");
        const jafflrExit = await exitOf(jafflr);
        const jafflrShutdownMs = performance.now() - jafflrSignalAt;

        // ── chillybin, with orders queued behind a row lock at the moment of the signal ──
        const lock = await pool.connect();
        let blocked: Promise<Outcome>[] = [];
        let chillybinSignalAt = 0;
        let refusedWhileDraining = "";
        try {
          await lock.query("BEGIN");
          await lock.query("SELECT 1 FROM ingredients WHERE name = 'ham' FOR UPDATE");
          blocked = Array.from({ length: BLOCKED_ORDERS }, async (_, i) => {
            const request = pickV2(chillybin.url, `blocked-${i}`, [
              { ingredient: "ham", quantity: 1 },
            ]);
            return { ...(await send(request.target, request)), request };
          });
          await waitFor(
            async () => {
              const { rows } = await pool.query<{ n: number }>(
                "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
              );
              return (rows[0]?.n ?? 0) >= BLOCKED_ORDERS ? true : undefined;
            },
            { timeoutMs: 10_000, message: () => "the orders never queued behind the row lock" },
          );
          chillybinSignalAt = performance.now();
          chillybin.child.kill("SIGTERM");
          // After the pre-stop delay the listener closes while the queued orders are still open
          // (they cannot finish while the lock is held).
          await sleep(SHUTDOWN_DELAY_MS);
          refusedWhileDraining = await waitFor(
            async () => {
              const outcome = await connect(chillybin.port);
              // A timed-out connect (a stalled machine) is no verdict: try again.
              return outcome === "connected" || outcome === "TIMEOUT" ? undefined : outcome;
            },
            {
              timeoutMs: 5_000,
              message: () => "chillybin kept accepting connections after SIGTERM",
            },
          );
          assert.equal(chillybin.child.exitCode, null, "chillybin waits for its in-flight orders");
        } finally {
          await lock.query("COMMIT").finally(() => lock.release());
        }
        const chillybinExit = await exitOf(chillybin);
        const chillybinShutdownMs = performance.now() - chillybinSignalAt;
        const blockedOutcomes = await Promise.all(blocked);
        await sleep(200);
        const outcomes = [...(await stream.stop()), ...blockedOutcomes];

        // ── what the clients saw ──
        const toasties = outcomes.filter((o) => o.request.kind === "toastie");
        const picks = outcomes.filter((o) => o.request.kind.startsWith("pick"));
        const before1 = toasties.filter((o) => o.startedAt < jafflrSignalAt);
        const after1 = toasties.filter((o) => o.startedAt >= jafflrSignalAt);
        const before2 = picks.filter((o) => o.startedAt < chillybinSignalAt);
        const after2 = picks.filter((o) => o.startedAt >= chillybinSignalAt);
        t.diagnostic(
          `jafflr: ${before1.length} toasties before SIGTERM, after it: ${census(after1)}; ` +
            `chillybin: ${before2.length} picks before SIGTERM, after it: ${census(after2)}`,
        );

        const inFlight = before1.filter((o) => o.endedAt > jafflrSignalAt);
        assert.ok(
          inFlight.length >= 1,
          `toasties were on the grill at the signal (${inFlight.length})`,
        );
        assert.deepEqual(
          [...before1, ...before2].filter((o) => o.status !== 200).map(describeOutcome),
          [],
          "every request started before the signal completed successfully",
        );
        assert.deepEqual(
          blockedOutcomes.map((o) => o.status),
          Array(BLOCKED_ORDERS).fill(200),
          "the orders in flight at chillybin's signal completed",
        );
        // After the signal a new connection is served (pre-stop delay), refused (listener closed),
        // or — when it lands in the kernel's accept queue in the instant the listener closes —
        // reset before any answer: the request never reached the service (the books below prove
        // nothing was half-done). An answer cut off midway would be a failure.
        const notServed = new Set(["ECONNREFUSED", "ECONNRESET"]);
        assert.deepEqual(
          [...after1, ...after2]
            .filter((o) => o.status !== 200 && !notServed.has(o.error ?? ""))
            .map(describeOutcome),
          [],
          "a request started after the signal is either served or never accepted",
        );
        assert.ok(
          after1.some((o) => notServed.has(o.error ?? "")),
          `new connections to jafflr were refused after the signal (${census(after1)})`,
        );
        assert.ok(
          notServed.has(refusedWhileDraining),
          `chillybin stopped accepting while draining (a new connection got: ${refusedWhileDraining})`,
        );

        assert.deepEqual(jafflrExit, { code: 0, signal: null }, "jafflr exit");
        assert.deepEqual(chillybinExit, { code: 0, signal: null }, "chillybin exit");
        assert.ok(
          jafflrShutdownMs < SHUTDOWN_TIMEOUT_MS && chillybinShutdownMs < SHUTDOWN_TIMEOUT_MS,
          `both finished within SHUTDOWN_TIMEOUT_MS (jafflr ${Math.round(jafflrShutdownMs)} ms, chillybin ${Math.round(chillybinShutdownMs)} ms)`,
        );

        const books = await readBooks(pool);
        const served = outcomes.filter((o) => o.status === 200);
        assert.deepEqual(
          books.stock,
          minus(start.stock, total(served.map((o) => o.request.takes))),
          "the stock fell by exactly what the successful requests took — nothing half-done",
        );
        const v2 = served.filter((o) => o.request.kind === "pick-v2" || o.json?.pickedVia === "v2");
        assert.equal(books.orders - start.orders, v2.length, "one order per successful v2 request");
      }),
    );
  });
}

/** The process's exit; SIGKILL and fail if it outlives the shutdown deadline by far. */
async function exitOf(service: ServiceProcess): Promise<Exit> {
  const timer = setTimeout(() => service.kill(), SHUTDOWN_TIMEOUT_MS + 5_000);
  try {
    return await service.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A plain TCP connect: "connected", or the error code. */
function connect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve("TIMEOUT");
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}
