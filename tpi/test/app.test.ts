import assert from "node:assert/strict";
import { it, mock } from "node:test";
import express from "express";
import request from "supertest";
import { requestListener } from "../src/http";
import * as tpi from "../src/index";
import { capturingLogger } from "./helpers";

function app(readiness: Record<string, () => Promise<unknown>> = {}) {
  const { logger, lines } = capturingLogger();
  const metrics = tpi.createMetrics({ service: "test", version: "1.2.3" });
  const lifecycle = new tpi.Lifecycle();
  const opts = { service: "test", version: "1.2.3", logger, metrics, lifecycle, readiness };
  const a = tpi.createServiceApp({ ...opts, routes: (r) => routes(r, metrics) });
  const series = async () => {
    const all = await metrics.registry.getMetricsAsJSON();
    const values = all.find((m) => m.name === "http_requests_total")?.values ?? [];
    return values.map(({ labels: l, value }) => `${l.method} ${l.route} ${l.status_code} ${value}`);
  };
  return { app: a, listener: requestListener(a), lines, metrics, lifecycle, series };
}

function routes(a: express.Express, metrics: tpi.Metrics) {
  a.post("/echo", tpi.requireJson, (req, res) => void res.json(req.body));
  a.all("/echo", tpi.methodNotAllowed(["POST"]));
  const things = express.Router().get("/:id", (req, res) => void res.json(req.params));
  a.use("/things", things);
  const options = { type: "urn:short", detail: "no", headers: { "Retry-After": "7" } };
  const short = new tpi.HttpProblem(409, "Out", { ...options, extensions: { short: ["ham"] } });
  a.get("/short", () => Promise.reject(short));
  a.get("/boom", () => Promise.reject(new Error("secret database password")));
  const [deprecatedAt, sunsetAt] = [new Date("2026-11-01"), new Date("2027-06-30")];
  const old = tpi.deprecated({
    ...{ metrics, counter: "old_calls_total", help: "calls", successor: "/new" },
    ...{ knownCallers: ["curl"], deprecatedAt, sunsetAt },
  });
  a.get("/old", old, (_req, res) => void res.send("ok"));
}

const JSON_TYPE = { "Content-Type": "application/json" };
const problems: [string, Record<string, string>, string, string, RegExp][] = [
  ["POST /echo", JSON_TYPE, '{"a":', "400 Bad Request", /not valid JSON/],
  ["POST /echo", JSON_TYPE, `{"a":"${"x".repeat(17 * 1024)}"}`, "413 Content Too Large", /16 KiB/],
  ["POST /echo", { "Content-Type": "text/plain" }, "a=1", "415 Unsupported Media Type", /JSON/],
  ["POST /echo", { "Content-Type": "application/json; charset=x" }, "{}", "415 ", /UTF-8/],
  ["POST /echo", { ...JSON_TYPE, "Content-Encoding": "zz" }, "{}", "415 ", /Encoding/],
  ["GET /nope?x=1", {}, "", "404 Not Found", /^No route for GET \/nope\.$/],
  ["GET /things/%ZZ", {}, "", "400 Bad Request", /./],
  ["GET /echo", {}, "", "405 Method Not Allowed", /^GET is not supported here; use POST\.$/],
  ["GET /short", {}, "", "409 Out", /^no$/],
  ["GET /boom", {}, "", "500 Internal Server Error", /on our side/],
];
const shared = app().app;
for (const [line, headers, body, answer, detail] of problems) {
  it(`problem+json: ${line} ${JSON.stringify(headers)} ${body.slice(0, 9)} → ${answer}`, async () => {
    const [method, path = ""] = line.toLowerCase().split(" ") as ["get"];
    const res = await request(shared)[method](path).set(headers).send(body);
    assert.match(`${res.status} ${res.body.title}`, new RegExp(`^${answer}`));
    assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
    const { type, status, instance, short } = res.body;
    const expected = [short ? "urn:short" : "about:blank", res.status, path.split("?")[0]];
    assert.deepEqual([type, status, instance], expected);
    assert.match(res.body.detail, detail);
    assert.ok(!/secret|\s+at /.test(res.text), "no internals shown");
  });
}

it("problems: 405 says Allow, HttpProblem headers and extensions are sent, long paths are cut", async () => {
  assert.equal((await request(shared).get("/echo")).headers.allow, "POST");
  const short = await request(shared).get("/short");
  assert.deepEqual([short.headers["retry-after"], short.body.short], ["7", ["ham"]]);
  assert.ok((await request(shared).get(`/${"x".repeat(10_000)}`)).text.length < 2000);
  assert.deepEqual((await request(shared).post("/echo").send({ a: 1 }).expect(200)).body, { a: 1 });
});

it("one access line per request, errors logged with their stack, metrics by route template", async () => {
  const { app: a, lines, series } = app();
  await request(a).get("/short").set("X-Request-Id", "req-42");
  for (const path of ["/boom", "/things/1", "/things/2", "/random-1", "/random-2/x"]) {
    await request(a).get(path);
  }
  await request(a).search("/short");
  const [access] = lines().filter((l) => l.msg === "request");
  assert.ok(Number(access?.bytes) > 0 && typeof access?.duration_ms === "number");
  const service = { level: "info", time: 0, service: "test", version: "1.2.3" };
  const request_ = { request_id: "req-42", method: "GET", route: "/short", status: 409 };
  const fields = { ...service, ...request_, duration_ms: 0, bytes: 0, msg: "request" };
  assert.deepEqual({ ...access, time: 0, duration_ms: 0, bytes: 0 }, fields);
  const error = lines().find((l) => l.msg === "unexpected error") as { err: { stack: string } };
  assert.match(error.err.stack, /secret database password[\s\S]*at /);
  assert.equal(typeof (error as { request_id?: string }).request_id, "string");
  const expected = ["GET /boom 500 1", "GET /short 409 1", "GET /things/:id 200 2"];
  expected.push("GET unmatched 404 2", "OTHER unmatched 404 1");
  assert.deepEqual((await series()).sort(), expected);
  const text = (await request(a).get("/metrics").expect(200)).text;
  assert.match(text, /http_request_duration_seconds_count\{[^}]*route="\/things\/:id"[^}]*\} 2/);
  assert.match(text, /process_cpu_user_seconds_total\{service="test",version="1.2.3"\}/);
});

it("/health: liveness, answered before express yet logged and counted; /ready: each check", async () => {
  const failing = () => Promise.reject(new Error("ECONNREFUSED"));
  const { app: a, listener, lines, series, lifecycle } = app({ db: async () => 1, flags: failing });
  const res = await request(listener).get("/health").set("X-Request-Id", "probe-1").expect(200);
  assert.deepEqual(res.body, { status: "ok", service: "test", version: "1.2.3" });
  assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
  assert.equal(res.headers["x-request-id"], "probe-1");
  assert.equal((await request(listener).head("/health").expect(200)).text, undefined);
  const access = lines().filter((l) => l.msg === "request");
  const logged = access.map((l) => `${l.method} ${l.route} ${l.status} ${l.bytes}`);
  const expected = ["GET", "HEAD"].map((m) => `${m} /health 200 ${res.text.length}`);
  assert.deepEqual(logged, expected);
  assert.deepEqual((await series()).sort(), ["GET /health 200 1", "HEAD /health 200 1"]);
  const checks = { db: "ok", flags: "ECONNREFUSED" };
  const ready = await request(a).get("/ready").expect(503);
  assert.deepEqual(ready.body, { status: "unavailable", checks });
  const good = await request(app({ db: async () => 1 }).app).get("/ready");
  assert.deepEqual([good.status, good.body], [200, { status: "ready", checks: { db: "ok" } }]);
  const probe = async () =>
    (await request(listener).get("/health").set("Connection", "keep-alive")).headers.connection;
  assert.equal(await probe(), "keep-alive");
  lifecycle.beginShutdown();
  assert.equal(await probe(), "close", "while draining, keep-alive clients are asked to reconnect");
  assert.equal((await request(a).get("/ready").expect(503)).body.checks.shutdown, "shutting down");
});

it("probes and scrapes are counted but logged at debug: no info access line; other requests are", async () => {
  const { app: a, listener, lines, series } = app({ db: async () => 1 });
  for (const path of ["/health", "/ready", "/metrics", "/things/1"]) {
    await request(path === "/health" ? listener : a)
      .get(path)
      .expect(200);
  }
  const access = lines().filter((l) => l.msg === "request");
  const logged = access.map((l) => `${l.level} ${l.route}`);
  assert.deepEqual(logged, ["debug /health", "debug /ready", "debug /metrics", "info /things/:id"]);
  const counted = ["/health", "/metrics", "/ready", "/things/:id"].map((r) => `GET ${r} 200 1`);
  assert.deepEqual((await series()).sort(), counted);
});

it("a deprecated route says so, forbids caching, counts callers (unknown ones bounded)", async () => {
  const { app: a, metrics } = app();
  const { headers } = await request(a).get("/old").set("User-Agent", "curl/8.5.0").expect(200);
  const said = [headers.deprecation, headers.sunset, headers.link, headers["cache-control"]];
  const sunset = "Wed, 30 Jun 2027 00:00:00 GMT";
  assert.deepEqual(said, ["@1793491200", sunset, '</new>; rel="successor-version"', "no-store"]);
  await request(a).get("/old").set("User-Agent", "evil-<script>/1").expect(200);
  const text = await metrics.registry.metrics();
  assert.match(text, /old_calls_total\{caller="curl"[^}]*\} 1/);
  assert.match(text, /old_calls_total\{caller="other"[^}]*\} 1/);
  assert.ok(!text.includes("evil"));
  const known = new Set(["curl", "mozilla"]);
  const agents = ["curl/8.5.0", "Mozilla/5.0 (X11)", "Shiny/1", "", "/x", undefined];
  const callers = agents.map((agent) => tpi.callerOf(agent, known));
  assert.deepEqual(callers, ["curl", "mozilla", "other", "unknown", "unknown", "unknown"]);
});

it("stamps every line with the ISO 8601 time, across second boundaries", (t) => {
  const { logger, lines } = capturingLogger();
  const now = mock.method(Date, "now");
  t.after(() => now.mock.restore());
  const times = [1234567890123, 1234567890999, 1234567891000, 1234567891005, 42, 1234567891050];
  for (const time of times) {
    now.mock.mockImplementation(() => time);
    logger.info("tick");
  }
  const expected = times.map((time) => new Date(time).toISOString());
  const stamped = lines().map((l) => l.time);
  assert.deepEqual(stamped, expected);
});
