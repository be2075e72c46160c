// verify.sh smoke against the real services: both started as processes on a throwaway database,
// reached through a fake `kubectl port-forward` that points at them. The smoke suite must pass
// against them, and leave the stock and the orders exactly as they were: it is what runs against
// production after every deploy. It must also fail when a service does not answer.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort, get, type ServiceProcess, startService, stopAll } from "testkit/service-process";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { versions } from "../lib/versions";
import { FakeTools } from "./fake-tools";
import { REPO_ROOT } from "./fixture-repo";

const VERIFY = join(REPO_ROOT, "scripts", "delivery", "verify.sh");

describe("verify.sh smoke, against the real services", () => {
  let db: TestDatabase;
  let chillybin: ServiceProcess;
  let jafflr: ServiceProcess;
  const fakes = new FakeTools();
  const expected = versions(REPO_ROOT);

  before(async () => {
    db = await createTestDatabase();
    chillybin = await startService("chillybin", {
      DATABASE_URL: db.url,
      VERSION: expected.get("chillybin") as string,
    });
    jafflr = await startService("jafflr", {
      CHILLYBIN_URL: chillybin.url,
      VERSION: expected.get("jafflr") as string,
    });
  });
  after(async () => {
    await stopAll();
    await db?.drop();
    fakes.remove();
  });

  /** Runs verify.sh with kubectl port-forward answering with these local ports. */
  function verify(ports: { jafflr: number; chillybin: number }) {
    fakes.reset(
      (["jafflr", "chillybin"] as const).map((service) => ({
        tool: "kubectl" as const,
        args: `--namespace shop-42 port-forward service/${service} :*`,
        stdout: `Forwarding from 127.0.0.1:${ports[service]} -> 7000\n`,
      })),
    );
    // Without NODE_TEST_CONTEXT, which would make verify.sh's own `node --test` report to this
    // test runner instead of printing its results and exit status as it does in a workflow.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    return spawnSync(VERIFY, ["smoke"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      env: { ...env, ...fakes.env(), NAMESPACE: "shop-42" },
      timeout: 120_000,
    });
  }

  const state = async () => {
    const read = async (path: string) =>
      JSON.parse((await get(new URL(path, chillybin.url), 5_000)).body);
    return { stock: await read("/"), orders: await read("/orders?limit=100") };
  };

  test("passes, and changes no stock and no order", async () => {
    const before = await state();
    const result = verify({ jafflr: jafflr.port, chillybin: chillybin.port });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /verify \(smoke\): jafflr at http:\/\/127\.0\.0\.1:\d+/);
    assert.match(result.stdout, /^# fail 0$/m);
    assert.doesNotMatch(result.stdout, /^# pass 0$/m);
    assert.deepEqual(fakes.calls(), [
      "kubectl --namespace shop-42 port-forward service/jafflr :7000",
      "kubectl --namespace shop-42 port-forward service/chillybin :7001",
    ]);
    assert.deepEqual(await state(), before);
  });

  test("fails when a service does not answer", async () => {
    const result = verify({ jafflr: jafflr.port, chillybin: await freePort() });
    assert.notEqual(result.status, 0, result.stdout);
    assert.match(result.stdout, /^# fail [1-9]/m);
  });
});
