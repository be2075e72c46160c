/** The v1 arm (deleted by the foxtrot's step 3): one GET /pick per ingredient, not atomic. */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import request from "supertest";
import { pickV1 } from "../src/pick-v1";

import {
  buildJafflr,
  type Handler,
  json,
  pickAgainst,
  standInChillybin,
  tempFlagFile,
} from "./helpers";

const order = (...ingredients: string[]) => ({
  customer: "gordon",
  ingredients,
  idempotencyKey: "k",
});
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

describe("pickV1", () => {
  it("picks each ingredient in order, one at a time", async () => {
    const ok: Handler = (_req, res) => res.end("ok");
    const { picked, requests } = await pickAgainst(ok, pickV1, order("cheese", "ham", "bread"));
    assert.deepEqual(picked, { via: "v1", ok: true });
    const names = requests.map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(
      names,
      ["cheese", "ham", "bread"].map((n) => `GET /pick?name=${n}&quantity=1`),
    );
  });

  const gone = json(410, {
    title: "Gone",
    short: [{ ingredient: "ham", requested: 1, available: 0 }],
  });
  const cases = [
    ["dropped after sending: never sent twice", ((req) => req.socket.destroy()) as Handler, 503, 2],
    ["the original's 410 Gone", gone, 409, 2],
    ["an unknown name", json(422, { unknown: ["ham"] }), 422, 2],
    ["no /pick route (v1 deleted)", json(404, { title: "Not Found" }), 502, 2],
  ] as const;
  for (const [name, fail, status, sent] of cases) {
    it(`${name} → ${status}, saying what was already taken`, async () => {
      const handle: Handler = (req, res, n) => (n === 1 ? res.end("ok") : fail(req, res, n));
      const { picked, requests } = await pickAgainst(
        handle,
        pickV1,
        order("cheese", "ham", "bread"),
      );
      assert.ok(!picked.ok && picked.via === "v1");
      assert.equal(picked.problem.status, status);
      assert.equal(requests.length, sent);
      assert.deepEqual(picked.problem.options.extensions?.taken, ["cheese"]);
      assert.equal(picked.problem.options.extensions?.failedAt, "ham");
      assert.match(
        picked.problem.options.detail ?? "",
        /Already taken before ham failed .*: cheese\./,
      );
    });
  }

  it("a customer the flag leaves on v1 gets a v1 toastie, told to the page hook", async () => {
    const cold = await standInChillybin();
    const flags = tempFlagFile(["gita"]);
    const seen: { pickedVia?: string }[] = [];
    const jafflr = await buildJafflr({
      chillybinUrl: cold.url,
      flagsFile: flags.file,
      onToastie: (o) => seen.push(o),
    });
    cleanups.push(cold.close, flags.remove, jafflr.close);
    const res = await request(jafflr.app).post("/toastie?i=cheese&customer=gordon");
    assert.deepEqual([res.status, res.body.pickedVia, res.body.orderId], [200, "v1", undefined]);
    assert.equal(cold.requests.length, 3);
    assert.equal(seen[0]?.pickedVia, "v1");
  });
});
