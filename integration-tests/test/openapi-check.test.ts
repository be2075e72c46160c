/**
 * The response check every integration test relies on (testkit/openapi), on a small description
 * written here: it must catch each kind of drift — an undeclared status, content type or body
 * shape — and accept what is declared, so a green suite means the services' descriptions hold.
 */
import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import { describe, mismatch, type Received } from "testkit/openapi";

const doc = {
  openapi: "3.1.0",
  info: { title: "fixture", version: "1" },
  paths: {
    "/": {
      get: {
        responses: {
          "200": {
            description: "stock",
            content: {
              "application/json": {
                schema: { type: "object", additionalProperties: { type: "integer" } },
              },
              "text/html": { schema: { type: "string" } },
            },
          },
        },
      },
    },
    "/orders/{id}": {
      get: {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        responses: {
          "200": {
            description: "an order",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Order" } } },
          },
          "404": { $ref: "#/components/responses/Problem" },
        },
      },
    },
    "/orders/latest": {
      get: {
        responses: { "202": { description: "being made" }, "204": { description: "none yet" } },
      },
    },
    "/metrics": {
      get: {
        responses: {
          "200": { description: "metrics", content: { "text/plain": {} } },
          "5XX": { $ref: "#/components/responses/Problem" },
        },
      },
    },
  },
  components: {
    schemas: {
      Order: {
        type: "object",
        required: ["id", "createdAt"],
        properties: {
          id: { type: "string", format: "uuid" },
          createdAt: { type: "string", format: "date-time" },
        },
        additionalProperties: false,
      },
      Problem: {
        type: "object",
        required: ["type", "title", "status"],
        properties: {
          type: { type: "string" },
          title: { type: "string" },
          status: { type: "integer" },
        },
      },
    },
    responses: {
      Problem: {
        description: "a problem",
        content: {
          "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } },
        },
      },
    },
  },
};

const ORDER = { id: "0b9c9b55-7c53-4a43-9a39-6b1e0d0f3c11", createdAt: "2026-11-29T05:00:00.000Z" };
const PROBLEM = { type: "about:blank", title: "Not Found", status: 404 };

function json(
  method: string,
  path: string,
  status: number,
  body: unknown,
  type = "application/json",
): Received {
  const text = JSON.stringify(body);
  return { method, path, status, contentType: `${type}; charset=utf-8`, text, json: body };
}

suite("checking answers against an OpenAPI description", () => {
  const described = describe(doc);
  const check = (received: Received) => mismatch(described, received);

  test("a declared status, content type and body pass", () => {
    assert.equal(check(json("GET", "/", 200, { cheese: 10 })), undefined);
    assert.equal(check(json("GET", "/orders/abc", 200, ORDER)), undefined);
    assert.equal(
      check(json("GET", "/orders/abc", 404, PROBLEM, "application/problem+json")),
      undefined,
    );
  });

  test("a status the operation does not declare fails, naming what is declared", () => {
    assert.match(
      check(json("GET", "/", 201, { cheese: 10 })) ?? "",
      /status 201 is not declared for GET \/ \(declared: 200\)/,
    );
  });

  test("a range (5XX) declares every status in it", () => {
    assert.equal(
      check(json("GET", "/metrics", 503, { ...PROBLEM, status: 503 }, "application/problem+json")),
      undefined,
    );
  });

  test("a content type not declared for that status fails", () => {
    assert.match(
      check(json("GET", "/orders/abc", 404, PROBLEM)) ?? "",
      /content type application\/json is not declared/,
    );
  });

  test("a body that breaks the schema (through $refs) fails, saying where", () => {
    assert.match(
      check(json("GET", "/orders/abc", 200, { ...ORDER, extra: 1 })) ?? "",
      /must NOT have additional properties/,
    );
    assert.match(
      check(json("GET", "/orders/abc", 200, { ...ORDER, id: "nope" })) ?? "",
      /body\/id must match format "uuid"/,
    );
    assert.match(check(json("GET", "/", 200, { cheese: "ten" })) ?? "", /must be integer/);
  });

  test("a literal path wins over a template, as OpenAPI says", () => {
    assert.equal(
      check({ method: "GET", path: "/orders/latest", status: 204, contentType: "", text: "" }),
      undefined,
    );
  });

  test("a body where none is declared fails", () => {
    assert.match(
      check(json("GET", "/orders/latest", 202, ORDER)) ?? "",
      /declares no content, yet the answer has a application\/json body/,
    );
  });

  test("answers that are not JSON are checked for status and content type only", () => {
    const page = {
      method: "GET",
      path: "/",
      status: 200,
      contentType: "text/html; charset=utf-8",
      text: "<!doctype html>",
    };
    assert.equal(check(page), undefined);
    const metrics = {
      method: "GET",
      path: "/metrics",
      status: 200,
      contentType: "text/plain; version=0.0.4",
      text: "up 1",
    };
    assert.equal(check(metrics), undefined);
    assert.match(check({ ...metrics, contentType: "text/csv" }) ?? "", /text\/csv is not declared/);
  });

  test("HEAD is checked against GET and needs no body", () => {
    assert.equal(
      check({ method: "HEAD", path: "/", status: 200, contentType: "application/json", text: "" }),
      undefined,
    );
  });

  test("an answer outside any operation must be a 4xx problem whose status is the HTTP status", () => {
    assert.equal(
      check(json("GET", "/nowhere", 404, PROBLEM, "application/problem+json")),
      undefined,
    );
    assert.equal(
      check(json("DELETE", "/", 405, { ...PROBLEM, status: 405 }, "application/problem+json")),
      undefined,
    );
    assert.match(
      check(json("GET", "/nowhere", 404, PROBLEM)) ?? "",
      /must be application\/problem\+json/,
    );
    assert.match(check(json("GET", "/nowhere", 200, {})) ?? "", /not a 4xx/);
    assert.match(
      check(json("GET", "/nowhere", 400, PROBLEM, "application/problem+json")) ?? "",
      /status 404 is not the HTTP status/,
    );
  });

  test("statuses the HTTP layer answers before routing need not be declared, but must be problems", () => {
    const tooLarge = { type: "about:blank", title: "Request Header Fields Too Large", status: 431 };
    assert.equal(check(json("GET", "/", 431, tooLarge, "application/problem+json")), undefined);
    assert.match(
      check(json("GET", "/", 431, tooLarge)) ?? "",
      /must be application\/problem\+json/,
    );
  });

  test("method names that are not HTTP methods of the document are not looked up on it", () => {
    assert.equal(
      check(json("CONSTRUCTOR", "/", 405, { ...PROBLEM, status: 405 }, "application/problem+json")),
      undefined,
    );
  });
});
