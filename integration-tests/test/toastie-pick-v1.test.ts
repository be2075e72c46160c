/**
 * jafflr's v1 arm end to end, as the stall runs between the foxtrot's steps 2 and 3: a customer
 * the flag leaves on v1 gets the original's one `GET /pick` per ingredient. The v1 halves of the
 * happy path, the metrics and the cold-store-gone cases; their v2 halves stay in happy-path,
 * observability and faults. Deleted with v1.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { requestCount, scrapeStall } from "../src/prometheus";
import { eventually, needsOwnProcesses, type Stall, startStall } from "../src/stall";

describe("jafflr's v1 arm", needsOwnProcesses, () => {
  let stall: Stall;

  before(async () => {
    stall = await startStall();
  });

  after(async () => {
    await stall?.stop();
  });

  const stock = async () => (await stall.chillybinArrange.get("/")).body;
  /** The original's client: query form, no customer (anonymous, not on the flag). */
  const originalToastie = () => stall.jafflrAct.post("/toastie?i=cheese&i=vegemite");

  test("happy path: a customer without the flag is picked the old way, and exactly one toastie's worth is taken", async () => {
    await stall.chillybinArrange.post("/restock");
    const toastie = await originalToastie();
    assert.equal(toastie.status, 200, `${toastie.status} ${toastie.text}`);
    assert.equal(toastie.body.pickedVia, "v1", "a customer without the flag is picked the old way");
    const left = await stock();
    assert.equal(left.cheese, 9, `stock after the toastie: ${JSON.stringify(left)}`);
    assert.equal(left.vegemite, 9);
    assert.equal(left.bread, 8);
  });

  test("metrics: a v1 toastie is one POST /toastie at jafflr and four GET /pick at chillybin", async () => {
    const before = await scrapeStall(stall);
    const v1 = await originalToastie(); // cheese, vegemite, bread, bread
    assert.equal(v1.body.pickedVia, "v1", v1.text);
    const after = await scrapeStall(stall);
    const delta = (service: "jafflr" | "chillybin", labels: Record<string, string>) =>
      requestCount(after[service], labels) - requestCount(before[service], labels);
    assert.equal(delta("jafflr", { method: "POST", route: "/toastie", status_code: "200" }), 1);
    assert.equal(delta("chillybin", { method: "GET", route: "/pick", status_code: "200" }), 4);
  });

  test("chillybin gone: a v1 toastie gets 503 with Retry-After; once it is back, v1 toasties work", async () => {
    await stall.chillybinArrange.post("/restock");
    const stockBefore = await stock();
    await stall.chillybin.stop("SIGTERM");

    const reply = await originalToastie();
    assert.equal(reply.status, 503, `${reply.status} ${reply.text}`);
    assert.match(reply.contentType, /^application\/problem\+json/, reply.contentType);
    assert.equal(reply.body.status, 503);
    assert.match(reply.headers.get("retry-after") ?? "", /^\d+$/, "Retry-After in seconds");

    await stall.restartChillybin();
    const v1 = await eventually(
      async () => {
        const answer = await originalToastie();
        return answer.status === 200 ? answer : undefined;
      },
      { timeoutMs: 10_000, message: () => `v1 toasties did not work again\n${stall.logs()}` },
    );
    assert.equal(v1.body.pickedVia, "v1");
    const after = await stock();
    assert.deepEqual(
      [after.cheese, after.vegemite, after.bread],
      [stockBefore.cheese - 1, stockBefore.vegemite - 1, stockBefore.bread - 2],
      "nothing was picked while chillybin was down, one toastie's worth after",
    );
  });
});
