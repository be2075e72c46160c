/**
 * jafflr and chillybin as real processes on a fresh database, a TcpProxy between them (to see what
 * jafflr sent, lose an answer, cut the stall page's upstream) and one between chillybin and
 * PostgreSQL (to take the database away); traces go to an OTLP receiver this test runs, and
 * jafflr's Unleash is an address that resets every connection, so its flags come from the file
 * (gita on v2). v2 end to end, observability, the stall page's stream, faults, graceful shutdown.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { actClient, type Json, type Reply } from "testkit/http-client";
import { tryConnect } from "testkit/net";
import { openPage } from "../src/page";
import { eventually, needsOwnProcesses, type Stall, startStall } from "../src/stall";
import { CLIENT, requestCount, SERVER, samples, startOtlpReceiver } from "../src/telemetry";

const VERSIONS = { jafflr: "9.9.9-it.jafflr", chillybin: "9.9.9-it.chillybin" };
const FULL = { bread: 20, cheese: 20, ham: 20, vegemite: 20 };
const gitas = (ingredients = ["cheese", "vegemite"]) => ({
  json: { customer: "gita", ingredients },
});

describe("jafflr and chillybin as processes", needsOwnProcesses, () => {
  let s: Stall;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let unleashPolls = 0;
  const unleash = createServer((socket) => {
    unleashPolls++;
    socket.resetAndDestroy();
  });

  before(async () => {
    receiver = await startOtlpReceiver();
    await new Promise<void>((resolve) => unleash.listen(0, "127.0.0.1", resolve));
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "200" };
    s = await startStall({
      proxy: true,
      pgProxy: true,
      chillybinEnv: { ...otel, VERSION: VERSIONS.chillybin },
      jafflrEnv: {
        ...otel,
        VERSION: VERSIONS.jafflr,
        UNLEASH_URL: `http://127.0.0.1:${(unleash.address() as { port: number }).port}/api`,
        UNLEASH_API_TOKEN: "default:development.it",
        UNLEASH_REFRESH_MS: "200",
        FLAGS_WAIT_MS: "1000",
        CHILLYBIN_RETRIES: "2",
      },
    });
  });
  after(async () => {
    await s?.stop();
    await receiver?.close();
    unleash.close();
  });

  const proxy = () => s.proxy as NonNullable<Stall["proxy"]>;
  /** The picks jafflr sent chillybin from exchange `from` on. */
  const picks = (from: number) =>
    proxy()
      .exchanges.slice(from)
      .filter((e) => /^(POST \/v2\/pick|GET \/pick)/.test(e.request));
  const header = (text: string, name: string) =>
    new RegExp(`^${name}: (.*)$`, "im").exec(text)?.[1]?.trim();
  const bodyOf = (text: string) => text.slice(text.indexOf("\r\n\r\n") + 4);
  const orders = async (customer = "gita") =>
    (await s.cold.get(`/orders?customer=${customer}&limit=100`)).body.orders;
  const taken = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(before)
        .map(([k, n]) => [k, n - (after[k] ?? 0)])
        .filter(([, n]) => n),
    );

  /** A test whose failure ends with the services' output. */
  const it = (name: string, body: () => Promise<void>) => test(name, () => s.withLogs(body)());

  it("gita's toastie goes through v2: ONE POST /v2/pick, one atomic order with every item", async () => {
    await s.cold.post("/restock", { json: FULL });
    const [before, mark, ordersBefore] = [
      await s.stock(),
      proxy().exchanges.length,
      await orders(),
    ];
    const res = await s.grill.post("/toastie", { json: { ...gitas().json, doneness: "medium" } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual([res.body.pickedVia, res.body.doneness], ["v2", "medium"]);
    const [order, ...others] = await orders(); // newest first
    assert.equal(others.length, ordersBefore.length);
    assert.equal(order.id, res.body.orderId);
    assert.deepEqual(order.items, [
      { ingredient: "bread", quantity: 2 },
      { ingredient: "cheese", quantity: 1 },
      { ingredient: "vegemite", quantity: 1 },
    ]);
    assert.deepEqual(taken(before, await s.stock()), { bread: 2, cheese: 1, vegemite: 1 });
    assert.deepEqual(
      picks(mark).map((e) => e.request.split(" ", 2).join(" ")),
      ["POST /v2/pick"],
    );
  });

  it("the original's GET /toastie still orders (deprecated), and HEAD picks nothing", async () => {
    const before = await s.stock();
    assert.equal((await s.grill.request("HEAD", "/toastie?i=cheese&customer=gita")).status, 200);
    assert.deepEqual(await s.stock(), before, "HEAD toasted nothing");
    const res = await s.grill.get("/toastie?i=cheese&customer=gita&doneness=burnt", {
      headers: { "user-agent": "curl/8.5.0" },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.doneness, "burnt");
    assert.match(res.headers.get("deprecation") ?? "", /^@\d+$/);
    assert.equal(res.headers.get("link"), '</toastie>; rel="successor-version"');
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.deepEqual(taken(before, await s.stock()), { bread: 2, cheese: 1 });
    const metrics = (await s.grill.get("/metrics")).text;
    assert.match(metrics, /jafflr_legacy_toastie_calls_total\{[^}]*caller="curl"[^}]*\} 1/);
  });

  it("short stock → 409 out-of-stock naming only vegemite; nothing taken, no order", async () => {
    await s.cold.post("/restock", { json: { ...FULL, vegemite: 0 } });
    const [before, ordersBefore] = [await s.stock(), await orders()];
    const res = await s.grill.post("/toastie", gitas());
    assertProblem(res, 409);
    assert.equal(res.body.type, "https://toasties-galore.example/problems/out-of-stock");
    assert.equal(res.body.title, "Out of stock");
    assert.deepEqual(res.body.short, [{ ingredient: "vegemite", requested: 1, available: 0 }]);
    assert.deepEqual(await s.stock(), before);
    assert.deepEqual(await orders(), ordersBefore);
  });

  it("the customer's Idempotency-Key: a retry is the same order, picked once; another order under it → 422", async () => {
    await s.cold.post("/restock", { json: FULL });
    const before = await s.stock();
    const headers = { "Idempotency-Key": `lunch-${Date.now()}` };
    const first = await s.grill.post("/toastie", { ...gitas(), headers });
    const again = await s.grill.post("/toastie", { ...gitas(), headers });
    assert.equal(first.status, 200, first.text);
    assert.equal(again.body.orderId, first.body.orderId, again.text);
    assert.deepEqual(taken(before, await s.stock()), { bread: 2, cheese: 1, vegemite: 1 });
    const reused = await s.grill.post("/toastie", { ...gitas(["cheese", "ham"]), headers });
    assertProblem(reused, 422);
    assert.equal(
      reused.body.type,
      "https://toasties-galore.example/problems/idempotency-key-reused",
    );
    assert.deepEqual(taken(before, await s.stock()), { bread: 2, cheese: 1, vegemite: 1 });
  });

  it("an answer lost after chillybin committed: jafflr retries with the same key and order, one order", async () => {
    const [before, mark, ordersBefore] = [
      await s.stock(),
      proxy().exchanges.length,
      await orders(),
    ];
    proxy().loseNextAnswer("POST /v2/pick");
    const res = await s.grill.post("/toastie", gitas());
    assert.equal(res.status, 200, res.text);
    const [lost, retry, ...more] = picks(mark);
    assert.equal(lost?.fate, "dropped");
    assert.equal(more.length, 0, "one retry");
    assert.match(
      lost?.response ?? "",
      /^HTTP\/1\.1 200/,
      "chillybin placed the order the first time",
    );
    assert.equal(
      header(retry?.request ?? "", "idempotency-key"),
      header(lost?.request ?? "", "idempotency-key"),
    );
    assert.ok(
      header(lost?.request ?? "", "idempotency-key"),
      "the attempts carry an Idempotency-Key",
    );
    assert.equal(bodyOf(retry?.request ?? ""), bodyOf(lost?.request ?? ""), "the same order");
    assert.equal(header(retry?.response ?? "", "idempotent-replayed"), "true");
    assert.equal(
      (await orders()).length,
      ordersBefore.length + 1,
      "chillybin placed the order once",
    );
    assert.equal((await orders())[0].id, res.body.orderId);
    assert.deepEqual(taken(before, await s.stock()), { bread: 2, cheese: 1, vegemite: 1 });
  });

  it("one toastie is ONE trace: jafflr's server and client spans, chillybin's server span, its pg queries; jafflr's log line carries it", async () => {
    const done = () =>
      s.jafflr
        .logs()
        .split("\n")
        .filter((l) => l.includes('"toastie done"'));
    const logged = done().length;
    const res = await s.grill.post("/toastie", gitas());
    assert.equal(res.status, 200, res.text);
    // The log line reaches the test through a pipe, a moment after the answer.
    const line = await eventually(() => done()[logged], {
      timeoutMs: 10_000,
      message: () => "no log line",
    });
    const traceId = JSON.parse(line).trace_id;
    const isPg = (x: { scope: string }) => x.scope.includes("pg");
    const of = (service: string, kind: number) =>
      receiver.spans.filter(
        (x) => x.traceId === traceId && x.service === service && x.kind === kind,
      );
    // Spans arrive in batches (OTEL_BSP_SCHEDULE_DELAY): wait for the whole trace.
    const [toastie] = await eventually(
      () => {
        const roots = of("jafflr", SERVER);
        return roots.length &&
          of("chillybin", SERVER).length &&
          receiver.spans.some((x) => x.traceId === traceId && isPg(x))
          ? roots
          : undefined;
      },
      {
        timeoutMs: 10_000,
        message: () =>
          `no whole trace ${traceId} in ${JSON.stringify(receiver.spans.map((x) => x.name))}`,
      },
    );
    const trace = receiver.spans.filter((x) => x.traceId === traceId);
    const byId = new Map(trace.map((x) => [x.spanId, x]));
    const inside = (span: { parentSpanId: string }, ancestor: unknown) => {
      for (let p = byId.get(span.parentSpanId); p; p = byId.get(p.parentSpanId))
        if (p === ancestor) return true;
      return false;
    };
    assert.equal(toastie?.parentSpanId, "", "jafflr's server span starts the trace");
    const client = of("jafflr", CLIENT).find((x) =>
      /\/v2\/pick/.test(`${x.attributes["url.full"] ?? x.attributes["http.url"]}`),
    );
    assert.ok(client && inside(client, toastie), "jafflr's call is inside its request");
    const [server, ...others] = of("chillybin", SERVER);
    assert.equal(others.length, 0);
    assert.equal(
      server?.parentSpanId,
      client.spanId,
      "chillybin continues the trace (traceparent)",
    );
    const queries = trace.filter(isPg);
    assert.ok(
      queries.some((q) =>
        /UPDATE ingredients/i.test(
          `${q.attributes["db.query.text"] ?? q.attributes["db.statement"]}`,
        ),
      ),
    );
    for (const q of queries) assert.ok(q.kind === CLIENT && inside(q, server), q.name);
  });

  it("both /metrics count requests under route templates with the version label; jafflr counts its calls", async () => {
    const scrape = async () => ({
      jafflr: (await s.grill.get("/metrics")).text,
      chillybin: (await s.coldAct.get("/metrics")).text,
    });
    const before = await scrape();
    assert.equal((await s.grill.post("/toastie", gitas(["cheese"]))).status, 200);
    const after = await scrape();
    const delta = (service: "jafflr" | "chillybin", labels: Record<string, string>) =>
      requestCount(after[service], labels) - requestCount(before[service], labels);
    assert.equal(delta("jafflr", { method: "POST", route: "/toastie", status_code: "200" }), 1);
    assert.equal(delta("chillybin", { method: "POST", route: "/v2/pick", status_code: "200" }), 1);
    for (const service of ["jafflr", "chillybin"] as const) {
      const counted = samples(after[service], "http_requests_total");
      assert.ok(counted.length > 0, service);
      for (const { labels } of counted) {
        assert.equal(labels.version, VERSIONS[service]);
        assert.doesNotMatch(labels.route ?? "", /\?|\/\d+$/, "route templates, never raw URLs");
      }
    }
    assert.match(
      after.jafflr,
      /chillybin_client_requests_total\{[^}]*route="\/v2\/pick"[^}]*outcome="ok"[^}]*\} [1-9]/,
    );
    assert.match(after.jafflr, /toasties_total\{[^}]*picked_via="v2"[^}]*\} [1-9]/);
    assert.match(after.jafflr, /jafflr_chillybin_up(\{[^}]*\})? 1/);
  });

  it("the stall page's stream: chillybin's stock and a restock, ONE upstream stream for several pages (none for none), a v2 pick on the meter", async () => {
    const watching = async () =>
      samples((await s.grill.get("/metrics")).text, "stall_chillybin_watching")[0]?.value;
    await s.cold.post("/restock", { json: FULL });
    const pages = await Promise.all([1, 2, 3].map(() => openPage(s.jafflr.url)));
    try {
      // A page that connects after the watch heard chillybin gets the stock in its snapshot.
      for (const page of pages) await page.next((m) => m.event === "stock" || m.data?.stock);
      assert.equal(proxy().connections("GET /events"), 1, "one GET /events for three pages");
      assert.equal(await watching(), 1);
      await s.cold.post("/restock", { json: { cheese: 3 } });
      await pages[0]?.next((m) => m.event === "stock" && m.data.cheese === 3);
      // The meter counts toasties done, kept by jafflr: one more via v2, none more via v1.
      const fresh = await openPage(s.jafflr.url);
      const was = (await fresh.next((m) => m.event === "snapshot")).data.meter.points;
      fresh.close();
      const total = (points: Json[], via: string) => points.reduce((n, p) => n + p[via], 0);
      assert.equal((await s.grill.post("/toastie", gitas(["cheese"]))).status, 200);
      const now = await pages[0]?.next(
        (m) => m.event === "meter" && total(m.data.points, "v2") > total(was, "v2"),
      );
      assert.equal(total(now?.data.points, "v2"), total(was, "v2") + 1);
      assert.equal(total(now?.data.points, "v1"), total(was, "v1"));
    } finally {
      for (const page of pages) page.close();
    }
    await eventually(() => (proxy().connections("GET /events") === 0 ? true : undefined), {
      timeoutMs: 10_000,
      message: () => "the upstream stream stayed open with no page",
    });
    assert.equal(await watching(), 0);
  });

  it("the page's upstream connection drops: the page hears so, jafflr reconnects, the stock flows again", async () => {
    const page = await openPage(s.jafflr.url);
    try {
      await page.next((m) => m.event === "stock" || m.data?.stock);
      const watches = () =>
        proxy().exchanges.filter((e) => e.request.startsWith("GET /events")).length;
      const seen = watches();
      proxy().cut("GET /events");
      assert.equal((await page.nextEvent("cold")).connected, false);
      assert.equal((await page.nextEvent("cold", 15_000)).connected, true);
      assert.equal(watches(), seen + 1, "one new watch");
      await s.cold.post("/restock", { json: { ham: 4 } });
      await page.next((m) => m.event === "stock" && m.data.ham === 4);
    } finally {
      page.close();
    }
  });

  it("chillybin crashes: 503 + Retry-After, jafflr stays ready and says so; back on its port, jafflr recovers by itself", async () => {
    await s.cold.post("/restock", { json: FULL });
    const before = await s.stock();
    s.chillybin.kill();
    await s.chillybin.exited;
    await proxy().close(); // its Service has no endpoint left: connections are refused
    for (const reply of [
      await s.grill.post("/toastie", gitas()),
      await s.grill.post("/toastie", gitas()),
    ]) {
      assertProblem(reply, 503);
      assert.equal(
        reply.body.type,
        "https://toasties-galore.example/problems/cold-store-unavailable",
      );
      assert.match(reply.headers.get("retry-after") ?? "", /^\d+$/);
    }
    assert.equal(
      (await s.grill.get("/ready")).status,
      200,
      "one dependency down must not empty jafflr's Service",
    );
    await eventually(
      async () => (await s.grill.get("/")).body.chillybin.reachable === false || undefined,
      {
        timeoutMs: 10_000,
        message: () => "jafflr never said chillybin is unreachable",
      },
    );
    assert.match((await s.grill.get("/metrics")).text, /jafflr_chillybin_up(\{[^}]*\})? 0/);
    await s.restartChillybin();
    await proxy().open();
    await eventually(async () => (await s.grill.get("/")).body.chillybin.reachable || undefined, {
      timeoutMs: 30_000,
      message: () => "jafflr did not see chillybin back",
    });
    assert.deepEqual(await s.stock(), before, "nothing was picked while chillybin was down");
    assert.equal((await s.grill.post("/toastie", gitas())).body.pickedVia, "v2");
    assert.deepEqual(taken(before, await s.stock()), { bread: 2, cheese: 1, vegemite: 1 });
  });

  it("PostgreSQL goes away: chillybin answers 503 + Retry-After and is not ready but alive, jafflr passes it on; both recover without a restart", async () => {
    const pg = s.pgProxy as NonNullable<Stall["pgProxy"]>;
    const [before, pid] = [await s.stock(), s.chillybin.child.pid];
    await pg.close();
    try {
      // Until chillybin has noticed (its pool's connections were cut, not closed politely).
      const ready = await eventually(
        async () => {
          const reply = await s.coldAct.get("/ready");
          return reply.status === 503 ? reply : undefined;
        },
        { timeoutMs: 10_000, message: () => "chillybin stayed ready without its database" },
      );
      assert.match(ready.text, /database/, "/ready names the failing check");
      const order = { customer: "gita", items: [{ ingredient: "cheese", quantity: 1 }] };
      for (const reply of [
        await s.coldAct.get("/"),
        await s.coldAct.post("/v2/pick", {
          json: order,
          headers: { "Idempotency-Key": "outage-1" },
        }),
        await s.coldAct.get("/orders"),
        await s.grill.post("/toastie", gitas()),
      ]) {
        assertProblem(reply, 503);
        assert.match(reply.headers.get("retry-after") ?? "", /^\d+$/);
      }
      assert.equal((await s.coldAct.get("/health")).status, 200, "alive");
    } finally {
      await pg.open();
    }
    await eventually(
      async () => ((await s.coldAct.get("/ready")).status === 200 ? true : undefined),
      {
        timeoutMs: 20_000,
        message: () => "chillybin did not become ready again",
      },
    );
    assert.equal(s.chillybin.child.pid, pid, "the same process");
    assert.deepEqual(await s.stock(), before, "nothing changed while the database was gone");
    assert.equal((await s.grill.post("/toastie", gitas())).status, 200);
  });

  it("Unleash unreachable: jafflr started within its bounded wait on the flag file's flags, and says so quietly", async () => {
    const polls = unleashPolls;
    await eventually(() => (unleashPolls >= polls + 4 ? true : undefined), {
      timeoutMs: 20_000,
      message: () => `jafflr stopped polling Unleash (${unleashPolls} polls)`,
    });
    assert.equal((await s.grill.post("/toastie", gitas(["cheese"]))).body.pickedVia, "v2");
    const logs = s.jafflr.logs();
    assert.equal(logs.match(/did not answer in time; starting with the flag file/g)?.length, 1);
    const errors = logs.split("\n").filter((l) => l.includes("flag source error"));
    assert.ok(errors.length <= 1, `failed polls are rate-limited:\n${errors.join("\n")}`);
    assert.doesNotMatch(logs, /\n\s+at .+:\d+:\d+/, "no stack traces in the log");
  });

  it("SIGTERM with toasties in flight and pages open: new connections refused while draining, every toastie 200, streams end, exit 0", async () => {
    const IN_FLIGHT = 8;
    // A light toastie cooks 2 s: room to see new connections refused while they cook.
    const jafflr = await s.startJafflr({ COOK_TIME_SCALE: "2", GRILL_SLOTS: "12" });
    await s.cold.post("/restock", { json: FULL });
    const before = await s.stock();
    const pages = await Promise.all([1, 2].map(() => openPage(jafflr.url)));
    for (const page of pages) await page.nextEvent("snapshot");
    const grill = actClient(jafflr.url);
    const toasties = Array.from({ length: IN_FLIGHT }, (_, i) =>
      grill.post("/toastie", { json: { customer: `guest-${i}`, ingredients: ["cheese"] } }),
    );
    await eventually(
      async () => ((await grill.get("/")).body.toasting === IN_FLIGHT ? true : undefined),
      {
        timeoutMs: 30_000,
        intervalMs: 20,
        message: () => "the toasties never were on the grill at once",
      },
    );
    jafflr.child.kill("SIGTERM");
    const refused = await eventually(
      async () => {
        const outcome = await tryConnect(jafflr.port);
        return outcome === "connected" || outcome === "TIMEOUT" ? undefined : outcome;
      },
      { timeoutMs: 5_000, intervalMs: 10, message: () => "jafflr kept accepting connections" },
    );
    assert.match(refused, /^(ECONNREFUSED|ECONNRESET)$/);
    assert.ok(jafflr.child.exitCode === null, `refused (${refused}) while still draining`);
    for (const reply of await Promise.all(toasties))
      assert.equal(reply.status, 200, reply.error ?? reply.text);
    await Promise.all(pages.map((page) => page.ended));
    assert.deepEqual(await jafflr.exited, { code: 0, signal: null }, jafflr.logs());
    assert.deepEqual(
      taken(before, await s.stock()),
      { bread: 2 * IN_FLIGHT, cheese: IN_FLIGHT },
      "each picked once",
    );
  });
});

/** An RFC 9457 problem with this status, a title, and no stack trace. */
function assertProblem(reply: Reply, status: number) {
  assert.equal(reply.status, status, reply.error ?? reply.text);
  assert.match(reply.contentType, /^application\/problem\+json/);
  assert.equal(reply.body.status, status);
  assert.equal(typeof reply.body.title, "string");
  assert.doesNotMatch(reply.text, /\n\s+at /, "no stack trace");
}
