import assert from "node:assert/strict";
import { it } from "node:test";
import * as tpi from "../src/index";

const { z, parseRequest } = tpi;
const order = z.strictObject({
  i: z.array(z.strictObject({ q: z.number().int().min(1) })),
  s: z.record(z.string().regex(/^a/), z.number()).optional(),
});
const k40 = `${"k".repeat(40)}…`;
// [input, expected keys, ...items: "/pointer detail" or "?parameter detail" (a query)]
const cases: [string, string, ...string[]][] = [
  ['{"i":[{"q":0}]}', "", "/i/0/q Too small: expected number to be >=1"],
  ['{"i":[],"a":1,"b/~":2}', "", '/a unknown field "a"', '/b~1~0 unknown field "b/~"'],
  ['{"i":[],"x":"1"}', "i", '?x unknown parameter "x"; expected i'],
  ['{"i":[],"s":{"b":1}}', "", '/s/b "b": Invalid string: must match pattern /^a/'],
  [`{"i":[],"${"k".repeat(50)}":1}`, "", `?${k40} unknown parameter "${k40}"`],
];
for (const [input, expected, ...items] of cases) {
  it(`parseRequest: ${input.slice(0, 40)} → ${items.join(", ")}`, () => {
    const errors = items.map((item) => {
      const at = item.slice(0, item.indexOf(" "));
      const detail = item.slice(at.length + 1);
      return at.startsWith("?") ? { parameter: at.slice(1), detail } : { pointer: at, detail };
    });
    const where = items[0]?.startsWith("?") ? "query" : "body";
    const detail = errors.map((e) => e.detail).join("; ");
    const problem = { type: tpi.INVALID_REQUEST, detail, extensions: { errors } };
    const expectedProblem = new tpi.HttpProblem(400, "Invalid request", problem);
    assert.throws(() => parseRequest(order, JSON.parse(input), where, expected), expectedProblem);
  });
}

it("parseRequest returns the parsed value, and at most 20 errors", () => {
  assert.deepEqual(parseRequest(order, { i: [] }, "body"), { i: [] });
  const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
  assert.throws(
    () => parseRequest(order, { i: [], ...many }, "body"),
    (p: tpi.HttpProblem) => (p.options.extensions as { errors: unknown[] }).errors.length === 20,
  );
});

it("openApiDocument is OpenAPI 3.1 from the registered schemas; registerTpiRoutes adds tpi's", () => {
  const registry = new tpi.OpenAPIRegistry();
  registry.register("Order", order.openapi({ description: "an order" }));
  tpi.registerTpiRoutes(registry, "svc");
  const doc = tpi.openApiDocument(registry, { title: "t", version: "1" });
  const schema = doc.components?.schemas?.Order as { description: string; required: string[] };
  const [paths, ready] = [doc.paths ?? {}, doc.paths?.["/ready"]?.get?.responses ?? {}];
  const got = [doc.openapi, schema.description, schema.required, Object.keys(paths)];
  assert.deepEqual(got, ["3.1.0", "an order", ["i"], ["/health", "/ready", "/metrics"]]);
  assert.deepEqual(Object.keys(ready), ["200", "503"]);
});
