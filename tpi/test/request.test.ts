import assert from "node:assert/strict";
import { it } from "node:test";
import { HttpProblem, OpenAPIRegistry, openApiDocument, parseRequest, z } from "../src/index";

const order = z.strictObject({
  items: z.array(z.strictObject({ name: z.string(), quantity: z.number().int().min(1) })),
  stock: z.record(z.string().regex(/^[a-z]+$/), z.number()).optional(),
});

function problem(fn: () => unknown): HttpProblem {
  try {
    fn();
  } catch (err) {
    if (err instanceof HttpProblem) return err;
    throw err;
  }
  assert.fail("did not throw");
}

const cases: [string, unknown, "body" | "query", string | undefined, unknown[]][] = [
  [
    "body paths become JSON pointers",
    { items: [{ name: "cheese", quantity: 0 }] },
    "body",
    undefined,
    [{ pointer: "/items/0/quantity", detail: "Too small: expected number to be >=1" }],
  ],
  [
    "one item per unknown key, with the expected keys when given",
    { items: [], a: 1, "b/~": 2 },
    "body",
    "items",
    [
      { pointer: "/a", detail: 'unknown field "a"; expected items' },
      { pointer: "/b~1~0", detail: 'unknown field "b/~"; expected items' },
    ],
  ],
  [
    "query issues name the parameter",
    { items: [], x: "1" },
    "query",
    undefined,
    [{ parameter: "x", detail: 'unknown parameter "x"' }],
  ],
  [
    "a bad record key says which key",
    { items: [], stock: { Ham: 1 } },
    "body",
    undefined,
    [{ pointer: "/stock/Ham", detail: '"Ham": Invalid string: must match pattern /^[a-z]+$/' }],
  ],
  [
    "names are clipped to 40 characters",
    { items: [], ["k".repeat(50)]: 1 },
    "query",
    undefined,
    [{ parameter: `${"k".repeat(40)}…`, detail: `unknown parameter "${"k".repeat(40)}…"` }],
  ],
];

for (const [name, input, where, expected, errors] of cases) {
  it(`parseRequest: ${name}`, () => {
    const p = problem(() => parseRequest(order, input, where, expected));
    assert.equal(p.status, 400);
    assert.equal(p.title, "Invalid request");
    assert.equal(p.options.type, "https://toasties-galore.example/problems/invalid-request");
    assert.deepEqual(p.options.extensions, { errors });
    assert.equal(p.options.detail, errors.map((e) => (e as { detail: string }).detail).join("; "));
  });
}

it("parseRequest returns the parsed value and caps errors at 20", () => {
  assert.deepEqual(parseRequest(order, { items: [] }, "body"), { items: [] });
  const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
  const p = problem(() => parseRequest(order, { items: [], ...many }, "body"));
  assert.equal((p.options.extensions as { errors: unknown[] }).errors.length, 20);
});

it("openApiDocument is OpenAPI 3.1 built from the registered schemas", () => {
  const registry = new OpenAPIRegistry();
  registry.register("Order", order.openapi({ description: "an order" }));
  const doc = openApiDocument(registry, { title: "t", version: "1" });
  assert.equal(doc.openapi, "3.1.0");
  assert.equal(
    doc.components?.schemas?.Order && "description" in doc.components.schemas.Order,
    true,
  );
});
