/**
 * Reliability 3 — a rolling restart loses nothing: two instances of each service, each pair
 * behind a round-robin proxy that honours `/ready` (a Kubernetes Service stand-in; jafflr reaches
 * chillybin through its proxy). Under constant load every instance in turn gets SIGTERM (with a
 * pre-stop delay so the proxy sees `/ready` go 503 before the listener closes), exits, and is
 * replaced by a new process that joins once ready. Not one client request may fail, and the
 * stock must account exactly for the successes.
 *
 * The load is the test file's: v2 toasties and orders in reliability-rolling-restart.test.ts, v1
 * toasties and picks in its *pick-v1* sibling.
 */
import assert from "node:assert/strict";
import { after, before, describe, type TestContext, test } from "node:test";
import type pg from "pg";
import { arrangeClient } from "testkit/http-client";
import type { Exit, ServiceName, ServiceProcess } from "testkit/service-process";
import { type Env, needsOwnProcesses } from "../stall";
import { Harness, waitFor } from "./harness";
import { minus, readBooks, total } from "./ledger";
import type { LoadRequest } from "./load";
import { census, describe as describeOutcome, startLoad } from "./load";
import { type ReadyProxy, startReadyProxy } from "./proxy";

/**
 * The pre-stop delay: how long an instance keeps its listener open after SIGTERM while /ready
 * says 503. It must cover the proxy's next /ready poll (every 100 ms) *and* that poll's latency
 * on a busy 2-core box (a starved event loop has been seen to take 200 ms to answer /ready);
 * shorter, and the proxy can still send a request into a listener that is closing.
 */
const PRE_STOP_DELAY_MS = "1000";

interface Instance {
  name: ServiceName;
  process: ServiceProcess;
  env: Env;
  proxy: ReadyProxy;
}

export interface RollingLoad {
  /** One worker per function, each sending one request after another through the proxies. */
  workers(proxies: { chillybin: ReadyProxy; jafflr: ReadyProxy }): ((n: number) => LoadRequest)[];
  /** Request kinds that must each have run during the restarts. */
  kinds: string[];
  /** pick.v2 on for exactly these customers (a private copy of the flag file); default: the repo's file. */
  v2Customers?: string[];
}

export function describeRollingRestart(title: string, load: RollingLoad) {
  describe(title, needsOwnProcesses, () => {
    const h = new Harness();
    let pool: pg.Pool;
    let chillybinProxy: ReadyProxy;
    let jafflrProxy: ReadyProxy;
    const instances: Instance[] = [];

    async function startInstances(name: ServiceName, env: Env, proxy: ReadyProxy) {
      const started = await Promise.all([h.start(name, env), h.start(name, env)]);
      for (const process of started) {
        instances.push({ name, process, env, proxy });
        proxy.add(process.url);
      }
      await Promise.all(started.map((p) => proxy.waitUntilInRotation(p.url)));
    }

    before(async () => {
      const db = await h.database();
      pool = h.pool(db.url);
      const shutdown = { SHUTDOWN_DELAY_MS: PRE_STOP_DELAY_MS, SHUTDOWN_TIMEOUT_MS: "15000" };

      chillybinProxy = await startReadyProxy({ name: "chillybin service" });
      h.defer("close the chillybin proxy", () => chillybinProxy.close());
      jafflrProxy = await startReadyProxy({ name: "jafflr service" });
      h.defer("close the jafflr proxy", () => jafflrProxy.close());
      const flags = load.v2Customers ? { FLAGS_FILE: await h.flagFile(load.v2Customers) } : {};
      // All four at once: the two chillybins on an empty database (the second waits for the
      // first one's migrations), the jafflrs becoming ready once a chillybin is in rotation.
      await Promise.all([
        startInstances("chillybin", { DATABASE_URL: db.url, ...shutdown }, chillybinProxy),
        startInstances(
          "jafflr",
          {
            CHILLYBIN_URL: chillybinProxy.url,
            COOK_TIME_SCALE: "0.05", // a light toastie cooks 50 ms: some are always on the grill
            GRILL_QUEUE: "64",
            ...flags,
            ...shutdown,
          },
          jafflrProxy,
        ),
      ]);
      await arrangeClient(chillybinProxy.url).post("/restock", {
        json: {
          cheese: 5_000,
          sheese: 5_000,
          bread: 10_000,
          ham: 5_000,
          tomato: 5_000,
          vegemite: 5_000,
        },
      });
    });

    after(() => h.cleanup());

    /** SIGTERM, wait for the exit, take it out of the proxy, start its replacement, wait until it is in rotation. */
    async function replace(instance: Instance): Promise<Exit> {
      const old = instance.process;
      const exit = await old.stop("SIGTERM", 20_000);
      instance.proxy.remove(old.url);
      instance.process = await h.start(instance.name, instance.env);
      instance.proxy.add(instance.process.url);
      await instance.proxy.waitUntilInRotation(instance.process.url);
      return exit;
    }

    /** Until every instance in rotation has served requests since this call: the load reaches each. */
    async function everyInstanceServed() {
      const proxies = [chillybinProxy, jafflrProxy];
      const servedBy = () =>
        new Map(proxies.flatMap((p) => p.backends()).map((b) => [b.url, b.served]));
      const before = servedBy();
      await waitFor(
        () => {
          const now = [...servedBy()];
          return now.every(([url, served]) => served > (before.get(url) ?? 0)) ? true : undefined;
        },
        {
          timeoutMs: 30_000,
          message: () =>
            `the load did not reach every instance: ${JSON.stringify([...servedBy()])}`,
        },
      );
    }

    test(
      "each instance is replaced in turn: zero failed requests, clean exits, exact stock accounting",
      h.withLogs(async (t: TestContext) => {
        const start = await readBooks(pool);
        // Start-up had jafflr's readiness pings meet an empty chillybin proxy; count from here on.
        const proxyErrors = () => chillybinProxy.stats.failed + jafflrProxy.stats.failed;
        const proxyErrorsBefore = proxyErrors();
        const stream = startLoad(load.workers({ chillybin: chillybinProxy, jafflr: jafflrProxy }));

        const exits: string[] = [];
        const order: ServiceName[] = ["chillybin", "jafflr"];
        for (const instance of order.flatMap((name) => instances.filter((i) => i.name === name))) {
          await everyInstanceServed(); // traffic on all four before the next one goes
          const oldUrl = instance.process.url;
          const exit = await replace(instance);
          exits.push(`${instance.name} ${oldUrl}: ${exit.signal ?? `exit code ${exit.code}`}`);
        }
        await everyInstanceServed();
        const outcomes = await stream.stop();

        t.diagnostic(
          `${outcomes.length} requests; re-sent after a refused connection: ${chillybinProxy.stats.retriedAfterRefusal + jafflrProxy.stats.retriedAfterRefusal}`,
        );
        const failed = outcomes.filter((o) => o.status !== 200);
        assert.deepEqual(
          failed.map(describeOutcome),
          [],
          `no client request failed (${census(outcomes)})`,
        );
        assert.deepEqual(
          exits.filter((e) => !e.endsWith("exit code 0")),
          [],
          `every replaced instance exited 0: ${exits.join("; ")}`,
        );
        assert.equal(exits.length, 4);
        assert.equal(
          proxyErrors() - proxyErrorsBefore,
          0,
          "the proxies answered nothing themselves (no 502/503), jafflr's own calls to chillybin included",
        );

        // The restarts happened under traffic: every old and new instance served requests.
        for (const backend of [...chillybinProxy.history(), ...jafflrProxy.history()]) {
          assert.ok(
            backend.served > 0,
            `${backend.url} served no request: the load did not reach it`,
          );
        }
        for (const kind of load.kinds) {
          assert.ok(
            outcomes.some((o) => o.request.kind === kind),
            `some ${kind} requests ran (${census(outcomes)})`,
          );
        }

        const books = await readBooks(pool);
        assert.deepEqual(
          books.stock,
          minus(start.stock, total(outcomes.map((o) => o.request.takes))),
          "stock fell by exactly what the (all successful) requests took",
        );
        const v2 = outcomes.filter(
          (o) => o.request.kind === "pick-v2" || o.json?.pickedVia === "v2",
        );
        assert.equal(books.orders - start.orders, v2.length, "one order per v2 request");
      }),
    );
  });
}
