/**
 * The original's `GET /toastie?i=…` (issue 10.4): a deprecated legacy form with the same answers
 * and status codes as POST, deprecation headers, a counter by caller, and a HEAD that never toasts.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import request from "supertest";
import { callerOf as callerIn } from "tpi";
import type { ToastieOutcome } from "../src/toastie";
import { KNOWN_CALLERS } from "../src/toastie-get";

const callerOf = (ua: string | undefined) => callerIn(ua, new Set(KNOWN_CALLERS));

import {
  buildJafflr,
  metricValue,
  standInChillybin,
  type TestJafflr,
  tempFlagFile,
} from "./helpers";

let cold: Awaited<ReturnType<typeof standInChillybin>>;
let jafflr: TestJafflr;
const flags = tempFlagFile(["gordon", "gita"]);
const outcomes: ToastieOutcome[] = [];

before(async () => {
  cold = await standInChillybin();
  jafflr = await buildJafflr({
    chillybinUrl: cold.url,
    flagsFile: flags.file,
    onToastie: (o) => outcomes.push(o),
  });
});
after(async () => {
  await jafflr.close();
  await cold.close();
  flags.remove();
});
beforeEach(() => {
  cold.requests.length = 0;
  outcomes.length = 0;
});

const ORIGINAL = "/toastie?i=cheese&i=vegemite&customer=gordon&doneness=burnt";

function assertDeprecated(res: request.Response) {
  assert.match(res.headers.deprecation ?? "", /^@\d+$/);
  assert.ok(!Number.isNaN(Date.parse(res.headers.sunset ?? "")), res.headers.sunset);
  assert.equal(res.headers.link, '</toastie>; rel="successor-version"');
  assert.equal(res.headers["cache-control"], "no-store");
}

/** A problem's body without `instance`, which names the path it was asked at. */
const comparable = (body: Record<string, unknown>) => ({ ...body, instance: undefined });

describe("GET /toastie (deprecated legacy form)", () => {
  it("toasts the original's order, answering as POST would, with deprecation headers", async () => {
    const got = await request(jafflr.app).get(ORIGINAL);
    assert.equal(got.status, 200, JSON.stringify(got.body));
    assertDeprecated(got);
    const posted = await request(jafflr.app).post(ORIGINAL);
    assert.equal(posted.status, 200);
    assert.equal(posted.headers.deprecation, undefined, "POST is not deprecated");
    assert.deepEqual({ ...got.body, orderId: undefined }, { ...posted.body, orderId: undefined });
    assert.deepEqual(got.body, {
      status: "done",
      customer: "gordon",
      ingredients: ["cheese", "vegemite", "bread", "bread"],
      doneness: "burnt",
      pickedVia: "v2",
      orderId: got.body.orderId,
    });
    assert.equal(outcomes.length, 2, "both told to the page hook");
  });

  it("refuses what POST refuses, with the same problem and nothing picked", async () => {
    for (const query of [
      "/toastie?i=vegemite&customer=gordon",
      "/toastie",
      "/toastie?i=cheese&doneness=charcoal",
      "/toastie?i=cheese&customer=%20gordon",
      "/toastie?i=cheese&size=xl",
    ]) {
      const got = await request(jafflr.app).get(query);
      const posted = await request(jafflr.app).post(query);
      assert.equal(got.status, 400, query);
      assert.equal(got.status, posted.status, query);
      assert.match(got.headers["content-type"] ?? "", /^application\/problem\+json/);
      assertDeprecated(got);
      assert.deepEqual(comparable(got.body), comparable(posted.body), query);
    }
    const badKey = await request(jafflr.app).get(ORIGINAL).set("Idempotency-Key", "two words");
    assert.equal(badKey.status, 400);
    assert.equal(badKey.body.errors[0].header, "Idempotency-Key");
    assert.equal(cold.requests.length, 0);
    assert.equal(outcomes.length, 0);
  });

  it("HEAD never toasts: the legacy form's headers only", async () => {
    const res = await request(jafflr.app).head(ORIGINAL);
    assert.equal(res.status, 200);
    assertDeprecated(res);
    assert.equal(res.text, undefined);
    const nonsense = await request(jafflr.app).head("/toastie?i=ham");
    assert.equal(nonsense.status, 200, "the order is not even read");
    assert.equal(cold.requests.length, 0, "nothing picked");
    assert.equal(jafflr.grill.toasting, 0);
    assert.equal(outcomes.length, 0, "no toastie");
  });

  it("counts calls by caller: a User-Agent's product token from a short list, else other", async () => {
    const count = (caller: string) =>
      metricValue(jafflr.metrics, "jafflr_legacy_toastie_calls_total", { caller });
    const before = (await count("curl")) ?? 0;
    await request(jafflr.app).get(ORIGINAL).set("User-Agent", "curl/8.5.0");
    await request(jafflr.app).get(ORIGINAL).set("User-Agent", "gordons-till/2.0");
    assert.equal(await count("curl"), before + 1);
    assert.ok(((await count("other")) ?? 0) >= 1);
    assert.equal(callerOf("Mozilla/5.0 (X11; Linux x86_64)"), "mozilla");
    assert.equal(callerOf("Go-http-client/1.1"), "go-http-client");
    assert.equal(callerOf("ShinyNewClient/0.1"), "other");
    assert.equal(callerOf(undefined), "unknown");
  });
});
