import type { Request, Response, Router } from "express";
import type { Lifecycle } from "./shutdown";

/** A dependency probe: resolves when the dependency answers, rejects with the reason otherwise. */
export type ReadinessCheck = () => Promise<unknown>;

const CHECK_TIMEOUT_MS = 2000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export interface HealthAnswer {
  headers: Record<string, string>;
  body: Buffer;
}

/** /health's answer, the same every time: serialised once, not per probe. */
export function healthAnswer(opts: { service: string; version: string }): HealthAnswer {
  const body = Buffer.from(
    JSON.stringify({ status: "ok", service: opts.service, version: opts.version }),
  );
  return {
    headers: {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Length": String(body.length),
    },
    body,
  };
}

/**
 * /health is liveness (the process serves; never touches dependencies, so a database outage
 * does not get the pod restarted); /ready is readiness (dependencies answer, not draining).
 */
export function mountHealth(
  router: Router,
  opts: {
    health: HealthAnswer;
    lifecycle: Lifecycle;
    readiness: Record<string, ReadinessCheck>;
  },
) {
  // A served app's GET /health is answered before express (http.ts, requestListener); this
  // route serves HEAD, and GET when the app is called directly (supertest).
  const { health } = opts;
  router.get("/health", (_req: Request, res: Response) => {
    res.set(health.headers).send(health.body);
  });
  router.get("/ready", async (_req: Request, res: Response) => {
    if (opts.lifecycle.shuttingDown) {
      res.status(503).json({ status: "unavailable", checks: { shutdown: "shutting down" } });
      return;
    }
    const names = Object.keys(opts.readiness);
    const results = await Promise.allSettled(
      names.map((name) =>
        withTimeout(Promise.resolve().then(opts.readiness[name]), CHECK_TIMEOUT_MS),
      ),
    );
    const checks: Record<string, string> = {};
    let ok = true;
    results.forEach((r, i) => {
      const name = names[i] as string;
      if (r.status === "fulfilled") checks[name] = "ok";
      else {
        ok = false;
        checks[name] =
          r.reason instanceof Error ? r.reason.message || r.reason.name : String(r.reason);
      }
    });
    res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "unavailable", checks });
  });
}
