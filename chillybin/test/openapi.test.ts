/**
 * GET /openapi.json: a well-formed OpenAPI 3.1 document that names every route the app mounts
 * (and nothing it does not), so the description cannot silently fall behind the code.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Express } from "express";
import { createMetrics, Lifecycle } from "tpi";
import { createApp } from "../src/app";
import { PROBLEM_TYPES } from "../src/problems";
import { act, silentLogger, useTestApp } from "./helpers";

const app = useTestApp({ resetBeforeEach: false });

type Json = Record<string, unknown>;
const HTTP_METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

async function fetchDocument(): Promise<Json> {
  const reply = await act(app.url).get("/openapi.json");
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers["content-type"]), /^application\/json/);
  return JSON.parse(reply.text) as Json;
}

/** Every route the express app really has: path (OpenAPI-style) → methods ("*" for app.all). */
function mountedRoutes(express: Express): Map<string, Set<string>> {
  const routes = new Map<string, Set<string>>();
  const stack = (
    express as unknown as {
      router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
    }
  ).router.stack;
  for (const layer of stack) {
    if (!layer.route) continue;
    const path = layer.route.path.replace(/:(\w+)/g, "{$1}");
    const methods = routes.get(path) ?? new Set<string>();
    const on = Object.keys(layer.route.methods).filter((m) => layer.route?.methods[m]);
    // app.all registers every method node knows (acl, bind, …): that is the 405 catch-all.
    if (on.includes("_all") || on.length > 10) methods.add("*");
    else for (const method of on) methods.add(method);
    routes.set(path, methods);
  }
  return routes;
}

function walk(node: unknown, visit: (value: Json, at: string) => void, at = "#"): void {
  if (Array.isArray(node)) {
    for (const [i, v] of node.entries()) walk(v, visit, `${at}/${i}`);
  } else if (node && typeof node === "object") {
    visit(node as Json, at);
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${at}/${k}`);
  }
}

/** The object at doc[k1][k2]…, failing the test when any step is missing. */
function dig(doc: Json, ...keys: string[]): Json {
  let node: unknown = doc;
  for (const key of keys) {
    node = (node as Json | undefined)?.[key];
    assert.ok(node && typeof node === "object", `${keys.join(" → ")}: no ${key}`);
  }
  return node as Json;
}

function resolve(doc: Json, pointer: string): unknown {
  return pointer
    .slice(2)
    .split("/")
    .reduce<unknown>(
      (node, key) => (node as Json | undefined)?.[key.replace(/~1/g, "/").replace(/~0/g, "~")],
      doc,
    );
}

test("is an OpenAPI 3.1 document for this build", async () => {
  const doc = await fetchDocument();
  assert.equal(doc.openapi, "3.1.0");
  const info = doc.info as Json;
  assert.equal(info.title, "chillybin");
  assert.equal(info.version, "test");
});

test("is well formed: operations, responses, parameters, and every $ref resolves", async () => {
  const doc = await fetchDocument();
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    assert.match(path, /^\//);
    for (const [method, operation] of Object.entries(item as Record<string, Json>)) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.ok(HTTP_METHODS.includes(method), `${where}: not an HTTP method`);
      assert.equal(typeof operation.operationId, "string", `${where}: operationId`);
      assert.ok(
        !operationIds.has(operation.operationId as string),
        `${where}: operationId is unique`,
      );
      operationIds.add(operation.operationId as string);
      const responses = Object.entries(operation.responses as Record<string, Json>);
      assert.ok(responses.length > 0, `${where}: responses`);
      for (const [status, response] of responses) {
        assert.match(status, /^[1-5][0-9][0-9]$/, `${where}: status ${status}`);
        assert.equal(typeof response.description, "string", `${where} ${status}: description`);
        for (const [type, media] of Object.entries(
          (response.content ?? {}) as Record<string, Json>,
        )) {
          assert.match(type, /^[a-z]+\/[a-z0-9.+-]+$/, `${where} ${status}: media type`);
          assert.ok(media.schema, `${where} ${status} ${type}: schema`);
        }
        if (Number(status) >= 400 && Number(status) !== 503 && path !== "/ready") {
          assert.ok(
            (response.content as Json | undefined)?.["application/problem+json"],
            `${where} ${status}: errors are problem+json`,
          );
        }
      }
      const declared = new Set<string>();
      for (const parameter of (operation.parameters ?? []) as Json[]) {
        assert.ok(
          ["query", "header", "path", "cookie"].includes(parameter.in as string),
          `${where}: parameter in`,
        );
        assert.equal(typeof parameter.name, "string");
        assert.ok(parameter.schema, `${where}: parameter ${parameter.name} schema`);
        if (parameter.in === "path") {
          assert.equal(parameter.required, true);
          declared.add(parameter.name as string);
        }
      }
      if (!/NotAllowed$/.test(operation.operationId as string)) {
        for (const [, name] of path.matchAll(/\{(\w+)\}/g)) {
          assert.ok(declared.has(name as string), `${where}: path parameter ${name} declared`);
        }
      }
    }
  }
  walk(doc, (node, at) => {
    if (typeof node.$ref === "string") {
      assert.match(node.$ref, /^#\//, `${at}: local $ref`);
      assert.ok(resolve(doc, node.$ref) !== undefined, `${at}: ${node.$ref} resolves`);
    }
  });
});

test("names every route the app mounts, with every method, and nothing else", async () => {
  const doc = await fetchDocument();
  const documented = doc.paths as Record<string, Json>;
  const express = createApp({
    pool: app.pool,
    feed: app.feed,
    logger: silentLogger,
    metrics: createMetrics({ service: "chillybin", version: "test" }),
    lifecycle: new Lifecycle(),
    version: "test",
  });
  const mounted = mountedRoutes(express);
  assert.ok(mounted.size >= 10, "found the app's routes");
  for (const [path, methods] of mounted) {
    const item = documented[path];
    assert.ok(item, `${path} is documented`);
    for (const method of methods) {
      if (method === "*") {
        for (const m of ["get", "put", "post", "delete", "patch"]) {
          assert.ok(item[m], `${m.toUpperCase()} ${path} (answered by app.all) is documented`);
        }
      } else {
        assert.ok(item[method], `${method.toUpperCase()} ${path} is documented`);
      }
    }
  }
  for (const path of Object.keys(documented)) {
    assert.ok(mounted.has(path), `documented ${path} is mounted`);
  }
});

test("v2's replay, the 503's Retry-After and the 405's Allow are described", async () => {
  const doc = await fetchDocument();
  const v2 = dig(doc, "paths", "/v2/pick", "post", "responses");
  assert.ok(dig(v2, "200", "headers")["Idempotent-Replayed"]);
  assert.ok(dig(v2, "503", "headers")["Retry-After"]);
  assert.ok(dig(doc, "paths", "/orders", "post", "responses", "405", "headers").Allow);
});

test("describes every problem type chillybin answers with", async () => {
  const text = JSON.stringify(await fetchDocument());
  for (const type of Object.values(PROBLEM_TYPES)) {
    assert.ok(text.includes(JSON.stringify(type)), `${type} is described`);
  }
});
