/**
 * The HTTP surface that needs no stock: bad orders are refused before anything reaches chillybin
 * (a recording server stands where chillybin would be and must see nothing), methods, media types,
 * status and readiness. The picking paths are in chillybin.test.ts against a real chillybin.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import { buildJafflr, closedPort, faultServer, type TestJafflr } from "./helpers";

let watcher: Awaited<ReturnType<typeof faultServer>>;
let jafflr: TestJafflr;

before(async () => {
  watcher = await faultServer((_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  jafflr = await buildJafflr({ chillybinUrl: watcher.url });
});
after(async () => {
  await jafflr.close();
  await watcher.close();
});

/** The act client: never throws, returns status, headers and body. */
const act = () => request(jafflr.app);

describe("POST /toastie refuses bad orders and picks nothing", () => {
  const cases: [string, () => request.Test, RegExp][] = [
    ["no ingredients", () => act().post("/toastie"), /name at least one ingredient/],
    [
      "no cheese (query)",
      () => act().post("/toastie?i=vegemite&customer=gita"),
      /No cheese on this toastie/,
    ],
    [
      "no cheese (JSON)",
      () =>
        act()
          .post("/toastie")
          .send({ customer: "gita", ingredients: ["ham"] }),
      /No cheese on this toastie/,
    ],
    [
      "eleven ingredients",
      () => act().post(`/toastie?i=cheese${"&i=ham".repeat(10)}`),
      /1 to 10 ingredients/,
    ],
    ["an uppercase name", () => act().post("/toastie?i=Cheese"), /not an ingredient name/],
    [
      "a bad doneness",
      () => act().post("/toastie?i=cheese&doneness=charcoal"),
      /doneness: must be one of/,
    ],
    ["a blank customer", () => act().post("/toastie?i=cheese&customer=%20"), /customer: must be/],
    [
      "a 65-character customer",
      () => act().post(`/toastie?i=cheese&customer=${"g".repeat(65)}`),
      /customer/,
    ],
    [
      "an unknown field",
      () =>
        act()
          .post("/toastie")
          .send({ ingredients: ["cheese"], size: "xl" }),
      /size: unknown/,
    ],
    ["a nested query field", () => act().post("/toastie?i[x]=cheese"), /must be a list/],
    [
      "a bad Idempotency-Key",
      () => act().post("/toastie?i=cheese").set("Idempotency-Key", "two words"),
      /Idempotency-Key must be/,
    ],
    [
      "malformed JSON",
      () =>
        act().post("/toastie").set("Content-Type", "application/json").send('{"ingredients": ['),
      /not valid JSON/,
    ],
  ];
  for (const [name, send, detail] of cases) {
    it(`${name} → 400 problem`, async () => {
      const res = await send();
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
      assert.equal(res.body.status, 400);
      assert.match(res.body.detail, detail);
      assert.match(res.body.type, /\/problems\/invalid-order$|^about:blank$/);
      assert.equal(watcher.requests.length, 0, "nothing was sent to chillybin");
      assert.equal(jafflr.grill.toasting, 0);
    });
  }

  it("a body over 16 KiB → 413, a form body → 415, nothing picked", async () => {
    const big = await act()
      .post("/toastie")
      .send({ ingredients: ["cheese"], customer: "g".repeat(20_000) });
    assert.equal(big.status, 413);
    const form = await act().post("/toastie").type("form").send("i=cheese");
    assert.equal(form.status, 415);
    assert.match(form.body.detail, /JSON body/);
    assert.equal(watcher.requests.length, 0);
  });
});

describe("the rest of the surface", () => {
  it("answers other methods on /toastie with 405 and Allow", async () => {
    for (const method of ["get", "put", "delete"] as const) {
      const res = await act()[method]("/toastie");
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, "POST");
      assert.match(res.headers["content-type"] ?? "", /problem\+json/);
    }
  });

  it("GET / reports the grill", async () => {
    const res = await act().get("/");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { toasting: 0, waiting: 0, slots: 4, version: "test" });
  });

  it("an unknown route is a 404 problem", async () => {
    const res = await act().get("/nope");
    assert.equal(res.status, 404);
    assert.match(res.headers["content-type"] ?? "", /problem\+json/);
  });

  it("is not ready while chillybin cannot be reached, but stays alive", async () => {
    const dead = await buildJafflr({ chillybinUrl: `http://127.0.0.1:${await closedPort()}` });
    try {
      const ready = await request(dead.app).get("/ready");
      assert.equal(ready.status, 503);
      assert.match(ready.body.checks.chillybin, /chillybin unreachable: ECONNREFUSED/);
      assert.equal((await request(dead.app).get("/health")).status, 200);
    } finally {
      await dead.close();
    }
  });

  it("is not ready when chillybin's liveness fails", async () => {
    // The watcher answers 500 to everything, including GET /health.
    const res = await act().get("/ready");
    assert.equal(res.status, 503);
    assert.match(res.body.checks.chillybin, /answered 500/);
    assert.deepEqual(
      watcher.requests.map((r) => `${r.method} ${r.url}`),
      ["GET /health"],
    );
    watcher.requests.length = 0;
  });
});
