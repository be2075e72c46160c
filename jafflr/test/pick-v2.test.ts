/**
 * The v2 arm: what it sends, and each chillybin answer mapped to the customer's problem. The
 * retries themselves are the transport's (chillybin-client.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { countItems, pickV2 } from "../src/pick-v2";
import { json, pickAgainst } from "./helpers";

describe("pickV2", () => {
  it("sends one POST /v2/pick with the counted items and the Idempotency-Key", async () => {
    const { picked, requests } = await pickAgainst(json(200, { id: 42 }), pickV2);
    assert.deepEqual(picked, { via: "v2", ok: true, orderId: "42" });
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
    assert.deepEqual(countItems(["b", "a", "b"]), [
      { ingredient: "b", quantity: 2 },
      { ingredient: "a", quantity: 1 },
    ]);
  });

  const short = [{ ingredient: "cheese", requested: 1, available: 0 }];
  const reused = "https://toasties-galore.example/problems/idempotency-key-reused";
  const cases = [
    [
      "refused",
      "refused",
      503,
      "Cold store unavailable",
      /could not be reached \(ECONNREFUSED\)/,
      "2",
    ],
    ["silent", () => {}, 503, "Cold store unavailable", /did not answer in time/, "2"],
    [
      "503 with Retry-After",
      json(503, { detail: "db down" }, { "Retry-After": "7" }),
      503,
      "Cold store unavailable",
      /answered 503: db down/,
      "7",
    ],
    ["500", json(500, {}), 503, "Cold store unavailable", /answered 500/, "2"],
    ["200 without an id", json(200, {}), 502, "Cold store error", /without an order id/],
    [
      "404 (no route)",
      json(404, { title: "Not Found" }),
      502,
      "Cold store error",
      /does not serve \/v2\/pick/,
    ],
    ["409 short", json(409, { short }), 409, "Out of stock", /Not enough cheese/],
    [
      "422 unknown",
      json(422, { unknown: ["caviar"] }),
      422,
      "Unknown ingredient",
      /does not stock caviar/,
    ],
    [
      "404 unknown (older chillybin)",
      json(404, { unknown: ["caviar"] }),
      422,
      "Unknown ingredient",
      /caviar/,
    ],
    [
      "422 key reused",
      json(422, { type: reused, detail: "used before" }),
      422,
      "Idempotency-Key reused",
      /^used before$/,
    ],
    [
      "400 other refusal",
      json(400, { title: "Bad Request", detail: "no" }),
      422,
      "Order rejected",
      /\(400 Bad Request\): no\./,
    ],
  ] as const;
  for (const [name, handle, status, title, detail, retryAfter] of cases) {
    it(`${name} → ${status} ${title}`, async () => {
      const { picked } = await pickAgainst(handle, pickV2);
      assert.ok(!picked.ok && picked.via === "v2");
      const p = picked.problem;
      assert.deepEqual([p.status, p.title], [status, title]);
      assert.match(p.options.detail ?? "", detail);
      assert.equal(p.options.headers?.["Retry-After"], retryAfter);
      if (name === "409 short") assert.deepEqual(p.options.extensions?.short, short);
      if (name === "422 unknown") assert.deepEqual(p.options.extensions?.unknown, ["caviar"]);
    });
  }
});
