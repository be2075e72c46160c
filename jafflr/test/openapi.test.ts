/**
 * GET /openapi.json: an OpenAPI 3.1 document of jafflr's real API. Its structure holds together,
 * every route mounted on the app is described, and its problem types are the ones the code
 * answers with. (The integration tests check every answer they receive against it.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import { openApiDocument } from "../src/openapi";
import {
  coldStoreError,
  coldStoreUnavailable,
  grillBusy,
  idempotencyKeyReused,
  invalidRequest,
  orderRejected,
  outOfStock,
  PROBLEM_TYPES,
  unknownIngredient,
} from "../src/problems";
import { buildJafflr, closedPort, type TestJafflr } from "./helpers";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is walked as plain JSON
type Json = any;
const doc: Json = openApiDocument;
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

let jafflr: TestJafflr;
before(async () => {
  jafflr = await buildJafflr({ chillybinUrl: `http://127.0.0.1:${await closedPort()}` });
});
after(async () => {
  await jafflr.close();
});

/** Every `$ref` in `node`, with where it was found. */
function refs(node: Json, at = "#"): [string, string][] {
  if (typeof node !== "object" || node === null) return [];
  return Object.entries(node).flatMap(([k, v]) =>
    k === "$ref" ? [[String(v), at] as [string, string]] : refs(v, `${at}/${k}`),
  );
}

function resolve(pointer: string): unknown {
  return pointer
    .slice(2)
    .split("/")
    .reduce<Json>((node, part) => node?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
}

describe("GET /openapi.json", () => {
  it("serves the document, with this jafflr's version", async () => {
    const res = await request(jafflr.app).get("/openapi.json");
    assert.equal(res.status, 200);
    assert.match(res.headers["content-type"] ?? "", /^application\/json/);
    assert.match(res.body.openapi, /^3\.1\.\d+$/);
    assert.equal(res.body.info.version, "test");
    assert.deepEqual(res.body.paths, JSON.parse(JSON.stringify(doc.paths)));
  });

  it("holds together: every operation has responses, every $ref resolves", () => {
    assert.equal(typeof doc.info.title, "string");
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      assert.match(path, /^\//);
      const ops = Object.keys(item).filter((k) => METHODS.includes(k));
      assert.ok(ops.length > 0, `${path} has operations`);
      for (const m of ops) {
        const responses = Object.entries<Json>(item[m].responses ?? {});
        assert.ok(responses.length > 0, `${m} ${path} declares responses`);
        for (const [status, response] of responses) {
          assert.match(status, /^[1-5]\d\d$/, `${m} ${path} ${status}`);
          assert.equal(typeof response.description, "string", `${m} ${path} ${status}`);
        }
      }
    }
    for (const [ref, at] of refs(doc)) {
      assert.match(ref, /^#\//, `${at}: local refs only`);
      assert.notEqual(resolve(ref), undefined, `${at}: ${ref} resolves`);
    }
  });

  it("describes every route mounted on the app, each method it answers", () => {
    // The express router's stack is where mounted routes live; app.all() (the 405 answers)
    // registers every method at once and is not an operation.
    const stack = (jafflr.app as Json).router.stack as Json[];
    const mounted = stack
      .filter((layer) => layer.route)
      .flatMap((layer) => {
        const methods = Object.keys(layer.route.methods);
        // express writes `/orders/:id` where OpenAPI writes `/orders/{id}`.
        const path = String(layer.route.path).replace(/:(\w+)/g, "{$1}");
        return methods.length > METHODS.length ? [] : methods.map((m) => [m, path] as const);
      });
    assert.ok(mounted.length >= 6, JSON.stringify(mounted));
    for (const [method, path] of mounted) {
      assert.ok(doc.paths[path], `${path} is described`);
      const described = method === "head" && !doc.paths[path].head ? "get" : method;
      assert.ok(doc.paths[path][described], `${method.toUpperCase()} ${path} is described`);
    }
  });

  it("marks the legacy GET and HEAD /toastie deprecated, with their headers", () => {
    const toastie = doc.paths["/toastie"];
    assert.equal(toastie.get.deprecated, true);
    assert.equal(toastie.head.deprecated, true);
    assert.equal(toastie.post.deprecated, undefined);
    for (const header of ["Deprecation", "Sunset", "Link", "Cache-Control"]) {
      assert.ok(toastie.get.responses["200"].headers[header], header);
      assert.ok(toastie.get.responses["400"].headers[header], `${header} on a problem too`);
    }
    assert.ok(toastie.get.responses["503"].headers["Retry-After"]);
    assert.ok(toastie.post.responses["503"].headers["Retry-After"]);
  });

  it("lists exactly the problem types the code answers with, each with its status and title", () => {
    const made = [
      invalidRequest([{ parameter: "i", detail: "x" }]),
      outOfStock([{ ingredient: "cheese" }]),
      unknownIngredient(["caviar"]),
      idempotencyKeyReused(undefined),
      orderRejected("x"),
      coldStoreError("x"),
      grillBusy("x", 1),
      coldStoreUnavailable("x", 1),
    ].map((p) => ({ type: p.options.type, status: p.status, title: p.title }));
    assert.deepEqual(
      [...doc["x-problem-types"]].sort((a, b) => a.type.localeCompare(b.type)),
      made.sort((a, b) => String(a.type).localeCompare(String(b.type))),
    );
    assert.deepEqual(
      new Set(made.map((p) => p.type)),
      new Set(Object.values(PROBLEM_TYPES)),
      "every type in PROBLEM_TYPES is made by a factory above",
    );
    // Each problem response names only types of its own status.
    const byType = new Map(made.map((p) => [p.type, p.status]));
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      for (const m of Object.keys(item).filter((k) => METHODS.includes(k))) {
        for (const [status, response] of Object.entries<Json>(item[m].responses)) {
          const schema = response.content?.["application/problem+json"]?.schema;
          if (!schema) continue;
          for (const type of schema.allOf[1].properties.type.enum) {
            if (type === "about:blank") continue;
            assert.equal(byType.get(type), Number(status), `${m} ${path} ${status}: ${type}`);
          }
        }
      }
    }
  });
});
