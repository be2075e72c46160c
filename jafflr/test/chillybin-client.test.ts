import "tpi/register"; // first, as in index.ts: the undici instrumentation adds traceparent

/**
 * The transport against real servers on ephemeral ports that refuse, stall, drop the connection
 * or answer 503, and what it learns about chillybin being reachable. What answers mean to a
 * toastie is in pick-v2.test.ts and pick-v1.test.ts.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, describe, it } from "node:test";
import { createMetrics } from "tpi";
import type { Call, Reply } from "../src/chillybin-client";
import { closedPort, eventually, faultServer, metricValue, testClient } from "./helpers";

const open: { close: () => Promise<unknown> }[] = [];
after(async () => {
  for (const o of open) await o.close();
});

function client(baseUrl: string, timeoutMs = 2_000) {
  const metrics = createMetrics({ service: "jafflr", version: "test" });
  const c = testClient(baseUrl, timeoutMs, metrics.registry);
  open.push(c);
  const attempts = (route: string, outcome: string) =>
    metricValue(metrics, "chillybin_client_requests_total", { route, outcome });
  return { c, attempts };
}

async function server(handle: Parameters<typeof faultServer>[0]) {
  const s = await faultServer(handle);
  open.push(s);
  return s;
}

const KEYED: Call = {
  method: "POST",
  path: "/v2/pick",
  body: '{"customer":"gita"}',
  headers: { "content-type": "application/json", "idempotency-key": "key-1" },
};
const KEYLESS: Call = { method: "GET", path: "/pick?name=cheese&quantity=1" };
const HEALTH: Call = { method: "GET", path: "/health" };
const failure = (r: Reply) => (r.answered ? assert.fail("expected no answer") : r.failure);
const answer = (r: Reply) =>
  r.answered ? r.answer : assert.fail(`no answer: ${r.failure.reason}`);

describe("retries: a keyed call after any failure, a keyless one only if it never left", () => {
  const refused = async () => ({ url: `http://127.0.0.1:${await closedPort()}`, requests: [] });
  const drops = () => server((req) => req.socket.destroy());
  const silent = () => server(() => {});
  const cases = [
    ["refused, keyed", refused, KEYED, "network_error", 3],
    ["refused, keyless (never left)", refused, KEYLESS, "network_error", 3],
    ["dropped after sending, keyed", drops, KEYED, "network_error", 3],
    ["dropped after sending, keyless: GET /pick changes stock", drops, KEYLESS, "network_error", 1],
    ["no answer in time, keyed", silent, KEYED, "timeout", 3],
  ] as const;
  for (const [name, start, call, kind, tries] of cases) {
    it(`${name} → ${tries} attempt(s), no answer (${kind})`, async () => {
      const s = await start();
      const { c, attempts } = client(s.url, 150);
      const f = failure(await c.call(call));
      assert.equal(f.kind, kind);
      if (name.startsWith("refused"))
        assert.deepEqual(f, { kind, reason: "ECONNREFUSED", notSent: true });
      if (kind === "timeout") assert.equal(f.reason, "no answer within 150 ms");
      assert.equal(await attempts(call.path.split("?")[0] as string, kind), tries);
      if (s.requests.length === 0) return;
      // The server may read the last attempt after the client has given up on it.
      await eventually(() => s.requests.length === tries, `${tries} requests arrived`);
      for (const r of s.requests) assert.deepEqual([r.url, r.body], [call.path, call.body ?? ""]);
    });
  }

  it("a 503 is retried and the last answer returned; a long Retry-After or a 500 is not", async () => {
    let retryAfter = "0";
    let status = 503;
    const busy = await server((_req, res) => {
      res.writeHead(status, {
        "Content-Type": "application/problem+json",
        "Retry-After": retryAfter,
      });
      res.end(JSON.stringify({ title: "Database unavailable" }));
    });
    const { c, attempts } = client(busy.url);
    for (const [after, code, tries] of [
      ["0", 503, 3],
      ["30", 503, 1],
      ["0", 500, 1],
    ] as const) {
      [retryAfter, status, busy.requests.length] = [after, code, 0];
      const a = answer(await c.call(KEYED));
      assert.deepEqual(
        [a.status, a.headers["retry-after"], a.body],
        [code, after, { title: "Database unavailable" }],
      );
      assert.equal(busy.requests.length, tries, `${code} Retry-After ${after}`);
    }
    assert.equal(await attempts("/v2/pick", "server_error"), 5);
  });

  it("an oversized answer is no answer", async () => {
    const huge = await server((_req, res) => res.end("x".repeat(1024 * 1024 + 1)));
    assert.equal(failure(await client(huge.url).c.call(KEYED)).kind, "network_error");
  });
});

describe("every call", () => {
  it("carries trace context and jafflr's User-Agent, on a kept-alive connection below CHILLYBIN_URL's path", async () => {
    const ok = await server((_req, res) => res.end("ok"));
    const { c, attempts } = client(`${ok.url}/cold-store/`);
    for (let i = 0; i < 5; i++) assert.equal(answer(await c.call(KEYLESS)).body, "ok");
    await c.call(HEALTH);
    assert.equal(await attempts("/pick", "ok"), 5);
    assert.ok(new Set(ok.requests.map((r) => r.remotePort)).size < 6, "connections are reused");
    assert.deepEqual(ok.requests.at(-1)?.url, "/cold-store/health");
    for (const r of ok.requests) {
      assert.match(String(r.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      assert.equal(r.headers["user-agent"], "jafflr/9.9.9");
    }
  });
});

describe("reachability", () => {
  it("only a connection that cannot be made means down; any answer, or a slow one, does not", async () => {
    const { c } = client(`http://127.0.0.1:${await closedPort()}`);
    assert.deepEqual(
      { ...c.reachability },
      { reachable: true, checkedAt: null },
      "optimistic first",
    );
    await c.call(KEYLESS);
    assert.equal(c.reachability.reason, "ECONNREFUSED");
    assert.ok(!c.reachability.reachable && c.reachability.checkedAt);
    for (const handle of [
      (req: http.IncomingMessage) => req.socket.destroy(),
      (_req: http.IncomingMessage, res: http.ServerResponse) => res.writeHead(500).end(),
      () => {},
    ]) {
      const s = await server(handle);
      const other = client(s.url, 200).c;
      await other.call(KEYLESS);
      await other.call(HEALTH);
      assert.equal(other.reachability.reachable, true);
    }
  });

  it("is checked on /health once started, and recovers by itself", async () => {
    const port = await closedPort();
    const { c } = client(`http://127.0.0.1:${port}`);
    await c.call(HEALTH);
    assert.equal(c.reachability.reachable, false);
    c.start();
    const paths: string[] = [];
    const cold = http.createServer((req, res) => res.end(void paths.push(req.url ?? "")));
    await new Promise<void>((resolve) => cold.listen(port, "127.0.0.1", resolve));
    open.push({ close: () => new Promise((resolve) => cold.close(resolve)) });
    await eventually(() => c.reachability.reachable, "the periodic check sees chillybin back");
    assert.ok(paths.every((p) => p === "/health"));
  });
});
