/**
 * v1 only, deleted by the foxtrot's step 3: jafflr's original arm against a real chillybin, as the
 * stall runs between steps 2 and 3. A customer the flag leaves on v1 gets one GET /pick per
 * ingredient (knowingly not atomic); a flag-file edit moves a customer to v2 without a restart;
 * v1's GET /pick refuses bad input and never oversells.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { addParam, badInputTests, get, post, query, type Row, unknownKey } from "../src/bad-input";
import {
  assertNoOverselling,
  type LoadRequest,
  pickV2,
  readBooks,
  send,
  toastie,
} from "../src/load";
import { eventually, needsOwnProcesses, type Stall, startStall } from "../src/stall";
import { requestCount } from "../src/telemetry";

const pickV1 = (target: string, ingredient: string): LoadRequest => ({
  kind: "pick-v1",
  target,
  path: `/pick?name=${ingredient}&quantity=1`,
  takes: { [ingredient]: 1 },
});

const ROWS: Row[] = [
  ["chillybin", "pick: no parameters", get("/pick"), 400],
  [
    "chillybin",
    "pick: negative quantity (the original added stock)",
    get("/pick?name=cheese&quantity=-5"),
    400,
  ],
  ["chillybin", "pick: quantity 1e3", get("/pick?name=cheese&quantity=1e3"), 400],
  [
    "chillybin",
    "pick: quantity beyond 2^64",
    get("/pick?name=cheese&quantity=99999999999999999999999"),
    400,
  ],
  ["chillybin", "pick: name twice", get("/pick?name=cheese&name=bread"), 400],
  ["chillybin", "pick: name as an object", get("/pick?name[a]=cheese"), 400],
  [
    "chillybin",
    "pick: nested deeper than the parser allows",
    get("/pick?name[a][b][c][d][e][f][g]=x"),
    400,
  ],
  ["chillybin", "pick: NUL byte in the name", get("/pick?name=cheese%00"), 400],
  ["chillybin", "pick: broken percent-encoding", get("/pick?name=%ZZ"), 400],
  ["chillybin", "pick: unknown ingredient", get("/pick?name=caviar&quantity=1"), 422],
  ["chillybin", "pick: POST", post("/pick?name=cheese"), 405],
  ["chillybin", "pick: HEAD never picks", { method: "HEAD", path: "/pick?name=cheese" }, 405],
  [
    "chillybin",
    "pick: a problem though HTML is asked for",
    get("/pick", { Accept: "text/html" }),
    400,
  ],
];
const valid = fc.tuple(fc.constantFrom("cheese", "ham", "bread"), fc.integer({ min: 1, max: 3 }));
const PICKS = {
  "chillybin GET /pick": query(
    "chillybin",
    "GET",
    "/pick",
    valid.map(([n, q]): [string, string][] => [
      ["name", n],
      ["quantity", `${q}`],
    ]),
    [
      addParam(fc.constantFrom("name", "quantity", "name[]", "quantity[x]"), fc.constant("1")),
      addParam(unknownKey(["name", "quantity"]), fc.string({ maxLength: 8 })),
      fc
        .string({ maxLength: 6 })
        .filter((q) => !/^(100|[1-9][0-9]?)$/.test(q))
        .map(
          (q) => (p: [string, string][]) =>
            p.map(([k, v]): [string, string] => [k, k === "quantity" ? q : v]),
        ),
      fc
        .string({ unit: "grapheme", maxLength: 40 })
        .filter((n) => !/^[a-z][a-z0-9_-]{0,31}$/.test(n))
        .map(
          (n) => (p: [string, string][]) =>
            p.map(([k, v]): [string, string] => [k, k === "name" ? n : v]),
        ),
    ],
  ),
};

describe("jafflr's v1 arm", needsOwnProcesses, () => {
  let s: Stall;
  before(async () => {
    s = await startStall({
      chillybinEnv: { PG_CONNECT_TIMEOUT_MS: "30000", PG_STATEMENT_TIMEOUT_MS: "30000" },
      jafflrEnv: { CHILLYBIN_TIMEOUT_MS: "30000", GRILL_SLOTS: "32", GRILL_QUEUE: "300" },
    });
  });
  after(() => s?.stop());

  const FULL = { bread: 20, cheese: 20, ham: 20, vegemite: 20 };
  const pickedVia = async (customer: string) => {
    const res = await s.grill.post("/toastie", { json: { customer, ingredients: ["cheese"] } });
    assert.equal(res.status, 200, res.text);
    return res.body.pickedVia;
  };

  /** A test whose failure ends with the services' output. */
  const it = (name: string, body: () => Promise<void>) => test(name, () => s.withLogs(body)());

  it("the original's client (no customer) is picked the old way: one GET /pick per ingredient and bread slice", async () => {
    await s.cold.post("/restock", { json: FULL });
    const metrics = async () => (await s.coldAct.get("/metrics")).text;
    const before = await metrics();
    const res = await s.grill.post("/toastie?i=cheese&i=vegemite");
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, {
      status: "done",
      customer: "anonymous",
      ingredients: ["cheese", "vegemite", "bread", "bread"],
      doneness: "light",
      pickedVia: "v1",
    });
    const stock = await s.stock();
    assert.deepEqual([stock.cheese, stock.vegemite, stock.bread], [19, 19, 18]);
    const picks = { method: "GET", route: "/pick", status_code: "200" };
    assert.equal(requestCount(await metrics(), picks) - requestCount(before, picks), 4);
  });

  it("short stock midway → 409 saying what was already taken; unknown → 422 after what was taken", async () => {
    await s.cold.post("/restock", { json: { ...FULL, vegemite: 0 } });
    const short = await s.grill.post("/toastie?i=cheese&i=vegemite&customer=gordon");
    assert.equal(short.status, 409, short.text);
    assert.equal(short.body.title, "Out of stock");
    assert.deepEqual(
      [short.body.taken, short.body.failedAt, short.body.short[0].ingredient],
      [["cheese"], "vegemite", "vegemite"],
    );
    const unknown = await s.grill.post("/toastie?i=cheese&i=caviar&customer=gordon");
    assert.equal(unknown.status, 422, unknown.text);
    assert.deepEqual([unknown.body.unknown, unknown.body.taken], [["caviar"], ["cheese"]]);
    const stock = await s.stock();
    assert.deepEqual([stock.cheese, stock.bread], [18, 20], "nothing after a failure was picked");
  });

  it("flags per customer from the file: gita v2, gordon v1; an edit moves gordon to v2 without a restart, and back", async () => {
    await s.cold.post("/restock", { json: FULL });
    assert.equal(await pickedVia("gita"), "v2");
    assert.equal(await pickedVia("gordon"), "v1");
    assert.deepEqual(
      (await s.cold.get("/orders?customer=gordon")).body.orders,
      [],
      "v1 records no order",
    );
    const pid = s.jafflr.child.pid;
    await s.setV2For(["gita", "gordon"]);
    await eventually(async () => ((await pickedVia("gordon")) === "v2" ? true : undefined), {
      timeoutMs: 10_000,
      message: () => `gordon never moved to v2\n${s.logs()}`,
    });
    assert.equal(
      (await s.cold.get("/orders?customer=gordon")).body.orders.length,
      1,
      "his first v2 order",
    );
    assert.equal(await pickedVia("anna"), "v1", "customers not in the list stay on v1");
    assert.equal(s.jafflr.child.pid, pid, "jafflr was not restarted");
    await s.setV2For(["gita"]);
    await eventually(async () => ((await pickedVia("gordon")) === "v1" ? true : undefined), {
      timeoutMs: 10_000,
      message: () => "gordon never moved back to v1",
    });
  });

  it("chillybin gone: a v1 toastie gets 503 with Retry-After; once it is back, v1 toasties work", async () => {
    await s.cold.post("/restock", { json: FULL });
    await s.chillybin.stop();
    const reply = await s.grill.post("/toastie?i=cheese&i=vegemite");
    assert.equal(reply.status, 503, reply.text);
    assert.match(reply.contentType, /^application\/problem\+json/);
    assert.match(reply.headers.get("retry-after") ?? "", /^\d+$/);
    await s.restartChillybin();
    await eventually(
      async () =>
        (await s.grill.post("/toastie?i=cheese&i=vegemite")).status === 200 ? true : undefined,
      {
        timeoutMs: 10_000,
        message: () => `v1 toasties did not work again\n${s.logs()}`,
      },
    );
    const stock = await s.stock();
    assert.deepEqual(
      [stock.cheese, stock.vegemite, stock.bread],
      [19, 19, 18],
      "nothing picked while it was down",
    );
  });

  badInputTests(
    () => ({
      urls: { chillybin: s.chillybin.url, jafflr: s.jafflr.url },
      books: async () => ({
        api: (await send(s.chillybin.url, { path: "/" })).json,
        sql: await readBooks(s.pool),
      }),
    }),
    ROWS,
    PICKS,
  );

  it("no overselling with v1 in the mix: 200 concurrent v1 picks, v2 orders, v1 and v2 toasties against 50 cheeses", async () => {
    await s.cold.post("/restock", {
      json: { cheese: 50, bread: 5_000, ham: 5_000, tomato: 5_000, vegemite: 5_000 },
    });
    const [cold, grill] = [s.chillybin.url, s.jafflr.url];
    const requests = Array.from(
      { length: 200 },
      (_, i) =>
        [
          () => pickV1(cold, "cheese"),
          () =>
            pickV2(
              cold,
              { cheese: 1, ham: 1 + (i % 3), bread: 2 },
              i % 8 === 1 ? randomUUID() : undefined,
            ),
          () =>
            toastie(grill, "gordon", ["cheese", "tomato"], {
              kind: "toastie-v1",
              queryForm: i % 8 === 2,
            }),
          () => toastie(grill, "gita", ["cheese", "vegemite"], { kind: "toastie-v2" }),
        ][i % 4]?.() as LoadRequest,
    );
    await assertNoOverselling(s.pool, cold, requests, 50);
  });
});
