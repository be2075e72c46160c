/**
 * When the cold store cannot help: stock too short for a v2 toastie (409, and nothing taken), and
 * chillybin gone altogether (503 with Retry-After; jafflr stays ready, because readiness says
 * "this instance can work", and one dependency down must not take every jafflr out of its
 * Service at once) — then back on the same port, and jafflr notices by itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eventually } from "testkit/eventually";
import type { Reply } from "testkit/http-client";
import { needsOwnProcesses, type Stall, startStall } from "../src/stall";

describe("when the cold store is short or gone", needsOwnProcesses, () => {
  let stall: Stall;

  before(async () => {
    stall = await startStall();
  });

  after(async () => {
    await stall?.stop();
  });

  const stock = async () => (await stall.chillybinArrange.get("/")).body;
  const orders = async () => (await stall.chillybinArrange.get("/orders?limit=100")).body.orders;
  const gitasToastie = () =>
    stall.jafflrAct.post("/toastie", {
      json: { customer: "gita", ingredients: ["cheese", "vegemite"] },
    });

  test("no vegemite left: gita's v2 toastie is a 409 naming vegemite, and no stock changes", async () => {
    await stall.chillybinArrange.post("/restock");
    await stall.chillybinArrange.post("/restock", { json: { vegemite: 0 } });
    const stockBefore = await stock();
    const ordersBefore = await orders();
    assert.equal(stockBefore.vegemite, 0);

    const reply = await gitasToastie();
    assert.equal(reply.status, 409, `${reply.status} ${reply.text}`);
    assertProblem(reply, 409);
    assert.match(JSON.stringify(reply.body), /vegemite/, "the problem names the short ingredient");
    assert.doesNotMatch(
      JSON.stringify(reply.body.short ?? []),
      /cheese|bread/,
      "only vegemite is short",
    );

    assert.deepEqual(await stock(), stockBefore, "no cheese, bread or vegemite was taken");
    assert.deepEqual(await orders(), ordersBefore, "no order was recorded");
  });

  test("chillybin down: toasties get 503 with Retry-After while jafflr stays ready and says chillybin is unreachable; toasties work again when it is back", async () => {
    await stall.chillybinArrange.post("/restock");
    const stockBefore = await stock();
    const port = stall.chillybin.port;

    const exit = await stall.chillybin.stop("SIGTERM");
    assert.deepEqual(exit, { code: 0, signal: null }, "chillybin shut down cleanly");

    for (const order of [
      gitasToastie(), // v2
      stall.jafflrAct.post("/toastie?i=cheese&i=vegemite"), // anonymous: v1 until the foxtrot's step 3
      gitasToastie(), // now known to be down: answered without calling chillybin
    ]) {
      const reply = await order;
      assert.equal(reply.status, 503, `${reply.status} ${reply.text}`);
      assertProblem(reply, 503);
      assert.equal(
        reply.body.type,
        "https://toasties-galore.example/problems/cold-store-unavailable",
      );
      assert.equal(reply.body.title, "Cold store unavailable");
      const retryAfter = reply.headers.get("retry-after");
      assert.match(
        retryAfter ?? "",
        /^\d+$/,
        `Retry-After is a number of seconds, got ${retryAfter}`,
      );
    }
    const ready = await stall.jafflrAct.get("/ready");
    assert.equal(
      ready.status,
      200,
      `jafflr /ready with chillybin down: ${ready.status} ${ready.text}`,
    );
    const health = await stall.jafflrAct.get("/health");
    assert.equal(health.status, 200, "jafflr itself stays alive (liveness)");
    const seen = (await stall.jafflrAct.get("/")).body.chillybin;
    assert.equal(seen.reachable, false, JSON.stringify(seen));
    assert.ok(!Number.isNaN(Date.parse(seen.checkedAt)), JSON.stringify(seen));
    assert.match((await stall.jafflrAct.get("/metrics")).text, /jafflr_chillybin_up(\{[^}]*\})? 0/);

    const restarted = await stall.restartChillybin();
    assert.equal(restarted.port, port);
    await eventually(
      async () => ((await stall.jafflrAct.get("/")).body.chillybin.reachable ? true : undefined),
      {
        timeoutMs: 30_000,
        message: () => `jafflr did not see chillybin back\n${stall.logs()}`,
      },
    );
    assert.match((await stall.jafflrAct.get("/metrics")).text, /jafflr_chillybin_up(\{[^}]*\})? 1/);
    assert.deepEqual(await stock(), stockBefore, "nothing was picked while chillybin was down");

    const v2 = await gitasToastie();
    assert.equal(v2.status, 200, `${v2.status} ${v2.text}`);
    assert.equal(v2.body.pickedVia, "v2");
    const anonymous = await stall.jafflrAct.post("/toastie?i=cheese&i=vegemite"); // v1 until step 3
    assert.equal(anonymous.status, 200, `${anonymous.status} ${anonymous.text}`);
    const stockAfter = await stock();
    assert.deepEqual(
      [stockAfter.cheese, stockAfter.vegemite, stockAfter.bread],
      [stockBefore.cheese - 2, stockBefore.vegemite - 2, stockBefore.bread - 4],
    );
  });
});

/** An RFC 9457 problem: problem+json with the answer's status, a title, and no stack trace. */
function assertProblem(reply: Reply, status: number) {
  assert.match(reply.contentType, /^application\/problem\+json/, reply.contentType);
  assert.equal(reply.body.status, status);
  assert.equal(typeof reply.body.title, "string");
  assert.doesNotMatch(reply.text, /\n\s+at /, "no stack trace in the answer");
}
