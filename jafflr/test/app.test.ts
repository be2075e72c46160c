import "tpi/register"; // first, as in index.ts: trace context must reach chillybin

/**
 * jafflr's HTTP surface through its app factory, against an HTTP stand-in for chillybin that
 * records what reached it (against a real chillybin: integration-tests/test/jafflr-chillybin.test.ts).
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import request from "supertest";
import type { ToastieOutcome } from "../src/toastie";
import * as h from "./helpers";

let cold: Awaited<ReturnType<typeof h.standInChillybin>>;
const flags = h.tempFlagFile(["gita", "gordon"]);
const told: ToastieOutcome[] = [];
const jafflrs: { close: () => Promise<void> }[] = [];
before(async () => {
  cold = await h.standInChillybin();
});
after(async () => {
  for (const j of jafflrs) await j.close();
  await cold.close();
  flags.remove();
});
beforeEach(() => {
  cold.requests.length = 0;
  told.length = 0;
});
async function jafflr(grill = { GRILL_SLOTS: 4, GRILL_QUEUE: 4 }, chillybinUrl = cold.url) {
  const onToastie = (o: ToastieOutcome) => told.push(o);
  const j = await h.buildJafflr({ chillybinUrl, flagsFile: flags.file, grill, onToastie });
  jafflrs.push(j);
  return j;
}

const LEGACY = "/toastie?i=cheese&i=vegemite&customer=gordon&doneness=burnt";
function assertDeprecated(res: request.Response) {
  assert.match(res.headers.deprecation ?? "", /^@\d+$/);
  assert.ok(!Number.isNaN(Date.parse(res.headers.sunset ?? "")));
  assert.equal(res.headers.link, '</toastie>; rel="successor-version"');
  assert.equal(res.headers["cache-control"], "no-store");
}

describe("bad orders are refused before anything is picked", () => {
  type Case = [string, (a: ReturnType<typeof request>) => request.Test, number, RegExp];
  const post = (a: ReturnType<typeof request>) => a.post("/toastie");
  const cases: Case[] = [
    ["no cheese (query)", (a) => a.post("/toastie?i=ham"), 400, /No cheese/],
    ["no cheese (JSON)", (a) => post(a).send({ ingredients: ["ham"] }), 400, /No cheese/],
    ["no cheese (legacy GET)", (a) => a.get("/toastie?i=ham"), 400, /No cheese/],
    ["a bad key", (a) => post(a).query("i=cheese").set("Idempotency-Key", "a b"), 400, /Key/],
    ["malformed JSON", (a) => post(a).type("json").send('{"ingredients": ['), 400, /not valid/],
    ["over 16 KiB", (a) => post(a).send({ customer: "g".repeat(20_000) }), 413, /./],
    ["a form body", (a) => post(a).type("form").send("i=cheese"), 415, /as JSON/],
  ];
  for (const [name, send, status, detail] of cases) {
    it(`${name} → ${status} problem`, async () => {
      const res = await send(request((await jafflr()).app));
      assert.equal(res.status, status, res.text);
      assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
      assert.match(res.body.detail, detail);
      assert.deepEqual([cold.requests.length, told.length], [0, 0], "nothing picked, nobody told");
    });
  }
});

describe("the rest of the surface", () => {
  it("405 with Allow, 404 problem, GET / status, /openapi.json", async () => {
    const app = request((await jafflr()).app);
    for (const method of ["put", "delete", "patch"] as const) {
      const res = await app[method]("/toastie");
      assert.deepEqual([res.status, res.headers.allow], [405, "GET, HEAD, POST"]);
    }
    assert.equal((await app.get("/nope")).status, 404);
    const status = await app.get("/");
    const reachable = { reachable: true, checkedAt: null };
    assert.deepEqual(status.body, {
      toasting: 0,
      waiting: 0,
      slots: 4,
      version: "test",
      chillybin: reachable,
    });
    const doc = (await app.get("/openapi.json")).body;
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.info.version, "test");
    assert.ok(doc.paths["/toastie"].get.deprecated && doc.paths["/stall/events"]);
    assert.ok(doc.components.schemas.Toastie && doc["x-problem-types"].length === 8);
  });

  it("stays ready while chillybin cannot be reached, and answers toasties with a quick 503", async () => {
    const dead = await jafflr(undefined, `http://127.0.0.1:${await h.closedPort()}`);
    const app = request(dead.app);
    assert.equal((await app.get("/ready")).status, 200);
    assert.equal((await app.post("/toastie?i=cheese")).status, 503);
    const { chillybin } = (await app.get("/")).body;
    assert.deepEqual([chillybin.reachable, chillybin.reason], [false, "ECONNREFUSED"]);
    const attempts = () =>
      h.metricValue(dead.metrics, "chillybin_client_requests_total", {
        route: "/v2/pick",
        outcome: "network_error",
      });
    const before = await attempts();
    const quick = await app.post("/toastie?i=cheese&customer=gita");
    assert.deepEqual([quick.status, quick.body.title], [503, "Cold store unavailable"]);
    assert.match(quick.headers["retry-after"] ?? "", /^\d+$/);
    assert.match(quick.body.detail, /could not be reached \(ECONNREFUSED, at /);
    assert.equal(await attempts(), before, "no call while chillybin is known to be down");
    assert.equal(await h.metricValue(dead.metrics, "jafflr_chillybin_up", {}), 0);
    assert.equal((await app.get("/ready")).status, 200);
  });
});

describe("toasties", () => {
  it("a done toastie is answered, counted, traced and told to onToastie once", async () => {
    const j = await jafflr();
    const res = await request(j.app)
      .post("/toastie")
      .send({ customer: "gita", ingredients: ["cheese", "ham"], doneness: "burnt" });
    const { orderId } = res.body;
    const done = { customer: "gita", doneness: "burnt", pickedVia: "v2", orderId };
    const ingredients = ["cheese", "ham", "bread", "bread"];
    assert.deepEqual(res.body, { ...done, status: "done", ingredients });
    const outcome = { ...done, ingredients: ["cheese", "ham"], status: 200, at: told[0]?.at };
    assert.deepEqual(told[0], outcome);
    assert.equal(told.length, 1);
    const traceparent = String(cold.requests[0]?.headers.traceparent);
    const logged = j.logLines().find((l) => l.msg === "toastie done");
    assert.equal(traceparent.split("-")[1], logged?.trace_id, "one trace for the log and the call");
    const text = (await request(j.app).get("/metrics")).text;
    assert.match(text, /toasties_total\{[^}]*picked_via="v2"[^}]*\} 1/);
    assert.match(text, /chillybin_client_requests_total\{[^}]*route="\/v2\/pick"[^}]*outcome="ok"/);
    assert.match(text, /jafflr_chillybin_up\{?[^\n]*1/);
  });

  it("a full grill refuses with 503 + Retry-After, picks nothing, and tells onToastie", async () => {
    const j = await jafflr({ GRILL_SLOTS: 1, GRILL_QUEUE: 0 });
    const busy = await j.grill.reserve();
    const refused = await request(j.app).post("/toastie?i=cheese&customer=gita");
    busy.release();
    assert.deepEqual([refused.status, refused.body.title], [503, "Grill busy"]);
    assert.match(refused.headers["retry-after"] ?? "", /^[1-9]\d*$/);
    assert.equal(cold.requests.length, 0);
    assert.deepEqual(
      told.map((o) => [o.status, o.pickedVia, o.problem?.title]),
      [[503, undefined, "Grill busy"]],
    );
  });

  it("a customer who hangs up while queued leaves the queue and gets nothing picked", async () => {
    const j = await jafflr({ GRILL_SLOTS: 1, GRILL_QUEUE: 5 });
    const busy = await j.grill.reserve();
    const server = j.app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const { port } = server.address() as AddressInfo;
    const impatient = http.request(`http://127.0.0.1:${port}/toastie?i=cheese`, { method: "POST" });
    impatient.on("error", () => {});
    impatient.end();
    await h.eventually(() => j.grill.waiting === 1, "the toastie queues");
    impatient.destroy();
    await h.eventually(() => j.grill.waiting === 0, "the queue lets it go");
    busy.release();
    await new Promise((resolve) => server.close(resolve));
    assert.deepEqual([j.grill.toasting, cold.requests.length], [0, 0]);
    assert.equal(told[0]?.status, 499);
  });
});

describe("GET /toastie (deprecated legacy form)", () => {
  it("toasts as POST would, with deprecation headers; refuses as POST would; HEAD never toasts", async () => {
    const app = request((await jafflr()).app);
    const [got, posted] = [await app.get(LEGACY), await app.post(LEGACY)];
    assert.equal(got.status, 200, got.text);
    assertDeprecated(got);
    assert.equal(posted.headers.deprecation, undefined, "POST is not deprecated");
    assert.deepEqual({ ...got.body, orderId: 1 }, { ...posted.body, orderId: 1 });
    for (const query of [
      "/toastie",
      "/toastie?i=cheese&doneness=charcoal",
      "/toastie?i=cheese&size=xl",
    ]) {
      const [bad, badPost] = [await app.get(query), await app.post(query)];
      assertDeprecated(bad);
      assert.deepEqual({ ...bad.body, instance: 0 }, { ...badPost.body, instance: 0 }, query);
    }
    cold.requests.length = 0;
    const head = await app.head("/toastie?i=ham");
    assert.equal(head.status, 200, "the order is not even read");
    assertDeprecated(head);
    assert.equal(cold.requests.length, 0);
  });

  it("counts calls by caller: a User-Agent's product token from a short list, else other", async () => {
    const j = await jafflr();
    const count = (caller: string) =>
      h.metricValue(j.metrics, "jafflr_legacy_toastie_calls_total", { caller });
    await request(j.app).get(LEGACY).set("User-Agent", "curl/8.5.0");
    await request(j.app).get(LEGACY).set("User-Agent", "gordons-till/2.0");
    assert.deepEqual([await count("curl"), await count("other")], [1, 1]);
  });
});
