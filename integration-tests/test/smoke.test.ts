// scripts/delivery/verify.sh smoke against the real services (processes on a throwaway database),
// reached through a fake `kubectl port-forward`: the smoke suite passes and leaves stock, orders
// and the counts the foxtrot reads as they were (it runs against production), and fails when a
// service does not answer.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { versions } from "delivery/lib/versions";
import { FakeTools, REPO_ROOT, type Rule } from "delivery/test/helpers";
import { actClient } from "testkit/http-client";
import { freePort, get, type ServiceProcess, startService, stopAll } from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";

const fakes = new FakeTools();
const expected = versions(REPO_ROOT);
let db: TestDatabase;
let chillybin: ServiceProcess;
let jafflr: ServiceProcess;
before(async () => {
  db = await createTestDatabase();
  chillybin = await startService("chillybin", {
    DATABASE_URL: db.url,
    VERSION: expected.get("chillybin") ?? "",
  });
  jafflr = await startService("jafflr", {
    CHILLYBIN_URL: chillybin.url,
    VERSION: expected.get("jafflr") ?? "",
    COOK_TIME_SCALE: "0",
  });
  // One toastie first, so there are counts for the smoke to leave alone.
  const json = { customer: "ann", ingredients: ["cheese"] };
  const order = await actClient(jafflr.url).post("/toastie", { json, timeoutMs: 10_000 });
  assert.equal(order.status, 200, order.text);
});
after(async () => {
  await stopAll();
  await db?.drop();
  fakes.remove();
});

/** verify.sh smoke, with kubectl port-forward answering with these local ports. */
function verify(ports: Record<"jafflr" | "chillybin", number>) {
  const forward = (service: "jafflr" | "chillybin"): Rule => [
    "kubectl",
    `--namespace shop-42 port-forward service/${service} :*`,
    `Forwarding from 127.0.0.1:${ports[service]} -> 7000\n`,
  ];
  // Without NODE_TEST_CONTEXT, verify.sh's `node --test` prints its results as in a workflow.
  const env = { NODE_TEST_CONTEXT: undefined, NAMESPACE: "shop-42" };
  return fakes.run("verify.sh", ["smoke"], [forward("jafflr"), forward("chillybin")], {
    env,
    cwd: REPO_ROOT,
  });
}

const state = async () => {
  const read = async (path: string) =>
    JSON.parse((await get(new URL(path, chillybin.url), 5_000)).body);
  // Counted picks and toasties (v1 calls by caller, toasties by dialect): what the foxtrot reads.
  const counts = await Promise.all(
    [chillybin, jafflr].map(async ({ url }) =>
      (await get(new URL("/metrics", url), 5_000)).body
        .split("\n")
        .filter((line) => /^(?!http_)\w*(pick|toastie)\w*[{ ]/.test(line)),
    ),
  );
  return { stock: await read("/"), orders: await read("/orders?limit=100"), counts };
};

test("passes, and changes no stock, no order and no count the foxtrot reads", async () => {
  const before = await state();
  const result = verify({ jafflr: jafflr.port, chillybin: chillybin.port });
  assert.equal(result.status, 0, result.log);
  assert.match(result.stdout, /^# fail 0$/m);
  assert.doesNotMatch(result.stdout, /^# pass 0$/m);
  assert.deepEqual(result.calls, [
    "kubectl --namespace shop-42 port-forward service/jafflr :7000",
    "kubectl --namespace shop-42 port-forward service/chillybin :7001",
  ]);
  assert.ok(
    before.counts.flat().some((line) => line.startsWith("toasties_total{")),
    "counted",
  );
  assert.deepEqual(await state(), before);
});

test("fails when a service does not answer", async () => {
  const result = verify({ jafflr: jafflr.port, chillybin: await freePort() });
  assert.match(result.stdout, /^# fail [1-9]/m);
  assert.notEqual(result.status, 0);
});
