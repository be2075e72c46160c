/**
 * pick.v2 with no Unleash server: jafflr evaluates the flag file (Unleash client-features format),
 * gita on, everyone else off — and an edit to that file changes who gets v2 without a restart.
 * What it watches is the v1/v2 choice, so the foxtrot's step 3 deletes it with the flag
 * (jafflr/test/features.test.ts keeps testing the flag client itself).
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { eventually } from "testkit/eventually";
import { REPO_ROOT } from "testkit/service-process";
import { needsOwnProcesses, type Stall, startStall } from "../src/stall";

const REPO_FLAGS = path.join(REPO_ROOT, "jafflr", "flags", "features.json");
const PLENTY = { cheese: 1000, vegemite: 1000, bread: 1000 };

describe("pick.v2 from the flag file", needsOwnProcesses, () => {
  let stall: Stall;
  let dir: string;
  let flagsFile: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "jafflr-flags-"));
    flagsFile = path.join(dir, "features.json");
    await writeFile(flagsFile, await readFile(REPO_FLAGS));
    stall = await startStall({ jafflrEnv: { FLAGS_FILE: flagsFile, FLAGS_POLL_MS: "100" } });
    await stall.chillybinArrange.post("/restock", { json: PLENTY });
  });

  after(async () => {
    await stall?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const toastie = (customer: string) =>
    stall.jafflrAct.post("/toastie", { json: { customer, ingredients: ["cheese", "vegemite"] } });
  const stock = async () => (await stall.chillybinArrange.get("/")).body;
  const ordersOf = async (customer: string) =>
    (await stall.chillybinArrange.get(`/orders?customer=${encodeURIComponent(customer)}`)).body
      .orders as {
      id: unknown;
      customer: string;
      items: { ingredient: string; quantity: number }[];
    }[];

  test("gita's toastie goes through v2 and is recorded as one order with all its items", async () => {
    const before = await stock();
    const reply = await toastie("gita");
    assert.equal(reply.status, 200, `${reply.status} ${reply.text}`);
    assert.equal(reply.body.pickedVia, "v2");
    assert.ok(reply.body.orderId !== undefined, `an order id in ${reply.text}`);

    const orders = await ordersOf("gita");
    assert.equal(orders.length, 1, JSON.stringify(orders));
    const [order] = orders;
    assert.equal(String(order?.id), String(reply.body.orderId));
    assert.equal(order?.customer, "gita");
    assert.deepEqual(byName(order?.items ?? []), [
      { ingredient: "bread", quantity: 2 },
      { ingredient: "cheese", quantity: 1 },
      { ingredient: "vegemite", quantity: 1 },
    ]);
    const after = await stock();
    assert.deepEqual(
      [after.cheese, after.vegemite, after.bread],
      [before.cheese - 1, before.vegemite - 1, before.bread - 2],
    );
  });

  test("gordon's toastie goes through v1 and records no order", async () => {
    const before = await stock();
    const reply = await toastie("gordon");
    assert.equal(reply.status, 200, `${reply.status} ${reply.text}`);
    assert.equal(reply.body.pickedVia, "v1");
    assert.equal(reply.body.orderId, undefined);
    assert.deepEqual(await ordersOf("gordon"), []);
    const after = await stock();
    assert.deepEqual(
      [after.cheese, after.vegemite, after.bread],
      [before.cheese - 1, before.vegemite - 1, before.bread - 2],
    );
  });

  test("adding gordon to the flag file moves him to v2 without restarting jafflr", async () => {
    const flags = JSON.parse(await readFile(flagsFile, "utf8"));
    const constraint = flags.features
      .find((f: { name: string }) => f.name === "pick.v2")
      .strategies[0].constraints.find((c: { contextName: string }) => c.contextName === "userId");
    assert.deepEqual(constraint.values, ["gita"], "the repo's flag file turns v2 on for gita only");
    constraint.values = ["gita", "gordon"];
    // Write-and-rename, as an editor or a config-map update does: never a half-written file.
    const staging = `${flagsFile}.tmp`;
    await writeFile(staging, JSON.stringify(flags, null, 2));
    await rename(staging, flagsFile);

    const moved = await eventually(
      async () => {
        const reply = await toastie("gordon");
        assert.equal(reply.status, 200, `${reply.status} ${reply.text}`);
        return reply.body.pickedVia === "v2" ? reply : undefined;
      },
      {
        timeoutMs: 5_000,
        intervalMs: 200,
        message: () => `gordon is still picked via v1 after the flag file changed\n${stall.logs()}`,
      },
    );
    const orders = await ordersOf("gordon");
    assert.deepEqual(
      orders.map((o) => String(o.id)),
      [String(moved.body.orderId)],
      "gordon's first v2 toastie is his only order",
    );
    assert.equal(stall.jafflr.child.exitCode, null, "jafflr was not restarted");
    const gita = await toastie("gita");
    assert.equal(gita.body.pickedVia, "v2", "gita keeps v2");
    const anonymous = await stall.jafflrAct.post("/toastie?i=cheese");
    assert.equal(anonymous.body.pickedVia, "v1", "customers not in the list stay on v1");
  });
});

function byName<T extends { ingredient: string }>(items: T[]): T[] {
  return [...items].sort((a, b) => a.ingredient.localeCompare(b.ingredient));
}
