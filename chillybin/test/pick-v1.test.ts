/**
 * v1 `GET /pick` only: what it does, its deprecation signals, bad input, concurrency and database
 * faults. Foxtrot step 3 deletes this file together with src/pick-v1.ts.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { freePort } from "testkit/net";
import { TcpProxy } from "testkit/tcp-proxy";
import { callerOf as callerIn } from "tpi";
import { KNOWN_CALLERS, V1_SUNSET_AT } from "../src/pick-v1";

const callerOf = (ua: string | undefined) => callerIn(ua, new Set(KNOWN_CALLERS));

import {
  act,
  arrange,
  type BadInputCase,
  describeBadInput,
  isProblem,
  migratedDatabase,
  openEvents,
  type Reply,
  snapshot,
  startApp,
  stockEvent,
  type TestApp,
  useBadInputApp,
  useTestApp,
} from "./helpers";

describe("GET /pick (v1)", () => {
  const app = useTestApp();

  test("takes one and answers ok, with the deprecation headers", async () => {
    const reply = await act(app.url).get("/pick?name=cheese&quantity=1", {
      "User-Agent": "jafflr/1.0.0",
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.text, "ok");
    assert.match(String(reply.headers["content-type"]), /^text\/plain/);
    assert.match(String(reply.headers.deprecation), /^@\d+$/);
    assert.equal(reply.headers.sunset, V1_SUNSET_AT.toUTCString());
    assert.equal(reply.headers.link, '</v2/pick>; rel="successor-version"');
    assert.equal(reply.headers["cache-control"], "no-store");
    assert.equal((await snapshot(app.pool)).stock.cheese, 9);
  });

  test("takes the given quantity", async () => {
    const reply = await act(app.url).get("/pick?name=bread&quantity=4");
    assert.equal(reply.status, 200);
    assert.equal((await snapshot(app.pool)).stock.bread, 6);
  });

  test("can take the last one, and then answers 410 Gone naming what is short", async () => {
    await arrange(app.url).setStock({ vegemite: 1 });
    assert.equal((await act(app.url).get("/pick?name=vegemite&quantity=1")).status, 200);
    const reply = await act(app.url).get("/pick?name=vegemite&quantity=1");
    assert.equal(reply.status, 410);
    assert.ok(isProblem(reply));
    const body = reply.body as { type: string; title: string; short: unknown };
    assert.equal(body.type, "about:blank");
    assert.equal(body.title, "Gone");
    assert.deepEqual(body.short, [{ ingredient: "vegemite", requested: 1, available: 0 }]);
    assert.equal(reply.headers.link, '</v2/pick>; rel="successor-version"');
    assert.equal((await snapshot(app.pool)).stock.vegemite, 0);
  });

  test("422 unknown-ingredient for an ingredient not stocked, naming it (as v2 does)", async () => {
    const reply = await act(app.url).get("/pick?name=anchovy&quantity=1");
    assert.equal(reply.status, 422);
    assert.ok(isProblem(reply));
    const body = reply.body as { type: string; title: string; unknown: unknown };
    assert.equal(body.type, "https://toasties-galore.example/problems/unknown-ingredient");
    assert.equal(body.title, "Unknown ingredient");
    assert.deepEqual(body.unknown, ["anchovy"]);
    assert.ok(reply.headers.deprecation, "error responses are v1 responses too");
  });

  test("counts calls by caller, with a bounded label set", async () => {
    const client = act(app.url);
    const count = async (caller: string) => {
      const metrics = await client.get("/metrics");
      const line = metrics.text
        .split("\n")
        .find(
          (l) => l.startsWith("chillybin_v1_pick_calls_total{") && l.includes(`caller="${caller}"`),
        );
      return line ? Number(line.split(" ").at(-1)) : 0;
    };
    const before = {
      jafflr: await count("jafflr"),
      curl: await count("curl"),
      other: await count("other"),
    };
    await client.get("/pick?name=cheese&quantity=1", {
      "User-Agent": "jafflr/2.3.4 (+https://example.com)",
    });
    await client.get("/pick?name=cheese&quantity=1", { "User-Agent": "jafflr/2.3.5" });
    await client.get("/pick?name=nope&quantity=1", { "User-Agent": "curl/8.5.0" });
    await client.get("/pick?name=cheese&quantity=1", {
      "User-Agent": `evil-${"x".repeat(500)}/1`,
    });
    assert.equal(await count("jafflr"), before.jafflr + 2);
    assert.equal(await count("curl"), before.curl + 1);
    assert.equal(await count("other"), before.other + 1);
    assert.equal((await client.get("/metrics")).text.includes("evil-"), false);
  });

  test("caller is the User-Agent product token, known ones by name, the rest bounded", () => {
    assert.equal(callerOf("jafflr/1.0.0"), "jafflr");
    assert.equal(callerOf("curl/8.5.0"), "curl");
    assert.equal(callerOf("Mozilla/5.0 (X11)"), "other");
    assert.equal(callerOf(""), "unknown");
    assert.equal(callerOf(undefined), "unknown");
    assert.equal(callerOf("/weird"), "unknown");
  });

  test("without quantity: 400 naming the parameter, nothing picked (a state-changing GET does not guess)", async () => {
    const before = await snapshot(app.pool);
    const reply = await act(app.url).get("/pick?name=cheese");
    assert.equal(reply.status, 400);
    assert.ok(isProblem(reply));
    const body = reply.body as { type: string; errors: unknown };
    assert.equal(body.type, "https://toasties-galore.example/problems/invalid-request");
    assert.deepEqual(body.errors, [{ parameter: "quantity", detail: "quantity is required" }]);
    assert.ok(reply.headers.deprecation, "still a v1 response");
    assert.deepEqual(await snapshot(app.pool), before);
  });

  test("GET /events announces a v1 pick (via v1, no customer or order) and the new stock", async () => {
    const stream = await openEvents(app.url);
    try {
      await stream.next(() => true);
      assert.equal((await act(app.url).get("/pick?name=ham&quantity=3")).status, 200);
      const pick = await stream.next((e) => e.event === "pick");
      assert.deepEqual(JSON.parse(pick.data), {
        via: "v1",
        items: [{ ingredient: "ham", quantity: 3 }],
      });
      await stream.next(stockEvent((s) => s.ham === 7));
    } finally {
      stream.close();
    }
  });

  test("GET /openapi.json describes it as deprecated, with its headers", async () => {
    const doc = (await act(app.url).get("/openapi.json")).body as {
      paths: Record<
        string,
        Record<string, { deprecated?: boolean; responses: Record<string, { headers: object }> }>
      >;
    };
    const pick = doc.paths["/pick"];
    assert.equal(pick?.get?.deprecated, true);
    assert.equal(pick?.head?.deprecated, true);
    assert.deepEqual(Object.keys(pick?.get?.responses["200"]?.headers ?? {}).sort(), [
      "Cache-Control",
      "Deprecation",
      "Link",
      "Sunset",
      "X-Request-Id",
    ]);
  });

  test("HEAD never picks", async () => {
    const before = await snapshot(app.pool);
    const reply = await act(app.url).send((a) => a.head("/pick?name=cheese&quantity=1"));
    assert.equal(reply.status, 405);
    assert.deepEqual(await snapshot(app.pool), before);
  });
});

describe("GET /pick (v1): bad input", () => {
  const app = useBadInputApp();
  const TEN_KB = "a".repeat(10 * 1024);
  const SQL = "cheese'; DROP TABLE ingredients; --";
  const cases: BadInputCase[] = [
    { name: "missing name", status: 400, send: (a) => a.get("/pick?quantity=1") },
    { name: "empty name", status: 400, send: (a) => a.get("/pick?name=&quantity=1") },
    {
      name: "name twice",
      status: 400,
      send: (a) => a.get("/pick?name=cheese&name=bread&quantity=1"),
    },
    {
      name: "name as an object",
      status: 400,
      send: (a) => a.get("/pick?name[x]=cheese&quantity=1"),
    },
    { name: "10 KB name", status: 400, send: (a) => a.get(`/pick?name=${TEN_KB}&quantity=1`) },
    {
      name: "SQL metacharacters",
      status: 400,
      send: (a) => a.get(`/pick?name=${encodeURIComponent(SQL)}&quantity=1`),
    },
    { name: "uppercase name", status: 400, send: (a) => a.get("/pick?name=Cheese&quantity=1") },
    {
      name: "unknown ingredient",
      status: 422,
      send: (a) => a.get("/pick?name=anchovy&quantity=1"),
    },
    { name: "missing quantity", status: 400, send: (a) => a.get("/pick?name=cheese") },
    {
      name: "negative quantity (the original added stock)",
      status: 400,
      send: (a) => a.get("/pick?name=cheese&quantity=-5"),
    },
    { name: "zero quantity", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=0") },
    { name: "quantity 101", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=101") },
    {
      name: "huge quantity",
      status: 400,
      send: (a) => a.get("/pick?name=cheese&quantity=99999999999999999999"),
    },
    { name: "float quantity", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=1.5") },
    { name: "1e3 quantity", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=1e3") },
    { name: "empty quantity", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=") },
    { name: "word quantity", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=two") },
    { name: "hex quantity", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=0x2") },
    { name: "signed quantity", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=%2B1") },
    { name: "padded quantity", status: 400, send: (a) => a.get("/pick?name=cheese&quantity=%201") },
    {
      name: "quantity twice",
      status: 400,
      send: (a) => a.get("/pick?name=cheese&quantity=1&quantity=2"),
    },
    {
      name: "extra parameter",
      status: 400,
      send: (a) => a.get("/pick?name=cheese&quantity=1&customer=gita"),
    },
    {
      name: "500 unknown parameters",
      status: 400,
      send: (a) =>
        a.get(
          `/pick?name=cheese&quantity=1&${Array.from({ length: 500 }, (_, i) => `p${i}=1`).join("&")}`,
        ),
    },
    { name: "more than there is", status: 410, send: (a) => a.get("/pick?name=bread&quantity=7") },
    { name: "POST", status: 405, send: (a) => a.post("/pick?name=cheese&quantity=1") },
  ];
  describeBadInput("GET /pick", cases, app);
});

describe("GET /pick (v1): concurrency", () => {
  const app = useTestApp({ poolMax: 20 });

  test("200 simultaneous v1 picks of 50 cheeses: exactly 50 succeed, the rest are 410", async () => {
    await arrange(app.url).setStock({ cheese: 50 });
    const client = act(app.url);
    const replies = await Promise.all(
      Array.from({ length: 200 }, () =>
        client.get("/pick?name=cheese&quantity=1", { "User-Agent": "jafflr/test" }),
      ),
    );
    const counts: Record<number, number> = {};
    for (const r of replies) counts[r.status] = (counts[r.status] ?? 0) + 1;
    assert.deepEqual(counts, { 200: 50, 410: 150 });
    const after = await snapshot(app.pool);
    assert.equal(after.stock.cheese, 0);
    assert.equal(after.orders, 0, "v1 records no orders");
  });

  test("v1 picks among overlapping v2 orders and restocks never deadlock", async () => {
    const names = ["bread", "cheese", "ham", "pineapple", "tomato"];
    await arrange(app.url).setStock(Object.fromEntries(names.map((n) => [n, 10_000])));
    const client = act(app.url);
    const forwards = names.map((ingredient) => ({ ingredient, quantity: 1 }));
    const backwards = [...forwards].reverse();
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        if (i % 10 === 9) return client.postJson("/restock", { tomato: 10_000, bread: 10_000 });
        if (i % 10 === 8) return client.get("/pick?name=ham&quantity=1");
        return client.postJson("/v2/pick", {
          customer: "gita",
          items: i % 2 ? forwards : backwards,
        });
      }),
    );
    assert.deepEqual(
      replies.map((r) => r.status),
      replies.map(() => 200),
    );
    const after = await snapshot(app.pool);
    assert.equal(after.orders, 160);
    // 160 orders and 20 v1 picks of ham; cheese and pineapple are never restocked.
    assert.equal(after.stock.cheese, 10_000 - 160);
    assert.equal(after.stock.pineapple, 10_000 - 160);
    assert.equal(after.stock.ham, 10_000 - 160 - 20);
  });
});

describe("GET /pick (v1): database faults", () => {
  const apps: TestApp[] = [];
  const proxies: TcpProxy[] = [];
  const dbs: { drop(): Promise<void> }[] = [];
  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(apps.map((a) => a.close()));
    await Promise.all(dbs.map((d) => d.drop()));
  });

  const withPort = (url: string, port: number) => {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(port);
    return u.toString();
  };
  const assertUnavailable = (reply: Reply, what: string) => {
    assert.equal(reply.status, 503, `${what}: ${reply.status} ${reply.text}`);
    assert.ok(isProblem(reply), what);
    assert.match(String(reply.headers["retry-after"]), /^\d+$/, what);
  };

  test("no database: 503 problem with Retry-After; bad input is still a 400", async () => {
    const db = await migratedDatabase();
    dbs.push(db);
    const app = await startApp(withPort(db.url, await freePort()), { connectTimeoutMs: 2_000 });
    apps.push(app);
    const client = act(app.url);
    assertUnavailable(await client.get("/pick?name=cheese&quantity=1"), "GET /pick");
    assert.equal((await client.get("/pick?name=cheese&quantity=-5")).status, 400);
  });

  test("the database goes away and comes back: 503 meanwhile, picks again without restart", async () => {
    const db = await migratedDatabase();
    dbs.push(db);
    const target = new URL(db.url);
    const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    proxies.push(proxy);
    await proxy.open();
    const app = await startApp(withPort(db.url, proxy.port), { connectTimeoutMs: 2_000 });
    apps.push(app);
    const client = act(app.url);
    const direct = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      await arrange(app.url).setStock({ cheese: 10 });
      await proxy.close();
      assertUnavailable(await client.get("/pick?name=cheese&quantity=1"), "GET /pick while down");
      assert.equal((await snapshot(direct)).stock.cheese, 10);
      await proxy.open();
      const deadline = Date.now() + 20_000;
      while ((await client.get("/ready")).status !== 200 && Date.now() < deadline) await sleep(100);
      assert.equal((await client.get("/pick?name=cheese&quantity=1")).status, 200);
      assert.equal((await snapshot(direct)).stock.cheese, 9);
    } finally {
      await direct.end();
    }
  });

  test("a pick stuck behind a lock past PG_STATEMENT_TIMEOUT_MS: 503, nothing changed", async () => {
    const db = await migratedDatabase();
    dbs.push(db);
    const app = await startApp(db.url, { statementTimeoutMs: 300 });
    apps.push(app);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT quantity FROM ingredients WHERE name = 'cheese' FOR UPDATE");
      const before = await snapshot(app.pool);
      assertUnavailable(
        await act(app.url).get("/pick?name=cheese&quantity=1"),
        "v1 pick behind a lock",
      );
      await holder.query("ROLLBACK");
      assert.deepEqual(await snapshot(app.pool), before);
      assert.equal((await act(app.url).get("/pick?name=cheese&quantity=1")).status, 200);
    } finally {
      await holder.end();
    }
  });
});
