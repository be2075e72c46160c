/**
 * When the cold store cannot help: stock too short for a v2 toastie (409, and nothing taken), and
 * chillybin gone altogether (503 with Retry-After, jafflr not ready) — then back on the same port.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Reply } from "../src/http-client";
import { eventually, needsOwnProcesses, type Stall, startStall } from "../src/stall";

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

  test("chillybin down: toasties get 503 with Retry-After, jafflr is not ready; both recover when it is back", async () => {
    await stall.chillybinArrange.post("/restock");
    const stockBefore = await stock();
    const port = stall.chillybin.port;

    const exit = await stall.chillybin.stop("SIGTERM");
    assert.deepEqual(exit, { code: 0, signal: null }, "chillybin shut down cleanly");

    // (the v1 arm's 503 and recovery: toastie-pick-v1.test.ts)
    const reply = await gitasToastie();
    assert.equal(reply.status, 503, `${reply.status} ${reply.text}`);
    assertProblem(reply, 503);
    const retryAfter = reply.headers.get("retry-after");
    assert.match(
      retryAfter ?? "",
      /^\d+$/,
      `Retry-After is a number of seconds, got ${retryAfter}`,
    );
    const ready = await stall.jafflrAct.get("/ready");
    assert.equal(
      ready.status,
      503,
      `jafflr /ready with chillybin down: ${ready.status} ${ready.text}`,
    );
    const health = await stall.jafflrAct.get("/health");
    assert.equal(health.status, 200, "jafflr itself stays alive (liveness)");

    const restarted = await stall.restartChillybin();
    assert.equal(restarted.port, port);
    await eventually(
      async () => ((await stall.jafflrAct.get("/ready")).status === 200 ? true : undefined),
      { timeoutMs: 10_000, message: () => `jafflr did not become ready again\n${stall.logs()}` },
    );
    assert.deepEqual(await stock(), stockBefore, "nothing was picked while chillybin was down");

    const v2 = await gitasToastie();
    assert.equal(v2.status, 200, `${v2.status} ${v2.text}`);
    assert.equal(v2.body.pickedVia, "v2");
    const stockAfter = await stock();
    assert.deepEqual(
      [stockAfter.cheese, stockAfter.vegemite, stockAfter.bread],
      [stockBefore.cheese - 1, stockBefore.vegemite - 1, stockBefore.bread - 2],
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
