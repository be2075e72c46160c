import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { text } from "node:stream/consumers";
import { it } from "node:test";
import { Lifecycle, serve } from "../src/index";
import { fixtureApp } from "./fixtures/app";
import { capturingLogger, get, startFixture, until } from "./helpers";

async function served(SHUTDOWN_TIMEOUT_MS: number, SHUTDOWN_DELAY_MS: number) {
  const { logger, lines } = capturingLogger();
  const [lifecycle, started, closed] = [new Lifecycle(), { n: 0 }, [] as string[]];
  const config = { HOST: "127.0.0.1", PORT: 0, SHUTDOWN_TIMEOUT_MS, SHUTDOWN_DELAY_MS };
  const close = (name: string) => ({ name, close: () => closed.push(name) });
  const resources = [close("db pool"), close("flag client")];
  const options = { config, logger, lifecycle, resources, handleSignals: false };
  const s = await serve(fixtureApp(logger, lifecycle, started), options);
  return { ...s, lines, lifecycle, closed, started: () => started.n };
}

/** Raw bytes in, the whole answer out (the server closes the connection). */
const raw = (url: string, payload: string) =>
  text(net.connect(Number(new URL(url).port), "127.0.0.1").end(payload));

it("shutdown: not ready during the pre-stop delay, in-flight requests finish, idle keep-alive sockets close, then resources close in order", async () => {
  const s = await served(3000, 500);
  // Requests node's parser rejects still get problem+json.
  const bad = await raw(s.url, "GET /health HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n");
  assert.match(bad, /^HTTP\/1\.1 400 Bad Request\r\nContent-Type: application\/problem\+json/);
  const huge = await raw(s.url, `GET / HTTP/1.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
  assert.match(huge, /^HTTP\/1\.1 431 [\s\S]*application\/problem\+json[\s\S]*"status":431/);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  assert.equal((await get(`${s.url}/health`, agent)).status, 200);
  const idle = () => Object.values(agent.freeSockets).flat()[0];
  await until(idle, "the socket is idle");
  const idleClosed = new Promise((r) => idle()?.once("close", r));
  const inFlight = [1, 2, 3].map(() => get(`${s.url}/slow?ms=700`));
  await until(() => s.started() === 3, "the server has all three requests");
  const told: string[] = [];
  s.lifecycle.onShutdown(() => told.push("early"));
  s.lifecycle.onShutdown(() => told.push("cancelled"))();
  const shutdown = s.shutdown("test");
  s.lifecycle.onShutdown(() => told.push("late"));
  assert.deepEqual([s.lifecycle.shuttingDown, told], [true, ["early", "late"]]);
  assert.equal((await get(`${s.url}/ready`)).status, 503);
  assert.equal((await get(`${s.url}/health`)).status, 200, "still serving during the delay");
  assert.deepEqual(s.closed, []);
  await until(() => !s.server.listening, "the listener is closed");
  assert.equal((await get(`${s.url}/health`)).error, "ECONNREFUSED");
  const statuses = (await Promise.all(inFlight)).map((r) => r.status);
  assert.deepEqual(statuses, [200, 200, 200]);
  // 0 within 3 s, though keep-alive lasts 5 s: the idle socket was closed, not waited out.
  assert.equal(await shutdown, 0);
  assert.deepEqual(s.closed, ["db pool", "flag client"]);
  await idleClosed;
});

it("shutdown gives up at the deadline with exit code 1, naming what was still open", async () => {
  const s = await served(300, 0);
  const stuck = get(`${s.url}/slow?ms=1500`);
  await until(() => s.started() === 1, "the server has the request");
  assert.equal(await s.shutdown("test"), 1);
  const line = s.lines().find((l) => String(l.msg).startsWith("shutdown deadline passed"));
  assert.deepEqual([line?.in_flight, line?.stage], [1, "draining in-flight requests"]);
  s.server.closeAllConnections();
  await stuck;
});

it("a real process: SIGTERM lets in-flight requests finish and flushes their spans, which continue the caller's trace; a second signal exits at once", async () => {
  const spans: Record<string, unknown>[] = [];
  const receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      for (const { scopeSpans } of JSON.parse(body).resourceSpans) {
        for (const scope of scopeSpans) spans.push(...scope.spans);
      }
      res.end("{}");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const endpoint = `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}`;
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: "60000" };
  const f = startFixture(env);
  const url = await f.url;
  for (const path of ["/health", "/ready", "/metrics"]) await get(url + path);
  const [trace, parent] = ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"];
  const headers = { traceparent: `00-${trace}-${parent}-01` };
  const inFlight = [1, 2].map(() => get(`${url}/slow?ms=600`, undefined, headers));
  await until(() => f.output().split('"slow started"').length === 3, "both requests started");
  f.child.kill("SIGTERM");
  const statuses = (await Promise.all(inFlight)).map((r) => r.status);
  assert.deepEqual(statuses, [200, 200]);
  assert.equal(await f.exited, 0);
  receiver.close();
  assert.match(f.output(), /"msg":"pool closed"[\s\S]*"msg":"shutdown complete"/);
  // Sent at shutdown (the batch delay is a minute); none for probes or scrapes.
  const server = spans.filter((s) => s.kind === 2);
  const seen = server.map((s) => `${s.name} ${s.traceId} ${s.parentSpanId}`);
  const twice = [1, 2].map(() => `GET /slow ${trace} ${parent}`);
  assert.deepEqual(seen, twice);
  const spanIds = server.map((s) => s.spanId);
  const logged = f.output().match(/^.*("route":"\/slow"|"slow done").*$/gm) ?? [];
  for (const { trace_id, span_id, msg } of logged.map((l) => JSON.parse(l))) {
    assert.equal(trace_id, trace, "logs join to the trace");
    if (msg === "request") assert.ok(spanIds.includes(span_id), "and to the span");
  }
  const g = startFixture(); // and a second signal while draining
  const stuck = get(`${await g.url}/slow?ms=3000`);
  await until(() => g.output().includes('"slow started"'), "the request started");
  g.child.kill("SIGTERM");
  await until(() => g.output().includes('"msg":"shutting down"'), "the first signal is handled");
  g.child.kill("SIGINT");
  assert.equal(await g.exited, 130);
  assert.match(g.output(), /second signal/);
  await stuck;
});

it("refuses to start when pg was loaded before tpi/register", async () => {
  const f = startFixture({}, "pg-first.ts");
  assert.notEqual(await f.exited, 0);
  assert.match(f.output(), /tpi\/register must be imported before pg/);
});

it("exits by itself when the supervisor that spawned it is SIGKILLed", async () => {
  const supervisor = startFixture({ SHUTDOWN_TIMEOUT_MS: "2000" }, "supervisor.ts");
  const url = await supervisor.url;
  const stat = `/proc/${/"pid":(\d+)/.exec(supervisor.output())?.[1]}/stat`;
  supervisor.child.kill("SIGKILL");
  const portFree = async () => (await get(`${url}/health`)).error === "ECONNREFUSED";
  await until(portFree, "its port is free");
  // Gone, or a zombie waiting for its new parent to reap it.
  await until(() => !existsSync(stat) || /\) Z/.test(readFileSync(stat, "utf8")), "it exits");
});

/** A real process whose stdout nobody reads after it listens: a stuck log shipper. */
async function stuck() {
  const f = startFixture({ LOG_BUFFER_BYTES: String(64 * 1024), SHUTDOWN_TIMEOUT_MS: "2000" });
  const url = await f.url;
  const metric = async (name: string) => {
    const text = (await get(`${url}/metrics`)).body;
    return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text ?? "")?.[1]);
  };
  const rss = await metric("process_resident_memory_bytes");
  f.child.stdout.pause();
  return { ...f, url, metric, rss };
}

it("a stuck stdout: the service answers with bounded memory, counts dropped lines, exits in time", async () => {
  const f = await stuck();
  for (let i = 0; i < 100; i++) assert.equal((await get(`${f.url}/chatty?n=1000`)).status, 200);
  const dropped = await f.metric("log_lines_dropped_total");
  assert.ok(dropped >= 90_000, `most of 100 000 lines (100 MB) dropped and counted: ${dropped}`);
  const grown = (await f.metric("process_resident_memory_bytes")) - f.rss;
  assert.ok(grown < 80 * 2 ** 20, `RSS grew ${grown} bytes`);
  const signalled = Date.now();
  f.child.kill("SIGTERM");
  assert.equal(await f.exited, 1, "exit 1: the last lines could not be written");
  assert.ok(Date.now() - signalled < 2000 + 1000 + 2000, "SHUTDOWN_TIMEOUT_MS + 1 s (+ 2 s slack)");
});

it("once a stuck stdout drains, warnings say how many lines were dropped", async () => {
  const f = await stuck();
  assert.equal((await get(`${f.url}/chatty?n=1000`)).status, 200);
  f.child.stdout.resume();
  // Each warning counts the lines lost since the last one: together, every dropped line.
  const warned = () => [...f.output().matchAll(/"level":"warn".*"dropped_lines":(\d+)/g)];
  const reported = () => warned().reduce((sum, [, n]) => sum + Number(n), 0);
  const all = async () =>
    reported() > 0 && reported() === (await f.metric("log_lines_dropped_total"));
  await until(all, "every dropped line is reported");
  assert.match(f.output(), /"level":"warn".*"msg":"\d+ log lines were dropped: stdout did not/);
  f.child.kill("SIGTERM");
  assert.equal(await f.exited, 0);
});
