import "tpi/register"; // first, as in index.ts: the undici instrumentation adds traceparent

/**
 * The arm under network faults: real servers on ephemeral ports that refuse, stall, drop the
 * connection or answer 503 — the failures a client must survive. Its behaviour against a real
 * chillybin (picks, shortages, idempotent retries) is in chillybin.test.ts.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createMetrics, HttpProblem } from "tpi";
import { ChillybinClient } from "../src/chillybin-client";
import { closedPort, faultServer, memoryLogger, metricValue } from "./helpers";

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
  });
  clients.push(c);
  return { c, metrics };
}

async function server(handle: Parameters<typeof faultServer>[0]) {
  const s = await faultServer(handle);
  servers.push(s);
  return s;
}

/** Runs `fn`, expecting an HttpProblem; returns it. */
async function problem(fn: () => Promise<unknown>): Promise<HttpProblem> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof HttpProblem) return err;
    throw err;
  }
  assert.fail("expected an HttpProblem");
}

const ORDER = ["cheese", "bread", "bread"];
const W3C_TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

describe("v2 pick under network faults", () => {
  it("connection refused: retried, then 503 with Retry-After", async () => {
    const { c, metrics } = client(`http://127.0.0.1:${await closedPort()}`);
    const p = await problem(() => c.pickV2("gita", ORDER, "key-refused"));
    assert.equal(p.status, 503);
    assert.match(p.options.detail ?? "", /could not be reached \(ECONNREFUSED\)/);
    assert.match(p.options.headers?.["Retry-After"] ?? "", /^\d+$/);
    assert.equal(
      await metricValue(metrics, "chillybin_client_requests_total", {
        route: "/v2/pick",
        outcome: "network_error",
      }),
      3,
    );
  });

  it("no answer in time: every attempt carries the same Idempotency-Key, then 503", async () => {
    const slow = await server(() => {}); // reads the request, never answers
    const { c, metrics } = client(slow.url, { timeoutMs: 150 });
    const p = await problem(() => c.pickV2("gita", ORDER, "key-slow"));
    assert.equal(p.status, 503);
    assert.match(p.options.detail ?? "", /did not answer in time/);
    assert.equal(slow.requests.length, 3, "the first attempt and two retries");
    for (const r of slow.requests) {
      assert.equal(r.method, "POST");
      assert.equal(r.url, "/v2/pick");
      assert.equal(r.headers["idempotency-key"], "key-slow");
      assert.deepEqual(JSON.parse(r.body), {
        customer: "gita",
        items: [
          { ingredient: "cheese", quantity: 1 },
          { ingredient: "bread", quantity: 2 },
        ],
      });
    }
    assert.equal(
      await metricValue(metrics, "chillybin_client_requests_total", {
        route: "/v2/pick",
        outcome: "timeout",
      }),
      3,
    );
    assert.equal(
      await metricValue(metrics, "chillybin_client_request_duration_seconds_count", {
        route: "/v2/pick",
        outcome: "timeout",
      }),
      3,
    );
  });

  it("connection dropped after the request was sent: retried with the same key", async () => {
    const dropping = await server((req) => req.socket.destroy());
    const { c } = client(dropping.url);
    const p = await problem(() => c.pickV2("gita", ORDER, "key-dropped"));
    assert.equal(p.status, 503);
    assert.equal(dropping.requests.length, 3);
    assert.deepEqual(
      new Set(dropping.requests.map((r) => r.headers["idempotency-key"])),
      new Set(["key-dropped"]),
    );
  });

  it("503 is retried; the last one's Retry-After reaches the customer", async () => {
    const busy = await server((_req, res) => {
      res.writeHead(503, { "Content-Type": "application/problem+json", "Retry-After": "0" });
      res.end(
        JSON.stringify({
          title: "Database unavailable",
          status: 503,
          detail: "the database is down",
        }),
      );
    });
    const { c, metrics } = client(busy.url);
    const p = await problem(() => c.pickV2("gita", ORDER, "key-503"));
    assert.equal(busy.requests.length, 3);
    assert.equal(p.status, 503);
    assert.equal(p.options.headers?.["Retry-After"], "0");
    assert.match(p.options.detail ?? "", /answered 503: the database is down/);
    assert.equal(
      await metricValue(metrics, "chillybin_client_requests_total", {
        route: "/v2/pick",
        outcome: "server_error",
      }),
      3,
    );
  });

  it("a 503 asking for a longer pause than the backoff allows is not retried", async () => {
    const busy = await server((_req, res) => {
      res.writeHead(503, { "Retry-After": "30" });
      res.end();
    });
    const { c } = client(busy.url);
    const p = await problem(() => c.pickV2("gita", ORDER, "key-503-long"));
    assert.equal(busy.requests.length, 1);
    assert.equal(p.options.headers?.["Retry-After"], "30");
  });

  it("a 500 is not retried and becomes 503; a 200 without an order id is a 502", async () => {
    const broken = await server((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    assert.equal(
      (await problem(() => client(broken.url).c.pickV2("gita", ORDER, "k500"))).status,
      503,
    );
    assert.equal(broken.requests.length, 1);

    const odd = await server((_req, res) => {
      res.setHeader("Content-Type", "application/json");
      res.end("{}");
    });
    assert.equal(
      (await problem(() => client(odd.url).c.pickV2("gita", ORDER, "k200"))).status,
      502,
    );
  });
});

describe("v1 pick under network faults", () => {
  it("is not retried once the request was sent (GET /pick changes stock), and says what was taken", async () => {
    const dropSecond = await server((req, res, n) => {
      if (n === 1) res.end("ok");
      else req.socket.destroy();
    });
    const { c } = client(dropSecond.url);
    const p = await problem(() => c.pickV1(["cheese", "vegemite", "bread", "bread"]));
    assert.equal(p.status, 503);
    assert.deepEqual(
      dropSecond.requests.map((r) => r.url),
      ["/pick?name=cheese&quantity=1", "/pick?name=vegemite&quantity=1"],
    );
    assert.deepEqual(p.options.extensions?.taken, ["cheese"]);
    assert.equal(p.options.extensions?.failedAt, "vegemite");
    assert.match(p.options.detail ?? "", /Already taken before vegemite failed .*: cheese\./);
  });

  it("is retried when the connection was refused (the request never left)", async () => {
    const { c, metrics } = client(`http://127.0.0.1:${await closedPort()}`);
    const p = await problem(() => c.pickV1(["cheese"]));
    assert.equal(p.status, 503);
    assert.deepEqual(p.options.extensions?.taken, []);
    assert.equal(
      await metricValue(metrics, "chillybin_client_requests_total", {
        route: "/pick",
        outcome: "network_error",
      }),
      3,
    );
  });
});

describe("every call", () => {
  it("carries W3C trace context and jafflr's User-Agent", async () => {
    const ok = await server((_req, res) => res.end("ok"));
    const { c } = client(ok.url);
    await c.pickV1(["cheese"]);
    await c.ping();
    assert.equal(ok.requests.length, 2);
    for (const r of ok.requests) {
      assert.match(String(r.headers.traceparent), W3C_TRACEPARENT);
      assert.equal(r.headers["user-agent"], "jafflr/9.9.9");
    }
  });

  it("reuses a kept-alive connection", async () => {
    const ok = await server((_req, res) => res.end("ok"));
    const { c } = client(ok.url);
    await c.pickV1(["cheese", "ham", "tomato", "bread", "bread", "bread"]);
    const ports = new Set(ok.requests.map((r) => r.remotePort));
    assert.equal(ok.requests.length, 6);
    assert.ok(
      ports.size < 6,
      `connections are reused, not one per call (${ports.size} for 6 calls)`,
    );
  });

  it("keeps a path prefix in CHILLYBIN_URL (chillybin behind a path-routing proxy)", async () => {
    const ok = await server((_req, res) => res.end("ok"));
    const { c } = client(`${ok.url}/cold-store/`);
    await c.pickV1(["cheese"]);
    assert.deepEqual(
      ok.requests.map((r) => r.url),
      ["/cold-store/pick?name=cheese&quantity=1"],
    );
  });

  it("ping rejects with the reason when chillybin is unreachable", async () => {
    const { c } = client(`http://127.0.0.1:${await closedPort()}`);
    await assert.rejects(c.ping(), /chillybin unreachable: ECONNREFUSED/);
  });
});
