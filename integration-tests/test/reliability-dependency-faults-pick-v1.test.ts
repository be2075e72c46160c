/**
 * Reliability 4 — dependency faults (src/reliability/dependency-faults.ts), the v1 halves: v1's
 * `GET /pick` and a v1 toastie while PostgreSQL is down and after it is back; a v1 toastie while
 * chillybin is crashed and after it is back; an Unleash-less jafflr keeping gordon on v1 from the
 * flag file. Deleted with v1.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { actClient } from "testkit/http-client";
import {
  assertUnavailable,
  type FaultyStall,
  startFaultyStall,
  startUnleashlessJafflr,
} from "../src/reliability/dependency-faults";
import { Harness, waitFor } from "../src/reliability/harness";
import { minus, readBooks, toastieTakes } from "../src/reliability/ledger";
import { needsOwnProcesses } from "../src/stall";

describe("dependency faults, v1", needsOwnProcesses, () => {
  const h = new Harness();
  let stall: FaultyStall;

  before(async () => {
    stall = await startFaultyStall(h, ["gita"]);
  });

  after(() => h.cleanup());

  const gordonsToastie = () => stall.grill.post("/toastie?i=cheese&i=vegemite&customer=gordon");
  const ready = (client: typeof stall.cold) => async () =>
    (await client.get("/ready")).status === 200 ? true : undefined;

  test(
    "PostgreSQL stops: GET /pick and v1 toasties get 503 + Retry-After; GET /pick works once Postgres is back",
    h.withLogs(async () => {
      const before = await readBooks(stall.pool);
      await stall.postgres.stop();
      try {
        assertUnavailable("GET /pick", await stall.cold.get("/pick?name=cheese&quantity=1"));
        assertUnavailable("jafflr v1 toastie", await gordonsToastie());
      } finally {
        await stall.postgres.start(); // same data directory, same port
      }
      await waitFor(ready(stall.cold), {
        timeoutMs: 20_000,
        intervalMs: 100,
        message: () => "chillybin did not become ready again after Postgres came back",
      });
      assert.deepEqual(
        await readBooks(stall.pool),
        before,
        "nothing changed while Postgres was down",
      );
      const pick = await stall.cold.get("/pick?name=cheese&quantity=1");
      assert.equal(pick.status, 200, `${pick.status} ${pick.text}`);
      assert.deepEqual((await readBooks(stall.pool)).stock, minus(before.stock, { cheese: 1 }));
    }),
  );

  test(
    "chillybin crashes: a v1 toastie gets 503 + Retry-After, and works once chillybin is back on its port",
    h.withLogs(async () => {
      const before = await readBooks(stall.pool);
      const port = stall.chillybin.port;
      stall.chillybin.kill();
      await stall.chillybin.exited;
      assertUnavailable("v1 toastie", await gordonsToastie());

      stall.chillybin = await h.start("chillybin", { ...stall.chillybinEnv, PORT: String(port) });
      await waitFor(ready(stall.cold), {
        timeoutMs: 20_000,
        intervalMs: 100,
        message: () => "chillybin did not come back",
      });
      const v1 = await waitFor(
        async () => {
          const answer = await gordonsToastie();
          return answer.status === 200 ? answer : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100, message: () => "v1 toasties did not work again" },
      );
      assert.equal(v1.body.pickedVia, "v1");
      assert.deepEqual(
        (await readBooks(stall.pool)).stock,
        minus(before.stock, toastieTakes(["cheese", "vegemite"])),
        "one toastie's worth taken, once",
      );
    }),
  );

  test(
    "Unleash unreachable: jafflr serves with the flag file's flags, gordon on v1",
    h.withLogs(async () => {
      const unleashless = await startUnleashlessJafflr(h, stall);
      const v1 = await actClient(unleashless.url).post("/toastie", {
        json: { customer: "gordon", ingredients: ["cheese"] },
      });
      assert.equal(v1.status, 200, `${v1.status} ${v1.text}`);
      assert.equal(v1.body.pickedVia, "v1", "gordon is not on pick.v2 in the flag file");
    }),
  );
});
