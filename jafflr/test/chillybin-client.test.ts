import "tpi/register"; // first, as in index.ts: the undici instrumentation adds traceparent

/**
 * The transport under network faults: real servers on ephemeral ports that refuse, stall, drop
 * the connection or answer 503 — the failures a client must survive — and what it learns about
 * chillybin being reachable. What the answers mean is in pick-v2.test.ts and pick-v1.test.ts.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, describe, it } from "node:test";
import { createMetrics } from "tpi";
import { type Call, ChillybinClient, type Reply } from "../src/chillybin-client";
import { closedPort, eventually, faultServer, memoryLogger, metricValue } from "./helpers";

const servers: { close: () => Promise<void> }[] = [];
const clients: ChillybinClient[] = [];
after(async () => {
  for (const c of clients) await c.close();
  for (const s of servers) await s.close();
});

function client(baseUrl: string, opts: { retries?: number; timeoutMs?: number } = {}) {
  const metrics = createMetrics({ service: "jafflr", version: "test" });
  const c = new ChillybinClient({
    baseUrl,
    connectTimeoutMs: 1_000,
    timeoutMs: opts.timeoutMs ?? 2_000,
    retries: opts.retries ?? 2,
    version: "9.9.9",
    registry: metrics.registry,
    logger: memoryLogger().logger,
    backoffBaseMs: 5,
    backoffMaxMs: 20,
    checkEveryMs: 50,
  });
  clients.push(c);
  return { c, metrics };
}

async function server(handle: Parameters<typeof faultServer>[0]) {
  const s = await faultServer(handle);
  servers.push(s);
  return s;
}

const POST: Call = {
  route: "/v2/pick",
  method: "POST",
  path: "/v2/pick",
  body: '{"customer":"gita"}',
  headers: { "content-type": "application/json", "idempotency-key": "key-1" },
  retry: "idempotent",
};
const GET: Call = {
  route: "/pick",
  method: "GET",
  path: "/pick?name=cheese&quantity=1",
  retry: "unsent-only",
};

function failure(reply: Reply) {
  assert.equal(reply.answered, false, "expected no answer");
  return (reply as Extract<Reply, { answered: false }>).failure;
}
function answer(reply: Reply) {
  assert.equal(reply.answered, true, "expected an answer");
  return (reply as Extract<Reply, { answered: true }>).answer;
}
const attempts = (metrics: ReturnType<typeof createMetrics>, route: string, outcome: string) =>
  metricValue(metrics, "chillybin_client_requests_total", { route, outcome });

describe("retries, as each call's policy allows", () => {
  it("connection refused: an idempotent call is retried, and resolves with the reason", async () => {
    const { c, metrics } = client(`http://127.0.0.1:${await closedPort()}`);
    const f = failure(await c.call(POST));
    assert.deepEqual(f, { kind: "network_error", reason: "ECONNREFUSED", notSent: true });
    assert.equal(await attempts(metrics, "/v2/pick", "network_error"), 3);
  });

  it("connection refused: a call without a key is retried too (the request never left)", async () => {
    const { c, metrics } = client(`http://127.0.0.1:${await closedPort()}`);
    failure(await c.call(GET));
    assert.equal(await attempts(metrics, "/pick", "network_error"), 3);
  });

  it("no answer in time: every attempt is the same request, each counted and timed", async () => {
    const slow = await server(() => {}); // reads the request, never answers
    const { c, metrics } = client(slow.url, { timeoutMs: 150 });
    const f = failure(await c.call(POST));
    assert.equal(f.kind, "timeout");
    assert.match(f.reason, /no answer within 150 ms/);
    // The server may read the last attempt after the client has already given up on it.
    await eventually(() => slow.requests.length === 3, "the first attempt and two retries");
    for (const r of slow.requests) {
      assert.equal(r.method, "POST");
      assert.equal(r.url, "/v2/pick");
      assert.equal(r.headers["idempotency-key"], "key-1");
      assert.equal(r.body, '{"customer":"gita"}');
    }
    assert.equal(await attempts(metrics, "/v2/pick", "timeout"), 3);
    assert.equal(
      await metricValue(metrics, "chillybin_client_request_duration_seconds_count", {
        route: "/v2/pick",
        outcome: "timeout",
      }),
      3,
    );
  });

  it("connection dropped after the request was sent: idempotent retried, keyless not", async () => {
    const dropping = await server((req) => req.socket.destroy());
    failure(await client(dropping.url).c.call(POST));
    assert.equal(dropping.requests.length, 3);
    dropping.requests.length = 0;
    failure(await client(dropping.url).c.call(GET));
    assert.equal(dropping.requests.length, 1, "GET /pick changes stock: never sent twice");
  });

  it("a 503 is retried and the last answer returned; a long Retry-After or a 500 is not", async () => {
    let retryAfter = "0";
    const busy = await server((_req, res) => {
      res.writeHead(503, { "Content-Type": "application/problem+json", "Retry-After": retryAfter });
      res.end(JSON.stringify({ title: "Database unavailable", status: 503 }));
    });
    const { c, metrics } = client(busy.url);
    const a = answer(await c.call(POST));
    assert.equal(a.status, 503);
    assert.equal(a.headers["retry-after"], "0");
    assert.deepEqual(a.body, { title: "Database unavailable", status: 503 });
    assert.equal(busy.requests.length, 3);
    assert.equal(await attempts(metrics, "/v2/pick", "server_error"), 3);

    busy.requests.length = 0;
    retryAfter = "30";
    assert.equal(answer(await c.call(POST)).status, 503);
    assert.equal(busy.requests.length, 1, "asks for a longer pause than the backoff allows");

    const broken = await server((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    assert.equal(answer(await client(broken.url).c.call(POST)).status, 500);
    assert.equal(broken.requests.length, 1);
  });

  it("an oversized answer counts as no answer (retried like a lost one)", async () => {
    const huge = await server((_req, res) => res.end("x".repeat(1024 * 1024 + 1)));
    const f = failure(await client(huge.url).c.call(POST));
    assert.match(f.reason, /larger than/);
    assert.equal(huge.requests.length, 3);
  });
});

describe("every call", () => {
  it("carries W3C trace context and jafflr's User-Agent", async () => {
    const ok = await server((_req, res) => res.end("ok"));
    const { c } = client(ok.url);
    await c.call(GET);
    await c.check();
    assert.equal(ok.requests.length, 2);
    for (const r of ok.requests) {
      assert.match(String(r.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      assert.equal(r.headers["user-agent"], "jafflr/9.9.9");
    }
  });

  it("reuses a kept-alive connection", async () => {
    const ok = await server((_req, res) => res.end("ok"));
    const { c } = client(ok.url);
    for (let i = 0; i < 6; i++) await c.call(GET);
    const ports = new Set(ok.requests.map((r) => r.remotePort));
    assert.equal(ok.requests.length, 6);
    assert.ok(ports.size < 6, `connections are reused, not one per call (${ports.size} for 6)`);
  });

  it("keeps a path prefix in CHILLYBIN_URL (chillybin behind a path-routing proxy)", async () => {
    const ok = await server((_req, res) => res.end("ok"));
    await client(`${ok.url}/cold-store/`).c.call(GET);
    assert.deepEqual(
      ok.requests.map((r) => r.url),
      ["/cold-store/pick?name=cheese&quantity=1"],
    );
  });
});

describe("reachability", () => {
  it("is learnt from calls: a refused connection marks chillybin down, any answer up", async () => {
    let refuse = true;
    const flaky = await server((req, res) => {
      if (refuse) req.socket.destroy();
      else res.end("ok");
    });
    const { c, metrics } = client(`http://127.0.0.1:${await closedPort()}`);
    assert.equal(c.reachability.reachable, true, "optimistic before anything is known");
    assert.equal(c.reachability.checkedAt, null);
    await c.call(GET);
    assert.equal(c.reachability.reachable, false);
    assert.equal(c.reachability.reason, "ECONNREFUSED");
    assert.ok(c.reachability.checkedAt);
    assert.equal(await metricValue(metrics, "jafflr_chillybin_up", {}), 0);

    // A dropped connection after sending is chillybin being odd, not gone.
    const other = client(flaky.url).c;
    await other.call(GET);
    assert.equal(other.reachability.reachable, true);
    refuse = false;
    await other.call(GET);
    assert.equal(other.reachability.reachable, true);
  });

  it("is checked on /health with a deadline, and recovers by itself once started", async () => {
    // Nothing listens: unreachable. Then chillybin comes up on that port: the periodic check sees it.
    const port = await closedPort();
    const { c, metrics } = client(`http://127.0.0.1:${port}`);
    assert.equal((await c.check()).reachable, false);
    assert.equal(c.reachability.reason, "ECONNREFUSED");
    c.start();
    const paths: string[] = [];
    const cold = http.createServer((req, res) => {
      paths.push(req.url ?? "");
      res.end();
    });
    await new Promise<void>((resolve) => cold.listen(port, "127.0.0.1", resolve));
    servers.push({ close: () => new Promise<void>((resolve) => cold.close(() => resolve())) });
    await eventually(() => c.reachability.reachable, "the periodic check sees chillybin back");
    assert.equal(await metricValue(metrics, "jafflr_chillybin_up", {}), 1);
    assert.ok(paths.length > 0 && paths.every((p) => p === "/health"));

    // Any answer, even a 500, is a chillybin that answers: its own problems reach customers as
    // they are. A 503 from a proxy or a draining instance must not close the whole stall.
    const failing = await server((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    assert.equal((await client(failing.url).c.check()).reachable, true);

    // A check that times out (chillybin busy) is no verdict: slow is not gone.
    const silent = await server(() => {});
    const slow = client(silent.url, { timeoutMs: 200 }).c;
    assert.equal((await slow.check()).reachable, true);
    // The server may read the check after the client has already given up on it.
    await eventually(() => silent.requests.length === 1, "the check was sent");
    const gone = client(`http://127.0.0.1:${await closedPort()}`).c;
    const r = await gone.check();
    assert.equal(r.reachable, false);
    assert.equal(r.reason, "ECONNREFUSED");
  });
});
