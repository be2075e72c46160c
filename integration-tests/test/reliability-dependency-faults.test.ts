/**
 * Reliability 4 — dependency faults, each healed without restarting the service that suffered:
 * - PostgreSQL stops (an embedded server this file starts on its own port and data directory,
 *   never the machine's shared one): chillybin answers 503 problems with Retry-After, `/ready`
 *   fails, the process stays up — and it serves again once Postgres is back on the same port.
 * - chillybin crashes (SIGKILL): jafflr answers 503 and stays ready (readiness must not
 *   cascade), and recovers by itself when a new chillybin comes up on the same port.
 * - Unleash is unreachable: jafflr still starts (bounded wait) and serves with the flag file's
 *   flags, without filling its log with errors.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { actClient, type Reply } from "testkit/http-client";
import {
  assertUnavailable,
  type FaultyStall,
  startFaultyStall,
  startUnleashlessJafflr,
} from "../src/reliability/dependency-faults";
import { Harness, waitFor } from "../src/reliability/harness";
import { minus, readBooks, toastieTakes } from "../src/reliability/ledger";
import { needsOwnProcesses } from "../src/stall";

describe("dependency faults", needsOwnProcesses, () => {
  const h = new Harness();
  let stall: FaultyStall;

  before(async () => {
    stall = await startFaultyStall(h);
  });

  after(() => h.cleanup());

  const gitasToastie = () =>
    stall.grill.post("/toastie", {
      json: { customer: "gita", ingredients: ["cheese", "vegemite"] },
    });

  test(
    "PostgreSQL stops: chillybin answers 503 + Retry-After and is not ready; it recovers by itself when Postgres is back",
    h.withLogs(async () => {
      const before = await readBooks(stall.pool);
      const pid = stall.chillybin.child.pid;
      await stall.postgres.stop();
      try {
        const answers: [string, Reply][] = [
          ["GET /", await stall.cold.get("/")],
          [
            "POST /v2/pick",
            await stall.cold.post("/v2/pick", {
              json: { customer: "gita", items: [{ ingredient: "cheese", quantity: 1 }] },
              headers: { "Idempotency-Key": "outage-1" },
            }),
          ],
          ["GET /orders", await stall.cold.get("/orders")],
          ["POST /restock", await stall.cold.post("/restock", { json: { cheese: 1 } })],
          // The whole chain: jafflr passes the cold store's trouble on as its own 503.
          ["jafflr v2 toastie", await gitasToastie()],
        ];
        for (const [what, reply] of answers) assertUnavailable(what, reply);

        const ready = await stall.cold.get("/ready");
        assert.equal(
          ready.status,
          503,
          `/ready while Postgres is down: ${ready.status} ${ready.text}`,
        );
        assert.match(ready.text, /database/, "/ready names the failing check");
        const health = await stall.cold.get("/health");
        assert.equal(health.status, 200, "chillybin itself stays alive (liveness)");
      } finally {
        await stall.postgres.start(); // same data directory, same port
      }

      await waitFor(
        async () => ((await stall.cold.get("/ready")).status === 200 ? true : undefined),
        {
          timeoutMs: 20_000,
          intervalMs: 100,
          message: () => "chillybin did not become ready again after Postgres came back",
        },
      );
      assert.equal(stall.chillybin.child.pid, pid, "the same process");
      assert.equal(stall.chillybin.child.exitCode, null, "chillybin never exited");
      const during = await readBooks(stall.pool);
      assert.deepEqual(during, before, "nothing changed while Postgres was down");

      const toastie = await gitasToastie();
      assert.equal(toastie.status, 200, `${toastie.status} ${toastie.text}`);
      assert.deepEqual(
        (await readBooks(stall.pool)).stock,
        minus(before.stock, { cheese: 1, vegemite: 1, bread: 2 }),
      );
    }),
  );

  test(
    "chillybin crashes: jafflr answers 503 + Retry-After and stays ready, and recovers by itself when chillybin is back on its port",
    h.withLogs(async () => {
      const before = await readBooks(stall.pool);
      const port = stall.chillybin.port;
      stall.chillybin.kill(); // SIGKILL: no graceful goodbye, jafflr's pooled connections just die
      await stall.chillybin.exited;

      assertUnavailable("v2 toastie", await gitasToastie());
      const ready = await stall.grill.get("/ready");
      assert.equal(
        ready.status,
        200,
        `jafflr /ready without chillybin: ${ready.status} ${ready.text}`,
      );
      assert.equal((await stall.grill.get("/health")).status, 200, "jafflr itself stays alive");

      stall.chillybin = await h.start("chillybin", { ...stall.chillybinEnv, PORT: String(port) });
      await waitFor(
        async () => ((await stall.grill.get("/")).body.chillybin.reachable ? true : undefined),
        {
          timeoutMs: 20_000,
          intervalMs: 100,
          message: () => "jafflr did not see chillybin back",
        },
      );
      assert.equal(stall.jafflr.child.exitCode, null, "jafflr was not restarted");
      assert.deepEqual(
        await readBooks(stall.pool),
        before,
        "nothing was picked while chillybin was down",
      );

      const v2 = await gitasToastie();
      assert.equal(v2.status, 200, `${v2.status} ${v2.text}`);
      assert.equal(v2.body.pickedVia, "v2");
      const takes = toastieTakes(["cheese", "vegemite"]);
      assert.deepEqual(
        (await readBooks(stall.pool)).stock,
        minus(before.stock, takes),
        "one toastie's worth taken, once",
      );
    }),
  );

  test(
    "Unleash unreachable: jafflr starts within its bounded wait and serves with the flag file's flags, quietly",
    h.withLogs(async () => {
      const unleashless = await startUnleashlessJafflr(h, stall);
      const client = actClient(unleashless.url);

      const v2 = await client.post("/toastie", {
        json: { customer: "gita", ingredients: ["cheese"] },
      });
      assert.equal(v2.status, 200, `${v2.status} ${v2.text}`);
      assert.equal(v2.body.pickedVia, "v2", "gita is on pick.v2 in the flag file");

      // Several failed polls later: still serving, and no error line per poll.
      const pollsSoFar = unleashless.polls();
      await waitFor(() => (unleashless.polls() >= pollsSoFar + 4 ? true : undefined), {
        timeoutMs: 20_000,
        message: () => `jafflr stopped polling Unleash (${unleashless.polls()} polls)`,
      });
      const again = await client.post("/toastie", {
        json: { customer: "gita", ingredients: ["cheese"] },
      });
      assert.equal(again.body?.pickedVia, "v2", `${again.status} ${again.text}`);
      const logs = unleashless.logs();
      const fallbackNotes = logs.match(/did not answer in time/g) ?? [];
      assert.equal(fallbackNotes.length, 1, "the fallback to the flag file is logged once");
      const pollErrors = logs.split("\n").filter((l) => /flag source error/.test(l));
      assert.ok(pollErrors.length <= 1, `failed polls are rate-limited:\n${pollErrors.join("\n")}`);
      assert.doesNotMatch(logs, /\n\s+at .+\(.+:\d+:\d+\)/, "no stack traces in the log");
    }),
  );
});
