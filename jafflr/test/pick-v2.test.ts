/**
 * The v2 arm: what it sends, and each chillybin answer mapped to the customer's problem. The
 * retries themselves are the transport's (chillybin-client.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pickV2 } from "../src/pick-v2";
import { PROBLEMS, type ProblemName, problemType } from "../src/problems";
import { type Handler, json, pickAgainst } from "./helpers";

describe("pickV2", () => {
  it("sends one POST /v2/pick with the items counted in first-seen order and the Idempotency-Key", async () => {
    const { picked, requests } = await pickAgainst(json(200, { id: 42 }), pickV2);
    assert.deepEqual(picked, { via: "v2", orderId: "42" });
    assert.equal(requests.length, 1);
    const [r] = requests;
    assert.equal(`${r?.method} ${r?.url} ${r?.headers["idempotency-key"]}`, "POST /v2/pick k-1");
    assert.deepEqual(JSON.parse(r?.body ?? ""), {
      customer: "gita",
      items: [
        { ingredient: "cheese", quantity: 1 },
        { ingredient: "bread", quantity: 2 },
      ],
    });
  });

  const short = [{ ingredient: "cheese", requested: 1, available: 0 }];
  const reused = "https://toasties-galore.example/problems/idempotency-key-reused";
  const [down, bad] = ["cold-store-unavailable", "cold-store-error"] as const;
  const cases: [string, Handler | "refused", ProblemName, RegExp, string?][] = [
    ["refused", "refused", down, /could not be reached \(ECONNREFUSED\)/, "2"],
    ["silent", () => {}, down, /did not answer in time/, "2"],
    ["503", json(503, { detail: "db down" }, { "Retry-After": "7" }), down, /503: db down/, "7"],
    ["500", json(500, {}), down, /answered 500/, "2"],
    ["200 without an id", json(200, {}), bad, /without an order id/],
    ["404 (no route)", json(404, { title: "Not Found" }), bad, /does not serve \/v2\/pick/],
    ["409 short", json(409, { short }), "out-of-stock", /Not enough cheese/],
    ["422 unknown", json(422, { unknown: ["caviar"] }), "unknown-ingredient", /stock caviar/],
    ["404 unknown (older chillybin)", json(404, { unknown: ["ham"] }), "unknown-ingredient", /ham/],
    [
      "422 key reused",
      json(422, { type: reused, detail: "used" }),
      "idempotency-key-reused",
      /^used$/,
    ],
    ["other 4xx", json(400, { title: "Bad", detail: "no" }), "order-rejected", /\(400 Bad\): no\./],
  ];
  for (const [name, handle, type, detail, retryAfter] of cases) {
    it(`${name} → ${type}`, async () => {
      const { picked } = await pickAgainst(handle, pickV2);
      const p = picked.problem;
      assert.ok(p && picked.via === "v2");
      assert.deepEqual([p.status, p.title, p.options.type], [...PROBLEMS[type], problemType(type)]);
      assert.match(p.options.detail ?? "", detail);
      assert.equal(p.options.headers?.["Retry-After"], retryAfter);
      if (name === "409 short") assert.deepEqual(p.options.extensions?.short, short);
      if (name === "422 unknown") assert.deepEqual(p.options.extensions?.unknown, ["caviar"]);
    });
  }
});
