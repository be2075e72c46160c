/**
 * The stall page in Chromium while v1 still exists (./stall-page.ts), as between the foxtrot's
 * steps 2 and 3: customers the flag leaves on v1 show as v1 in the outcome, the recent toasties
 * and on the meter, and flipping `pick.v2` for one in the flag file moves his next toastie to v2.
 * Deleted with v1.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { openStallPage, type StallPage, WAIT } from "./stall-page";

describe("the stall page in Chromium, with v1", () => {
  let s: StallPage;
  before(async () => {
    s = await openStallPage(["gita"]); // bob and carol-curl go via v1
  });
  after(() => s?.close());

  it("bob orders: done, via v1, on the meter and in the recent toasties as v1", async () => {
    await s.order("bob", ["cheese", "ham"]);
    assert.match((await s.outcome.textContent()) ?? "", /Picked via v1/);
    await s.newest.getByText("bob").waitFor(WAIT);
    assert.match((await s.newest.textContent()) ?? "", /bob.*cheese, ham.*v1.*done/);
    await s.meterAbove("v1", 0);
  });

  it("a toastie ordered with curl by a customer on v1 appears in the recent toasties as v1", async () => {
    const json = { customer: "carol-curl", ingredients: ["cheese", "vegemite"], doneness: "burnt" };
    assert.equal((await s.stall.grill.post("/toastie", { json })).status, 200);
    await s.newest.getByText("carol-curl").waitFor(WAIT);
    assert.match((await s.newest.textContent()) ?? "", /cheese, vegemite.*burnt.*v1.*done/);
  });

  it("after pick.v2 is flipped on for bob in the flag file, his next toastie goes via v2", async () => {
    const v2Before = await s.meterToasties("v2");
    await s.stall.setV2For(["gita", "bob"]);
    // The flip reaches jafflr within a poll of the file; until then bob is still v1.
    const deadline = Date.now() + WAIT.timeout;
    do await s.order("bob", ["cheese"]);
    while (!/Picked via v2/.test((await s.outcome.textContent()) ?? "") && Date.now() < deadline);
    assert.match((await s.outcome.textContent()) ?? "", /Picked via v2/);
    await s.meterAbove("v2", v2Before);
    await s.newest.locator("span.via.v2").waitFor(WAIT);
    assert.deepEqual(s.problems, [], "no page error, CSP violation or dialog");
  });
});
