/** The v1 arm (deleted by the foxtrot's step 3): one GET /pick per ingredient, not atomic. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import { pickV1 } from "../src/pick-v1";
import * as h from "./helpers";

const three = { customer: "gordon", ingredients: ["cheese", "ham", "bread"], idempotencyKey: "k" };

describe("pickV1", () => {
  it("picks each ingredient in order, one at a time", async () => {
    const { picked, requests } = await h.pickAgainst((_q, res) => res.end("ok"), pickV1, three);
    assert.deepEqual(picked, { via: "v1" });
    const urls = three.ingredients.map((n) => `GET /pick?name=${n}&quantity=1`);
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.url}`),
      urls,
    );
  });

  const short = [{ ingredient: "ham", requested: 1, available: 0 }];
  const cases: [string, h.Handler, number][] = [
    ["dropped after sending: never sent twice", (req) => req.socket.destroy(), 503],
    ["the original's 410 Gone", h.json(410, { title: "Gone", short }), 409],
    ["an unknown name", h.json(422, { unknown: ["ham"] }), 422],
    ["no /pick route (v1 deleted)", h.json(404, { title: "Not Found" }), 502],
  ];
  for (const [name, fail, status] of cases) {
    it(`${name} → ${status}, saying what was already taken`, async () => {
      const handle: h.Handler = (req, res, n) => (n === 1 ? res.end("ok") : fail(req, res, n));
      const { picked, requests } = await h.pickAgainst(handle, pickV1, three);
      assert.ok(picked.problem && picked.via === "v1");
      const { status: got, options } = picked.problem;
      assert.deepEqual([got, requests.length, options.extensions?.failedAt], [status, 2, "ham"]);
      assert.deepEqual(options.extensions?.taken, ["cheese"]);
      assert.match(options.detail ?? "", /Already taken before ham failed .*: cheese\./);
    });
  }

  it("a customer the flag leaves on v1 gets a v1 toastie, told to the page hook", async () => {
    const [cold, flags] = [await h.standInChillybin(), h.tempFlagFile(["gita"])];
    const seen: { pickedVia?: string }[] = [];
    const onToastie = (o: { pickedVia?: string }) => seen.push(o);
    const jafflr = await h.buildJafflr({
      chillybinUrl: cold.url,
      flagsFile: flags.file,
      onToastie,
    });
    const res = await request(jafflr.app).post("/toastie?i=cheese&customer=gordon");
    await Promise.all([jafflr.close(), cold.close(), flags.remove()]);
    assert.deepEqual([res.status, res.body.pickedVia, res.body.orderId], [200, "v1", undefined]);
    assert.deepEqual([cold.requests.length, seen[0]?.pickedVia], [3, "v1"]);
  });
});
