/**
 * pick.v2 from a real Unleash server that this suite starts itself (unleash-server, installed on
 * first use into .cache/ — see scripts/dev/unleash-server.ts) on a database of its own: jafflr follows
 * a flip made through the admin API without a restart, and keeps its last known flags when
 * Unleash goes away.
 * What it watches is the v1/v2 choice, so the foxtrot's step 3 deletes it with the flag
 * (jafflr/test/features.test.ts keeps testing the flag client itself).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startUnleashServer, type UnleashServer } from "local-dev/unleash-server";
import { eventually } from "testkit/eventually";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { needsOwnProcesses, type Stall, startStall } from "../src/stall";

const REFRESH_MS = 500;
const PLENTY = { cheese: 1000, vegemite: 1000, bread: 1000 };

describe("pick.v2 from a real Unleash server", needsOwnProcesses, () => {
  let unleashDb: TestDatabase | undefined;
  let unleash: UnleashServer | undefined;
  let stall: Stall;

  before(
    async () => {
      // Unleash starts (and first migrates its database, the slow part) while chillybin does.
      const unleashStarted = (async () => {
        unleashDb = await createTestDatabase();
        // Installs unleash-server on first use; without the npm registry that throws, failing
        // these tests with the reason (they must not pass, or be skipped, without having run).
        unleash = await startUnleashServer({ databaseUrl: unleashDb.url });
        // Unlike the flag file (gita only), so v2 for ursula proves the flags came from Unleash.
        await unleash.admin.enableForUsers("pick.v2", ["gita", "ursula"]);
        return {
          UNLEASH_URL: unleash.apiUrl,
          UNLEASH_API_TOKEN: unleash.clientToken,
          UNLEASH_REFRESH_MS: String(REFRESH_MS),
          FLAGS_WAIT_MS: "15000",
        };
      })();
      stall = await startStall({ jafflrEnv: unleashStarted });
      await stall.chillybinArrange.post("/restock", { json: PLENTY });
    },
    { timeout: 8 * 60_000 },
  );

  after(async () => {
    await stall?.stop();
    await unleash?.stop();
    await unleashDb?.drop();
  });

  const pickedVia = async (customer: string) => {
    const reply = await stall.jafflrAct.post("/toastie", {
      json: { customer, ingredients: ["cheese"] },
    });
    assert.equal(reply.status, 200, `${customer}: ${reply.status} ${reply.text}\n${stall.logs()}`);
    return reply.body.pickedVia as string;
  };
  const unleashLogs = () => `--- unleash ---\n${unleash?.logs() ?? ""}`;

  test("jafflr evaluates the flags Unleash serves, per customer", async () => {
    assert.equal(await pickedVia("gita"), "v2");
    assert.equal(
      await pickedVia("ursula"),
      "v2",
      "ursula is on in Unleash only, not in the flag file",
    );
    assert.equal(await pickedVia("gordon"), "v1");
  });

  test("flipping gordon on in Unleash moves him to v2 without restarting jafflr", async () => {
    assert.ok(unleash);
    await unleash.admin.setUserIds("pick.v2", ["gita", "ursula", "gordon"]);
    await eventually(async () => ((await pickedVia("gordon")) === "v2" ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 200,
      message: () =>
        `gordon is still on v1 after the flip in Unleash\n${stall.logs()}\n${unleashLogs()}`,
    });
    assert.equal(stall.jafflr.child.exitCode, null, "jafflr was not restarted");
    assert.equal(await pickedVia("anna"), "v1", "customers not in the list stay on v1");
  });

  test("with Unleash stopped, jafflr keeps serving with the last known flags", async () => {
    assert.ok(unleash);
    const pollErrors = () => stall.jafflr.logs().match(/flag source error/g)?.length ?? 0;
    const pollErrorsBefore = pollErrors();
    await unleash.stop();
    // Until a poll has failed against the stopped server (jafflr logs the first failure).
    await eventually(async () => (pollErrors() > pollErrorsBefore ? true : undefined), {
      timeoutMs: 20 * REFRESH_MS,
      intervalMs: 100,
      message: () => `no failed poll of the stopped Unleash was logged\n${stall.logs()}`,
    });
    assert.equal(await pickedVia("gordon"), "v2", "gordon keeps the flag Unleash last gave him");
    assert.equal(await pickedVia("ursula"), "v2");
    assert.equal(await pickedVia("anna"), "v1");
    const ready = await stall.jafflrAct.get("/ready");
    assert.equal(ready.status, 200, `jafflr /ready without Unleash: ${ready.status} ${ready.text}`);
    assert.equal(stall.jafflr.child.exitCode, null, `jafflr is still running\n${stall.logs()}`);
  });
});
