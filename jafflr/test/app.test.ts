import "tpi/register"; // first, as in index.ts: trace context must reach chillybin

/**
 * jafflr's HTTP surface, driven through its app factory: bad orders are refused before anything
 * reaches chillybin (a recording server stands where chillybin would be and must see nothing),
 * methods, media types, status and readiness. The picking paths against a real chillybin are
 * in integration-tests/test/jafflr-chillybin.test.ts.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import request from "supertest";
import type { ToastieOutcome } from "../src/toastie";
import {
  buildJafflr,
  closedPort,
  eventually,
  faultServer,
  metricValue,
  standInChillybin,
  type TestJafflr,
  tempFlagFile,
} from "./helpers";

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
      /doneness must be one of/,
    ],
    ["a blank customer", () => act().post("/toastie?i=cheese&customer=%20"), /customer must be/],
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
      /unknown field "size"/,
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
      assert.match(res.body.type, /\/problems\/invalid-request$|^about:blank$/);
      if (res.body.type !== "about:blank") {
        assert.equal(res.body.title, "Invalid request");
        for (const e of res.body.errors) {
          assert.equal(Object.keys(e).length, 2, JSON.stringify(e));
          assert.ok(["pointer", "parameter", "header"].includes(Object.keys(e)[0] as string));
        }
      }
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
    for (const method of ["put", "delete", "patch"] as const) {
      const res = await act()[method]("/toastie");
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, "GET, HEAD, POST");
      assert.match(res.headers["content-type"] ?? "", /problem\+json/);
    }
  });

  it("GET / reports the grill and whether chillybin is reachable", async () => {
    const res = await act().get("/");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      toasting: 0,
      waiting: 0,
      slots: 4,
      version: "test",
      chillybin: { reachable: true, checkedAt: null },
    });
  });

  it("an unknown route is a 404 problem", async () => {
    const res = await act().get("/nope");
    assert.equal(res.status, 404);
    assert.match(res.headers["content-type"] ?? "", /problem\+json/);
  });

  it("stays ready while chillybin cannot be reached, and answers toasties with a quick 503", async () => {
    const dead = await buildJafflr({ chillybinUrl: `http://127.0.0.1:${await closedPort()}` });
    try {
      assert.equal((await request(dead.app).get("/ready")).status, 200);
      const first = await request(dead.app).post("/toastie?i=cheese&customer=gita");
      assert.equal(first.status, 503);
      assert.equal(first.body.title, "Cold store unavailable");
      assert.match(first.headers["retry-after"] ?? "", /^\d+$/);
      const status = (await request(dead.app).get("/")).body.chillybin;
      assert.equal(status.reachable, false);
      assert.equal(status.reason, "ECONNREFUSED");
      assert.ok(!Number.isNaN(Date.parse(status.checkedAt)));
      const attempts = () =>
        metricValue(dead.metrics, "chillybin_client_requests_total", {
          route: "/v2/pick",
          outcome: "network_error",
        });
      const before = await attempts();
      const quick = await request(dead.app).post("/toastie?i=cheese&customer=gita");
      assert.equal(quick.status, 503);
      assert.match(quick.body.detail, /could not be reached \(ECONNREFUSED, at /);
      assert.equal(await attempts(), before, "no call while chillybin is known to be down");
      assert.equal((await request(dead.app).get("/ready")).status, 200);
      assert.equal(await metricValue(dead.metrics, "jafflr_chillybin_up", {}), 0);
      assert.equal((await request(dead.app).get("/health")).status, 200);
    } finally {
      await dead.close();
    }
  });

  it("readiness does not call chillybin", async () => {
    const res = await act().get("/ready");
    assert.equal(res.status, 200);
    assert.equal(watcher.requests.length, 0);
  });
});

describe("toasties on the grill (a stand-in chillybin with endless stock)", () => {
  let cold: Awaited<ReturnType<typeof standInChillybin>>;
  const flags = tempFlagFile(["gita", "c1", "c2", "c3", "c4"]);
  const outcomes: ToastieOutcome[] = [];
  const small = (grill: { slots: number; queue: number }) =>
    buildJafflr({
      chillybinUrl: cold.url,
      flagsFile: flags.file,
      grill,
      onToastie: (o) => outcomes.push(o),
    });
  before(async () => {
    cold = await standInChillybin();
  });
  after(async () => {
    await cold.close();
    flags.remove();
  });
  beforeEach(() => {
    cold.requests.length = 0;
    outcomes.length = 0;
  });

  it("a done toastie and a failed one are each told to onToastie once", async () => {
    const j = await small({ slots: 4, queue: 4 });
    try {
      const done = await request(j.app)
        .post("/toastie")
        .send({ customer: "gita", ingredients: ["cheese", "ham"], doneness: "burnt" });
      assert.equal(done.status, 200, JSON.stringify(done.body));
      const bad = await request(j.app).post("/toastie?i=ham"); // no cheese: never validated
      assert.equal(bad.status, 400);
      assert.equal(outcomes.length, 1, "an order that fails validation is not told");
      const [o] = outcomes;
      assert.ok(!Number.isNaN(Date.parse(o?.at ?? "")));
      assert.deepEqual(
        { ...o, at: undefined },
        {
          at: undefined,
          customer: "gita",
          ingredients: ["cheese", "ham"],
          doneness: "burnt",
          pickedVia: "v2",
          status: 200,
          orderId: done.body.orderId,
        },
      );
    } finally {
      await j.close();
    }
  });

  it("a full grill refuses with 503 + Retry-After, picks nothing, and tells onToastie", async () => {
    const j = await small({ slots: 1, queue: 0 });
    const busy = await j.grill.reserve(); // the one slot is taken (as by a toastie cooking)
    try {
      const refused = await request(j.app).post("/toastie?i=cheese&i=ham&customer=gita");
      assert.equal(refused.status, 503);
      assert.equal(refused.body.title, "Grill busy");
      assert.match(refused.body.type, /\/problems\/grill-busy$/);
      assert.match(refused.headers["content-type"] ?? "", /problem\+json/);
      assert.match(refused.headers["retry-after"] ?? "", /^[1-9]\d*$/);
      const status = (await request(j.app).get("/")).body;
      assert.deepEqual([status.toasting, status.waiting, status.slots], [1, 0, 1]);
      assert.equal(cold.requests.length, 0, "nothing was picked for the refused order");
      assert.deepEqual(
        outcomes.map((o) => [o.status, o.pickedVia, o.problem?.title]),
        [[503, undefined, "Grill busy"]],
      );
      busy.release();
      const served = await request(j.app).post("/toastie?i=cheese&customer=gita");
      assert.equal(served.status, 200, "served once a slot is free");
    } finally {
      busy.release();
      await j.close();
    }
  });

  it("a customer who hangs up while queued leaves the queue and gets nothing picked", async () => {
    const j = await small({ slots: 1, queue: 5 });
    const busy = await j.grill.reserve();
    const server = j.app.listen(0, "127.0.0.1");
    try {
      await new Promise((resolve) => server.once("listening", resolve));
      const { port } = server.address() as AddressInfo;
      const impatient = http.request({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/toastie?i=cheese&i=ham&customer=gita",
      });
      impatient.on("error", () => {});
      impatient.end();
      await eventually(() => j.grill.waiting === 1, "the toastie queues");
      impatient.destroy();
      await eventually(() => j.grill.waiting === 0, "the queue lets it go");
      busy.release();
      assert.equal(j.grill.toasting, 0, "the freed slot went to nobody");
      assert.equal(cold.requests.length, 0, "nothing was picked for the customer who left");
      assert.deepEqual(
        outcomes.map((o) => o.status),
        [499],
      );
    } finally {
      busy.release();
      await new Promise((resolve) => server.close(resolve));
      await j.close();
    }
  });

  it("queued toasties are served in arrival order", async () => {
    const j = await small({ slots: 1, queue: 5 });
    const busy = await j.grill.reserve();
    try {
      const customers = ["c1", "c2", "c3", "c4"];
      const served: string[] = [];
      const orders: Promise<unknown>[] = [];
      for (const [i, customer] of customers.entries()) {
        orders.push(
          request(j.app)
            .post(`/toastie?i=cheese&customer=${customer}`)
            .then((r) => served.push(`${r.status} ${r.body.customer}`)),
        );
        // Arrival order is what is being tested, so each one is queued before the next is sent.
        await eventually(() => j.grill.waiting === i + 1, `${customer} queued`);
      }
      assert.equal(cold.requests.length, 0, "nobody picks while waiting");
      busy.release();
      await Promise.all(orders);
      assert.deepEqual(served, ["200 c1", "200 c2", "200 c3", "200 c4"]);
      assert.deepEqual(
        cold.requests.map((r) => JSON.parse(r.body).customer),
        customers,
      );
    } finally {
      busy.release();
      await j.close();
    }
  });

  it("calls to chillybin carry the toastie's trace", async () => {
    const j = await small({ slots: 1, queue: 1 });
    try {
      const res = await request(j.app).post("/toastie?i=cheese&customer=gita");
      assert.equal(res.status, 200);
      const traceparent = String(cold.requests[0]?.headers.traceparent);
      assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      const done = j
        .logLines()
        .filter((l) => l.msg === "toastie done")
        .at(-1);
      assert.equal(traceparent.split("-")[1], done?.trace_id, "one trace for the log and the call");
    } finally {
      await j.close();
    }
  });

  it("counts toasties and chillybin calls in /metrics", async () => {
    const j = await small({ slots: 1, queue: 1 });
    try {
      await request(j.app).post("/toastie?i=cheese&customer=gita");
      const text = (await request(j.app).get("/metrics")).text;
      assert.match(text, /toasties_total\{[^}]*picked_via="v2"[^}]*\} 1/);
      assert.match(
        text,
        /chillybin_client_requests_total\{[^}]*route="\/v2\/pick"[^}]*outcome="ok"/,
      );
      assert.match(text, /http_requests_total\{[^}]*route="\/toastie"[^}]*\} \d+/);
      assert.match(text, /jafflr_chillybin_up\{?[^\n]*1/);
    } finally {
      await j.close();
    }
  });
});
