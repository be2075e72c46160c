/** Reading an order: the same rules and words as chillybin's, every problem at once. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HttpProblem } from "tpi";
import { isValidCustomer, parseIdempotencyKey, parseToastieOrder } from "../src/toastie";

type Where = { pointer?: string; parameter?: string; detail: string };
const errorsOf = (p: HttpProblem) => (p.options.extensions?.errors ?? []) as Where[];

function problemOf(fn: () => unknown): HttpProblem {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpProblem && err.status === 400 && err.title === "Invalid request");
    assert.equal(
      err.options.detail,
      errorsOf(err)
        .map((e) => e.detail)
        .join("; "),
    );
    return err;
  }
  assert.fail("expected a 400 problem");
}
const q = (query: Record<string, unknown>) => ({ query, body: undefined });
const b = (body: unknown) => ({ query: {}, body });

describe("parseToastieOrder", () => {
  it("reads the query form or a JSON body, defaulting doneness and customer", () => {
    const order = (customer: string, ingredients: string[], doneness: string) => ({
      customer,
      ingredients,
      doneness,
    });
    assert.deepEqual(
      parseToastieOrder(q({ i: ["cheese", "ham"] })),
      order("anonymous", ["cheese", "ham"], "light"),
    );
    assert.deepEqual(
      parseToastieOrder(q({ i: "sheese", doneness: "burnt", customer: "gita" })),
      order("gita", ["sheese"], "burnt"),
    );
    assert.deepEqual(
      parseToastieOrder(q({ i: "cheese" })),
      order("anonymous", ["cheese"], "light"),
    );
    const ten = ["cheese", ...Array(9).fill("ham")];
    assert.deepEqual(
      parseToastieOrder(b({ ingredients: ten, customer: "👩‍🍳", doneness: "well-done" })),
      order("👩‍🍳", ten, "well-done"),
    );
  });

  const bad: [string, { query: Record<string, unknown>; body: unknown }, RegExp][] = [
    ["nothing", q({}), /^name at least one ingredient, including cheese$/],
    ["an empty list", b({ ingredients: [] }), /^ingredients must have 1 to 10 ingredients, got 0$/],
    ["eleven", b({ ingredients: Array(11).fill("cheese") }), /1 to 10 ingredients, got 11$/],
    [
      "no cheese",
      q({ i: ["vegemite", "ham"] }),
      /^No cheese on this toastie: add cheese or sheese$/,
    ],
    ["capitals", q({ i: ["Cheese"] }), /^"Cheese" is not an ingredient name: use 1-32 lowercase/],
    ["a number", b({ ingredients: ["cheese", 7] }), /^each ingredient must be a string$/],
    [
      "not a list",
      b({ ingredients: "cheese" }),
      /^ingredients must be a list of ingredient names$/,
    ],
    ["a nested query field", q({ i: { a: "cheese" } }), /^i must be a list of ingredient names$/],
    ["a bad doneness", q({ i: "cheese", doneness: "raw" }), /one of light, .*, burnt, got "raw"$/],
    ["a blank customer", b({ ingredients: ["cheese"], customer: " " }), /^customer must be 1-64/],
    ["an unknown field", b({ ingredients: ["cheese"], size: "xl" }), /^unknown field "size"; exp/],
    ["an unknown parameter", q({ i: "cheese", x: "1" }), /^unknown parameter "x"; expected cus/],
    ["body and query", { query: { i: "cheese" }, body: { ingredients: [] } }, /not both$/],
    ["a JSON array", b(["cheese"]), /^the body must be a JSON object like {"ingredients"/],
  ];
  for (const [name, input, detail] of bad) {
    it(`refuses ${name}`, () =>
      assert.match(problemOf(() => parseToastieOrder(input)).message, detail));
  }

  it("lists every problem at once, each where it is", () => {
    const body = problemOf(() =>
      parseToastieOrder(b({ ingredients: ["ham", "Ham"], doneness: "raw", customer: "" })),
    );
    const where = errorsOf(body).map((e) => e.pointer);
    assert.deepEqual(where, ["/ingredients/1", "/doneness", "/customer"]);
    const query = problemOf(() => parseToastieOrder(q({ i: "ham", doneness: "raw" })));
    assert.deepEqual(
      errorsOf(query).map((e) => e.parameter),
      ["i", "doneness"],
    );
  });

  it("agrees with chillybin on customers", () => {
    for (const good of ["👩‍🍳", "Gita 🧀", "José", "g".repeat(64), "Mary Jane"])
      assert.ok(isValidCustomer(good), good);
    for (const bad of [
      "",
      " ",
      " gita",
      "gita ",
      "g".repeat(65),
      "gi\u0000ta",
      "a\u2028b",
      "\u202egita",
      "\u200d",
    ]) {
      assert.ok(!isValidCustomer(bad), JSON.stringify(bad));
    }
  });
});

describe("parseIdempotencyKey", () => {
  it("passes a key of 1-255 visible ASCII through, allows none, and names the header otherwise", () => {
    for (const key of ["order-123", "k".repeat(255), undefined])
      assert.equal(parseIdempotencyKey(key), key);
    for (const bad of ["", "has space", "é", "k".repeat(256), ["a", "b"]]) {
      const errors = problemOf(() => parseIdempotencyKey(bad)).options.extensions?.errors;
      assert.deepEqual(errors, [
        {
          header: "Idempotency-Key",
          detail: "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)",
        },
      ]);
    }
  });
});
