/**
 * pick.v2 from a real Unleash server (unleash-server, installed on first use into .cache/ by
 * scripts/dev/unleash-server.ts: ~190 MB, so not part of `npm test`; run it with
 * `npm run test:unleash -w integration-tests`): jafflr follows a flip made through the admin API
 * without a restart, and keeps its last known flags when Unleash goes away. It watches the v1/v2
 * choice, so the foxtrot's step 3 deletes it with the flag.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startUnleashServer, type UnleashServer } from "local-dev/unleash-server";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { eventually, type Stall, startStall } from "../src/stall";

describe("pick.v2 from a real Unleash server", () => {
  let unleashDb: TestDatabase | undefined;
  let unleash: UnleashServer | undefined;
  let s: Stall;

  before(
    async () => {
      unleashDb = await createTestDatabase();
      // Without the npm registry the install throws, failing these tests with the reason.
      unleash = await startUnleashServer({ databaseUrl: unleashDb.url });
      // Unlike the flag file (gita only), so v2 for ursula proves the flags came from Unleash.
      await unleash.admin.enableForUsers("pick.v2", ["gita", "ursula"]);
      s = await startStall({
        jafflrEnv: {
          UNLEASH_URL: unleash.apiUrl,
          UNLEASH_API_TOKEN: unleash.clientToken,
          UNLEASH_REFRESH_MS: "500",
          FLAGS_WAIT_MS: "15000",
        },
      });
      await s.cold.post("/restock", { json: { cheese: 1000, bread: 1000 } });
    },
    { timeout: 8 * 60_000 },
  );
  after(async () => {
    await s?.stop();
    await unleash?.stop();
    await unleashDb?.drop();
  });

  const pickedVia = async (customer: string) => {
    const reply = await s.grill.post("/toastie", { json: { customer, ingredients: ["cheese"] } });
    assert.equal(reply.status, 200, `${customer}: ${reply.status} ${reply.text}\n${s.logs()}`);
    return reply.body.pickedVia as string;
  };

  test("jafflr evaluates the flags Unleash serves, per customer; a flip moves gordon to v2 without a restart", async () => {
    assert.deepEqual(
      [await pickedVia("gita"), await pickedVia("ursula"), await pickedVia("gordon")],
      ["v2", "v2", "v1"],
    );
    await unleash?.admin.setUserIds("pick.v2", ["gita", "ursula", "gordon"]);
    await eventually(async () => ((await pickedVia("gordon")) === "v2" ? true : undefined), {
      timeoutMs: 10_000,
      message: () => `gordon is still on v1 after the flip\n${s.logs()}\n${unleash?.logs()}`,
    });
    assert.equal(s.jafflr.child.exitCode, null, "jafflr was not restarted");
    assert.equal(await pickedVia("anna"), "v1", "customers not in the list stay on v1");
  });

  test("with Unleash stopped, jafflr keeps serving with the last known flags", async () => {
    const pollErrors = () => s.jafflr.logs().match(/flag source error/g)?.length ?? 0;
    const before = pollErrors();
    await unleash?.stop();
    await eventually(() => (pollErrors() > before ? true : undefined), {
      timeoutMs: 10_000,
      message: () => `no failed poll of the stopped Unleash was logged\n${s.logs()}`,
    });
    assert.deepEqual(
      [await pickedVia("gordon"), await pickedVia("ursula"), await pickedVia("anna")],
      ["v2", "v2", "v1"],
    );
    assert.equal((await s.grill.get("/ready")).status, 200);
  });
});
