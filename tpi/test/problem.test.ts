import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Express } from "express";
import request from "supertest";
import {
  createMetrics,
  createServiceApp,
  HttpProblem,
  Lifecycle,
  methodNotAllowed,
  requireJson,
} from "../src/index";
import { capturingLogger } from "./helpers";

function app() {
  const { logger, lines } = capturingLogger();
  const a = createServiceApp({
    service: "test",
    version: "1.2.3",
    logger,
    metrics: createMetrics({ service: "test", version: "1.2.3" }),
    lifecycle: new Lifecycle(),
    routes,
  });
  return { app: a, lines };
}

function routes(a: Express) {
  a.post("/echo", requireJson, (req, res) => {
    res.json(req.body);
  });
  a.all("/echo", methodNotAllowed(["POST"]));
  a.get("/things/:id", (req, res) => {
    res.json({ id: req.params.id });
  });
  a.get("/short", () => {
    throw new HttpProblem(409, "Not enough stock", {
      detail: "cheese: wanted 3, have 1",
      type: "https://toasties.example/problems/short-stock",
      headers: { "Retry-After": "7" },
      extensions: { short: [{ ingredient: "cheese", requested: 3, available: 1 }] },
    });
  });
  a.get("/async-boom", async () => {
    await Promise.resolve();
    throw new Error("secret database password in this message");
  });
}

function assertProblem(res: request.Response, status: number, title: RegExp) {
  assert.equal(res.status, status);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
  assert.equal(res.body.status, status);
  assert.match(res.body.title, title);
  assert.equal(typeof res.body.type, "string");
  assert.ok(!JSON.stringify(res.body).includes("    at "), "no stack trace");
}

describe("problem+json errors", () => {
  it("passes good JSON through", async () => {
    const res = await request(app().app).post("/echo").send({ a: 1 }).expect(200);
    assert.deepEqual(res.body, { a: 1 });
  });

  it("malformed JSON → 400", async () => {
    const res = await request(app().app)
      .post("/echo")
      .set("Content-Type", "application/json")
      .send('{"a":');
    assertProblem(res, 400, /^Bad Request$/);
    assert.equal(res.body.type, "about:blank");
    assert.match(res.body.detail, /not valid JSON/);
  });

  it("oversize body (over 16 KiB) → 413", async () => {
    const res = await request(app().app)
      .post("/echo")
      .send({ a: "x".repeat(17 * 1024) });
    assertProblem(res, 413, /^Content Too Large$/);
  });

  it("non-JSON content type → 415", async () => {
    const res = await request(app().app)
      .post("/echo")
      .set("Content-Type", "text/plain")
      .send("a=1");
    assertProblem(res, 415, /Unsupported Media Type/);
  });

  it("unsupported charset → 415", async () => {
    const res = await request(app().app)
      .post("/echo")
      .set("Content-Type", "application/json; charset=klingon")
      .send('{"a":1}');
    assertProblem(res, 415, /Unsupported Media Type/);
  });

  it("unsupported content encoding → 415", async () => {
    const res = await request(app().app)
      .post("/echo")
      .set("Content-Type", "application/json")
      .set("Content-Encoding", "compress-me-not")
      .send('{"a":1}');
    assertProblem(res, 415, /Unsupported Media Type/);
  });

  it("unknown route → 404", async () => {
    const res = await request(app().app).get("/nope?x=1");
    assertProblem(res, 404, /Not Found/);
    assert.equal(res.body.instance, "/nope");
  });

  it("does not echo a huge path back", async () => {
    const res = await request(app().app).get(`/${"x".repeat(10_000)}`);
    assertProblem(res, 404, /Not Found/);
    assert.ok(res.text.length < 2000, `body is ${res.text.length} bytes`);
  });

  it("a router URIError (undecodable %ZZ param) is a 400, not a 500", async () => {
    const res = await request(app().app).get("/things/%ZZ");
    assertProblem(res, 400, /Bad Request/);
  });

  it("wrong method → 405 with Allow", async () => {
    const res = await request(app().app).get("/echo");
    assertProblem(res, 405, /Method Not Allowed/);
    assert.equal(res.headers.allow, "POST");
  });

  it("HttpProblem carries type, detail, headers and extensions", async () => {
    const res = await request(app().app).get("/short");
    assertProblem(res, 409, /Not enough stock/);
    assert.equal(res.body.type, "https://toasties.example/problems/short-stock");
    assert.equal(res.body.detail, "cheese: wanted 3, have 1");
    assert.equal(res.headers["retry-after"], "7");
    assert.deepEqual(res.body.short, [{ ingredient: "cheese", requested: 3, available: 1 }]);
  });

  it("unexpected errors → 500 without details; logged with the stack", async () => {
    const { app: a, lines } = app();
    const res = await request(a).get("/async-boom");
    assertProblem(res, 500, /Internal Server Error/);
    assert.ok(!res.text.includes("secret"), "the error message is not shown to the client");
    const logged = lines().find((l) => l.msg === "unexpected error");
    assert.ok(logged, "the error is logged");
    const err = logged.err as { stack: string; message: string };
    assert.match(err.stack, /secret database password[\s\S]*at /);
    assert.equal(typeof logged.request_id, "string");
  });

  it("writes one access-log line per request with the fields operators need", async () => {
    const { app: a, lines } = app();
    await request(a).get("/short").set("X-Request-Id", "req-42");
    const line = lines().find((l) => l.msg === "request");
    assert.ok(line);
    assert.equal(line.method, "GET");
    assert.equal(line.route, "/short");
    assert.equal(line.status, 409);
    assert.equal(line.request_id, "req-42");
    assert.equal(line.version, "1.2.3");
    assert.equal(line.service, "test");
    assert.equal(typeof line.duration_ms, "number");
    assert.ok((line.bytes as number) > 0);
  });
});
