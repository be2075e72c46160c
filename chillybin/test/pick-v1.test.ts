/**
 * v1 `GET /pick` only: what it does, its deprecation signals, bad input, concurrency and a
 * database fault. Foxtrot step 3 deletes this file together with src/pick-v1.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { V1_SUNSET_AT } from "../src/pick-v1";
import {
  assertProblem,
  describeBadInput,
  get,
  ok,
  openEvents,
  post,
  send,
  snapshot,
  stockEvent,
  useTestApp,
} from "./helpers";

describe("GET /pick (v1)", () => {
  const app = useTestApp({ poolMax: 20 });
  const pick = (query: string, headers = {}) => get(app.url, `/pick?${query}`, headers);
  const deprecated = (headers: Record<string, string>) => {
    assert.match(headers.deprecation ?? "", /^@\d+$/);
    assert.equal(headers.sunset, V1_SUNSET_AT.toUTCString());
    assert.equal(headers.link, '</v2/pick>; rel="successor-version"');
    assert.equal(headers["cache-control"], "no-store");
  };

  test("takes the quantity and answers ok; the last one, then 410 Gone naming what is short", async () => {
    await ok(post(app.url, "/restock", { vegemite: 5 }));
    const picked = await pick("name=vegemite&quantity=5");
    assert.deepEqual([picked.status, picked.text], [200, "ok"]);
    assert.match(picked.headers["content-type"] ?? "", /^text\/plain/);
    deprecated(picked.headers);
    const gone = await pick("name=vegemite&quantity=1");
    const body = assertProblem(gone, 410);
    assert.deepEqual([body.type, body.title], ["about:blank", "Gone"]);
    assert.deepEqual(body.short, [{ ingredient: "vegemite", requested: 1, available: 0 }]);
    deprecated(gone.headers);
    assert.equal((await snapshot(app.pool)).stock.vegemite, 0);
  });

  test("422 unknown-ingredient naming it (as v2 does); 400 naming a missing quantity: still v1 answers", async () => {
    const unknown = await pick("name=anchovy&quantity=1");
    assert.deepEqual(assertProblem(unknown, 422).unknown, ["anchovy"]);
    deprecated(unknown.headers);
    // A state-changing GET does not guess a quantity (the original answered 400 too).
    const invalid = await pick("name=cheese");
    assert.deepEqual(assertProblem(invalid, 400).errors, [
      { parameter: "quantity", detail: "quantity is required" },
    ]);
    deprecated(invalid.headers);
  });

  test("counts calls by caller (User-Agent product token), with a bounded label set", async () => {
    const metric = (caller: string) =>
      `^chillybin_v1_pick_calls_total\\{.*caller="${caller}".*\\} (\\d+)`;
    const count = async (caller: string) =>
      Number(new RegExp(metric(caller), "m").exec((await get(app.url, "/metrics")).text)?.[1] ?? 0);
    const before = [await count("jafflr"), await count("curl"), await count("other")] as number[];
    for (const agent of [
      "jafflr/2.3.4 (+https://example.com)",
      "jafflr/2.3.5",
      "curl/8.5.0",
      `evil-${"x".repeat(500)}/1`,
    ]) {
      await pick("name=cheese&quantity=1", { "User-Agent": agent });
    }
    assert.deepEqual(
      [await count("jafflr"), await count("curl"), await count("other")],
      before.map((n, i) => n + (i === 0 ? 2 : 1)),
    );
    assert.equal((await get(app.url, "/metrics")).text.includes("evil-"), false);
  });

  test("GET /events announces a v1 pick (via v1, no customer or order) and the new stock", async () => {
    const stream = await openEvents(app.url);
    try {
      await stream.next(() => true);
      await ok(pick("name=ham&quantity=3"));
      const event = await stream.next((e) => e.event === "pick");
      assert.deepEqual(JSON.parse(event.data), {
        via: "v1",
        items: [{ ingredient: "ham", quantity: 3 }],
      });
      await stream.next(stockEvent((s) => s.ham === 7));
    } finally {
      stream.close();
    }
  });

  test("HEAD never picks; GET /openapi.json marks both deprecated, with the v1 headers", async () => {
    const before = await snapshot(app.pool);
    assert.equal((await send(app.url, (a) => a.head("/pick?name=cheese&quantity=1"))).status, 405);
    assert.deepEqual(await snapshot(app.pool), before);
    type Operation = { deprecated: boolean; responses: Record<number, { headers: object }> };
    const doc = await ok<{ paths: Record<string, Record<string, Operation>> }>(
      get(app.url, "/openapi.json"),
    );
    const { get: getOp, head } = doc.paths["/pick"] ?? {};
    assert.deepEqual([getOp?.deprecated, head?.deprecated], [true, true]);
    const headers = Object.keys(getOp?.responses[200]?.headers ?? {}).sort();
    assert.deepEqual(headers, ["Cache-Control", "Deprecation", "Link", "Sunset", "X-Request-Id"]);
  });

  test("200 simultaneous v1 picks of 50 cheeses: exactly 50 succeed, the rest are 410", async () => {
    await ok(post(app.url, "/restock", { cheese: 50 }));
    const replies = await Promise.all(
      Array.from({ length: 200 }, () => pick("name=cheese&quantity=1")),
    );
    assert.equal(replies.filter((r) => r.status === 200).length, 50);
    assert.equal(replies.filter((r) => r.status === 410).length, 150);
    const after = await snapshot(app.pool);
    assert.deepEqual([after.stock.cheese, after.orders], [0, 0], "v1 records no orders");
  });
});

describe("GET /pick (v1): bad input", () => {
  const TEN_KB = "a".repeat(10 * 1024);
  const queries = [
    "quantity=1",
    "name=&quantity=1",
    "name=cheese&name=bread&quantity=1",
    "name[x]=cheese&quantity=1",
    `name=${TEN_KB}&quantity=1`,
    `name=${encodeURIComponent("cheese'; DROP TABLE ingredients; --")}&quantity=1`,
    "name=Cheese&quantity=1",
    ...[
      "",
      "-5",
      "0",
      "101",
      "99999999999999999999",
      "1.5",
      "1e3",
      "two",
      "0x2",
      "%2B1",
      "%201",
    ].map((q) => `name=cheese&quantity=${q}`),
    "name=cheese",
    "name=cheese&quantity=1&quantity=2",
    "name=cheese&quantity=1&customer=gita",
    `name=cheese&quantity=1&${Array.from({ length: 500 }, (_, i) => `p${i}=1`).join("&")}`,
  ];
  describeBadInput({
    "GET /pick": [
      ...queries.map((q): [string, number, Parameters<typeof send>[1]] => [
        q.slice(0, 60),
        400,
        (a) => a.get(`/pick?${q}`),
      ]),
      ["unknown ingredient", 422, (a) => a.get("/pick?name=anchovy&quantity=1")],
      ["more than there is", 410, (a) => a.get("/pick?name=bread&quantity=7")],
      ["POST", 405, (a) => a.post("/pick?name=cheese&quantity=1")],
    ],
  });
});
