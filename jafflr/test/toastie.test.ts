import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HttpProblem } from "tpi";
import {
  isValidCustomer,
  parseIdempotencyKey,
  parseQueryOrder,
  parseToastieOrder,
  withBread,
} from "../src/toastie";

function problemOf(fn: () => unknown): HttpProblem {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpProblem, `expected an HttpProblem, got ${err}`);
    return err;
  }
  assert.fail("expected a 400 problem");
}

describe("parseToastieOrder", () => {
  it("reads the original's query form, defaulting doneness and customer", () => {
    assert.deepEqual(parseToastieOrder({ query: { i: ["cheese", "vegemite"] }, body: undefined }), {
      customer: "anonymous",
      ingredients: ["cheese", "vegemite"],
      doneness: "light",
    });
    assert.deepEqual(
      parseToastieOrder({
        query: { i: "sheese", doneness: "burnt", customer: "gita" },
        body: undefined,
      }),
      { customer: "gita", ingredients: ["sheese"], doneness: "burnt" },
    );
  });

  it("reads a JSON body", () => {
    assert.deepEqual(
      parseToastieOrder({
        query: {},
        body: {
          customer: "Gita 🧀",
          ingredients: ["cheese", "ham", "cheese"],
          doneness: "well-done",
        },
      }),
      { customer: "Gita 🧀", ingredients: ["cheese", "ham", "cheese"], doneness: "well-done" },
    );
  });

  const bad: [string, { query: Record<string, unknown>; body: unknown }, RegExp][] = [
    ["no ingredients at all", { query: {}, body: undefined }, /name at least one ingredient/],
    ["empty list", { query: {}, body: { ingredients: [] } }, /1 to 10 ingredients, got 0/],
    [
      "eleven ingredients",
      { query: {}, body: { ingredients: ["cheese", ...Array(10).fill("ham")] } },
      /1 to 10 ingredients, got 11/,
    ],
    [
      "no cheese",
      { query: { i: ["vegemite", "ham"] }, body: undefined },
      /No cheese on this toastie/,
    ],
    [
      "capitals",
      { query: { i: ["Cheese"] }, body: undefined },
      /"Cheese" is not an ingredient name/,
    ],
    [
      "spaces",
      { query: {}, body: { ingredients: ["cheese", "blue cheese"] } },
      /is not an ingredient name/,
    ],
    [
      "too long a name",
      { query: {}, body: { ingredients: ["cheese", "a".repeat(33)] } },
      /not an ingredient/,
    ],
    [
      "a number",
      { query: {}, body: { ingredients: ["cheese", 7] } },
      /each ingredient must be a string/,
    ],
    ["ingredients not a list", { query: {}, body: { ingredients: "cheese" } }, /must be a list/],
    [
      "unknown doneness",
      { query: { i: "cheese", doneness: "raw" }, body: undefined },
      /one of light, medium/,
    ],
    [
      "doneness twice",
      { query: { i: "cheese", doneness: ["light", "burnt"] }, body: undefined },
      /doneness/,
    ],
    [
      "blank customer",
      { query: {}, body: { ingredients: ["cheese"], customer: "  " } },
      /customer must be/,
    ],
    [
      "empty customer",
      { query: { i: "cheese", customer: "" }, body: undefined },
      /customer must be/,
    ],
    [
      "customer too long",
      { query: {}, body: { ingredients: ["cheese"], customer: "g".repeat(65) } },
      /customer/,
    ],
    [
      "control character",
      { query: {}, body: { ingredients: ["cheese"], customer: "gi\u0000ta" } },
      /customer/,
    ],
    [
      "customer not a string",
      { query: {}, body: { ingredients: ["cheese"], customer: 42 } },
      /customer/,
    ],
    [
      "unknown JSON field",
      { query: {}, body: { ingredients: ["cheese"], donenes: "burnt" } },
      /unknown field "donenes"/,
    ],
    [
      "unknown query field",
      { query: { i: "cheese", extra: "1" }, body: undefined },
      /unknown parameter "extra"/,
    ],
    [
      "body and query at once",
      { query: { i: "cheese" }, body: { ingredients: ["cheese"] } },
      /not both/,
    ],
    ["a JSON array body", { query: {}, body: ["cheese"] }, /must be a JSON object/],
    ["query i as an object", { query: { i: { a: "cheese" } }, body: undefined }, /must be a list/],
  ];
  for (const [name, input, detail] of bad) {
    it(`rejects ${name} with a 400 problem`, () => {
      const problem = problemOf(() => parseToastieOrder(input));
      assert.equal(problem.status, 400);
      assert.equal(problem.title, "Invalid request");
      assert.match(problem.options.type ?? "", /\/problems\/invalid-request$/);
      assert.match(problem.options.detail ?? "", detail);
      assert.ok(Array.isArray(problem.options.extensions?.errors));
    });
  }

  it("lists every problem at once, each where it is: a JSON pointer or a query parameter", () => {
    const body = problemOf(() =>
      parseToastieOrder({
        query: {},
        body: { ingredients: ["ham", "Ham"], doneness: "raw", customer: "" },
      }),
    );
    const errors = (body.options.extensions?.errors ?? []) as {
      pointer?: string;
      detail: string;
    }[];
    assert.deepEqual(
      errors.map((e) => e.pointer),
      ["/ingredients/1", "/doneness", "/customer"],
    );
    assert.equal(body.options.detail, errors.map((e) => e.detail).join("; "));
    const query = problemOf(() =>
      parseToastieOrder({ query: { i: "ham", doneness: "raw" }, body: undefined }),
    );
    assert.deepEqual(query.options.extensions?.errors, [
      { parameter: "i", detail: "No cheese on this toastie: add cheese or sheese" },
      {
        parameter: "doneness",
        detail: 'doneness must be one of light, medium, well-done, burnt, got "raw"',
      },
    ]);
  });

  it("agrees with chillybin on customers: emoji with ZWJ, combining marks and inner spaces are fine", () => {
    for (const good of ["👩‍🍳", "Gita 🧀", "José", "Zoë", "g".repeat(64), "Mary Jane"]) {
      assert.equal(isValidCustomer(good), true, good);
    }
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
      assert.equal(isValidCustomer(bad), false, JSON.stringify(bad));
    }
  });

  it("accepts the limits exactly", () => {
    const order = parseToastieOrder({
      query: {},
      body: { ingredients: ["cheese", ...Array(9).fill("ham")], customer: "g".repeat(64) },
    });
    assert.equal(order.ingredients.length, 10);
  });
});

describe("withBread", () => {
  it("adds two slices of bread, as the original did", () => {
    assert.deepEqual(withBread(["cheese", "vegemite"]), ["cheese", "vegemite", "bread", "bread"]);
  });
});

describe("parseIdempotencyKey", () => {
  it("passes a key through and allows none", () => {
    assert.equal(parseIdempotencyKey("order-123"), "order-123");
    assert.equal(parseIdempotencyKey(undefined), undefined);
  });
  for (const bad of ["", "has space", "é", "k".repeat(256), ["a", "b"]]) {
    it(`rejects ${JSON.stringify(bad).slice(0, 14)} naming the header`, () => {
      const problem = problemOf(() => parseIdempotencyKey(bad));
      assert.equal(problem.status, 400);
      assert.deepEqual(problem.options.extensions?.errors, [
        {
          header: "Idempotency-Key",
          detail: "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)",
        },
      ]);
    });
  }
  it("accepts 255 characters", () => {
    assert.equal(parseIdempotencyKey("k".repeat(255)), "k".repeat(255));
  });
});

describe("parseQueryOrder (the legacy GET's form)", () => {
  it("reads the original's query", () => {
    assert.deepEqual(
      parseQueryOrder({ i: ["cheese", "vegemite"], customer: "gordon", doneness: "burnt" }),
      { customer: "gordon", ingredients: ["cheese", "vegemite"], doneness: "burnt" },
    );
  });
});
