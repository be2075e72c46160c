import type { Router } from "express";
import type { Lifecycle } from "./shutdown";

/** A dependency probe: resolves when the dependency answers, rejects with the reason otherwise. */
export type ReadinessCheck = () => Promise<unknown>;

/** /health's answer never changes: serialised once, not per probe. */
export function healthAnswer(opts: { service: string; version: string }) {
  const body = Buffer.from(
    JSON.stringify({ status: "ok", service: opts.service, version: opts.version }),
  );
  const headers = {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": String(body.length),
  };
  return { headers, body };
}

/** The reason a check failed, or "ok"; a check that hangs fails after 2 s. */
async function check(probe: ReadinessCheck): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no answer within 2000 ms")), 2000);
  });
  try {
    await Promise.race([Promise.resolve().then(probe), late]);
    return "ok";
  } catch (err) {
    return err instanceof Error ? err.message || err.name : String(err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * /health is liveness (never touches dependencies: a database outage must not get the pod
 * restarted); /ready is readiness (dependencies answer, not draining). A served app's GET /health
 * is answered before express (http.ts): this route serves HEAD, and GET under supertest.
 */
export function mountHealth(
  router: Router,
  health: ReturnType<typeof healthAnswer>,
  lifecycle: Lifecycle,
  readiness: Record<string, ReadinessCheck>,
) {
  router.get("/health", (_req, res) => {
    res.set(health.headers).send(health.body);
  });
  router.get("/ready", async (_req, res) => {
    if (lifecycle.shuttingDown) {
      res.status(503).json({ status: "unavailable", checks: { shutdown: "shutting down" } });
      return;
    }
    const names = Object.keys(readiness);
    const results = await Promise.all(
      names.map((name) => check(readiness[name] as ReadinessCheck)),
    );
    const checks = Object.fromEntries(names.map((name, i) => [name, results[i]]));
    const ok = results.every((r) => r === "ok");
    res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "unavailable", checks });
  });
}
