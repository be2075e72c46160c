/**
 * The stall page in Chromium while v1 still exists (./stall-page.ts), as between the foxtrot's
 * steps 2 and 3: customers the flag leaves on v1 are picked via v1 — in the outcome, the recent
 * toasties and on the meter — and flipping `pick.v2` for one in the flag file moves his next
 * toastie to v2 on the meter. The page's v2 world is stall-page.test.ts. Deleted with v1.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { pickV2FlagFile } from "testkit/flags";
import { actClient } from "testkit/http-client";
import { StallPage, WAIT } from "./stall-page";

describe("the stall page in Chromium, with v1", () => {
  let stall: StallPage;

  before(async () => {
    // Only gita on v2: bob and carol-curl go via v1.
    stall = await StallPage.open(pickV2FlagFile(["gita"]));
  });

  after(async () => {
    await stall?.close();
  });

  it("bob orders: done, via v1, on the meter and in the recent toasties as v1", async () => {
    await stall.order("bob", ["cheese", "ham"]);
    assert.match((await stall.outcome().textContent()) ?? "", /Picked via v1/);
    await stall.newest().getByText("bob").waitFor(WAIT);
    assert.match((await stall.newest().textContent()) ?? "", /bob.*cheese, ham.*v1.*done/);
    await stall.meterAbove("v1", 0);
  });

  it("a toastie ordered with curl by a customer on v1 appears in the recent toasties as v1", async () => {
    const res = await actClient(stall.jafflr.url).post("/toastie", {
      json: { customer: "carol-curl", ingredients: ["cheese", "vegemite"], doneness: "burnt" },
    });
    assert.equal(res.status, 200, res.text);
    await stall.newest().getByText("carol-curl").waitFor(WAIT);
    assert.match((await stall.newest().textContent()) ?? "", /cheese, vegemite.*burnt.*v1.*done/);
  });

  it("after pick.v2 is flipped on for bob in the flag file, his next toastie goes via v2 on the meter", async () => {
    const v2Before = await stall.meterPicks("v2");
    await writeFile(stall.flagsFile, JSON.stringify(pickV2FlagFile(["gita", "bob"])));
    // The flip reaches jafflr within a poll of the file; until then bob is still v1.
    const deadline = Date.now() + WAIT.timeout;
    let text = "";
    do {
      await stall.order("bob", ["cheese"]);
      text = (await stall.outcome().textContent()) ?? "";
    } while (!/Picked via v2/.test(text) && Date.now() < deadline);
    assert.match(text, /Picked via v2/);
    await stall.meterAbove("v2", v2Before);
    await stall.newest().locator("span.via.v2").waitFor(WAIT);
    assert.match((await stall.newest().textContent()) ?? "", /bob.*v2/);
  });

  it("shows all this without a page error, CSP violation or dialog", () => {
    assert.deepEqual(stall.problems, []);
  });
});
