/**
 * `GET /toastie?i=cheese&i=vegemite&customer=gordon&doneness=burnt` — how the original stall's
 * clients order (it answered any method on /toastie). Accepted as a deprecated legacy form with
 * the same answers and status codes as `POST /toastie`, the treatment chillybin's `GET /pick`
 * gets: Deprecation and Sunset headers, a Link to the successor, no caching, and a counter of
 * calls by caller so its traffic can be watched down to zero. HEAD never toasts: it answers the
 * legacy form's headers only, without reading the order.
 */
import type { Express, NextFunction, Request, Response } from "express";
import { type Metrics, promClient } from "tpi";
import { parseIdempotencyKey, parseQueryOrder, type ServeToastie } from "./toastie";

/** RFC 9745 Deprecation (since when) and RFC 8594 Sunset (until when), as chillybin's v1. */
export const LEGACY_DEPRECATED_AT = new Date(Date.UTC(2026, 10, 1));
export const LEGACY_SUNSET_AT = new Date(Date.UTC(2027, 5, 30));

export function mountLegacyToastie(app: Express, serveToastie: ServeToastie, metrics: Metrics) {
  const legacy = deprecation(metrics);
  app.head("/toastie", legacy, (_req, res) => {
    res.status(200).type("application/json").end();
  });
  app.get("/toastie", legacy, async (req, res) => {
    const order = parseQueryOrder(req.query as Record<string, unknown>);
    const key = parseIdempotencyKey(req.headers["idempotency-key"]);
    await serveToastie(res, order, key);
  });
}

/** Callers named in the metric; anything else is "other", so the label set stays small. */
const KNOWN_CALLERS = new Set([
  "curl",
  "wget",
  "go-http-client",
  "python-requests",
  "node",
  "undici",
  "mozilla",
  "k6",
]);

/** The product token of a User-Agent (`curl/8.5.0` → `curl`), bounded to a known set. */
export function callerOf(userAgent: string | undefined): string {
  const token = /^[^\s/]+/.exec(userAgent ?? "")?.[0].toLowerCase();
  if (!token) return "unknown";
  return KNOWN_CALLERS.has(token) ? token : "other";
}

function deprecation(metrics: Metrics) {
  const calls = new promClient.Counter({
    name: "jafflr_legacy_toastie_calls_total",
    help: "Calls to the deprecated GET/HEAD /toastie, by caller (User-Agent product token). Zero for long enough means it can go.",
    labelNames: ["caller"] as const,
    registers: [metrics.registry],
  });
  const headers = {
    Deprecation: `@${Math.floor(LEGACY_DEPRECATED_AT.getTime() / 1000)}`,
    Sunset: LEGACY_SUNSET_AT.toUTCString(),
    Link: '</toastie>; rel="successor-version"',
    // A GET that changes state: no cache may answer it or replay it.
    "Cache-Control": "no-store",
  };
  return (req: Request, res: Response, next: NextFunction) => {
    res.set(headers);
    calls.inc({ caller: callerOf(req.get("User-Agent")) });
    next();
  };
}
