import { setTimeout as sleep } from "node:timers/promises";
import type { Router } from "express";
import type { Lifecycle } from "./shutdown";

/** Probes and scrapes, every few seconds: untraced and logged at debug, not to drown the rest. */
export const PROBES = new Set(["/health", "/ready", "/metrics"]);
export type ReadinessCheck = () => Promise<unknown>;
type Checks = Record<string, ReadinessCheck>;
/** /health's answer never changes: serialised once, not per probe. */
export function healthAnswer({ service, version }: { service: string; version: string }) {
  const body = Buffer.from(JSON.stringify({ status: "ok", service, version }));
  const type = "application/json; charset=utf-8";
  return { headers: { "Content-Type": type, "Content-Length": String(body.length) }, body };
}

const NO_ANSWER = new Error("no answer within 2000 ms");
const late = () => sleep(2000, undefined, { ref: false }).then(() => Promise.reject(NO_ANSWER));
/** "ok", or why the check failed; one that hangs fails after 2 s. */
const check = (probe: ReadinessCheck) =>
  Promise.race([Promise.resolve().then(probe), late()]).then(
    () => "ok",
    (err) => (err instanceof Error ? err.message || err.name : String(err)),
  );

// Liveness never asks dependencies: a database outage must not get the pod restarted. A served
// app's GET /health is answered before express (http.ts); this route serves HEAD and supertest.
type Health = ReturnType<typeof healthAnswer>;
export function mountHealth(app: Router, health: Health, lifecycle: Lifecycle, readiness: Checks) {
  app.get("/health", (_req, res) => void res.set(health.headers).send(health.body));
  app.get("/ready", async (_req, res) => {
    const draining = lifecycle.shuttingDown && { shutdown: "shutting down" };
    const entries = Object.entries(readiness);
    const results = draining ? [] : await Promise.all(entries.map(([, probe]) => check(probe)));
    const checks = draining || Object.fromEntries(entries.map(([name], i) => [name, results[i]]));
    const ok = !draining && results.every((r) => r === "ok");
    res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "unavailable", checks });
  });
}
