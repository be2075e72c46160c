import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import { callerOf, createMetrics, createServiceApp, deprecated, Lifecycle } from "../src/index";
import { silentLogger } from "./helpers";

describe("deprecated routes", () => {
  const metrics = createMetrics({ service: "test", version: "9.9.9" });
  const app = createServiceApp({
    service: "test",
    version: "9.9.9",
    logger: silentLogger(),
    metrics,
    lifecycle: new Lifecycle(),
    routes: (router) => {
      const old = deprecated({
        metrics,
        counter: "test_old_calls_total",
        help: "calls to /old",
        deprecatedAt: new Date(Date.UTC(2026, 10, 1)),
        sunsetAt: new Date(Date.UTC(2027, 5, 30)),
        successor: "/new",
        knownCallers: ["curl"],
      });
      router.get("/old", old, (_req, res) => {
        res.send("ok");
      });
    },
  });

  it("says so on every answer, forbids caching and counts callers, unknown ones bounded", async () => {
    const res = await request(app).get("/old").set("User-Agent", "curl/8.5.0");
    assert.equal(res.status, 200);
    assert.equal(res.headers.deprecation, "@1793491200");
    assert.equal(res.headers.sunset, "Wed, 30 Jun 2027 00:00:00 GMT");
    assert.equal(res.headers.link, '</new>; rel="successor-version"');
    assert.equal(res.headers["cache-control"], "no-store");
    await request(app).get("/old").set("User-Agent", "evil-<script>/1");
    const text = await metrics.registry.metrics();
    assert.match(text, /test_old_calls_total\{caller="curl"[^}]*\} 1/);
    assert.match(text, /test_old_calls_total\{caller="other"[^}]*\} 1/);
    assert.equal(text.includes("evil"), false);
  });

  it("names a caller by its User-Agent product token, from the known list only", () => {
    const known = new Set(["curl", "mozilla"]);
    assert.equal(callerOf("curl/8.5.0", known), "curl");
    assert.equal(callerOf("Mozilla/5.0 (X11)", known), "mozilla");
    assert.equal(callerOf("ShinyNewClient/0.1", known), "other");
    assert.equal(callerOf("", known), "unknown");
    assert.equal(callerOf(undefined, known), "unknown");
    assert.equal(callerOf("/weird", known), "unknown");
  });
});
