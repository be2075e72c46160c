/**
 * `GET /toastie?i=cheese&i=vegemite&customer=gordon&doneness=burnt` — how the original stall's
 * clients order (it answered any method on /toastie). Accepted as a deprecated legacy form with
 * the same answers and status codes as `POST /toastie`, the treatment chillybin's `GET /pick`
 * gets: Deprecation and Sunset headers, a Link to the successor, no caching, and a counter of
 * calls by caller so its traffic can be watched down to zero. HEAD never toasts: it answers the
 * legacy form's headers only, without reading the order.
 */
import type { Express } from "express";
import { deprecated, type Metrics } from "tpi";
import { parseIdempotencyKey, parseQueryOrder, type ServeToastie } from "./toastie";

/** RFC 9745 Deprecation (since when) and RFC 8594 Sunset (until when), as chillybin's v1. */
export const LEGACY_DEPRECATED_AT = new Date(Date.UTC(2026, 10, 1));
export const LEGACY_SUNSET_AT = new Date(Date.UTC(2027, 5, 30));

export function mountLegacyToastie(app: Express, serveToastie: ServeToastie, metrics: Metrics) {
  const legacy = deprecated({
    metrics,
    counter: "jafflr_legacy_toastie_calls_total",
    help: "Calls to the deprecated GET/HEAD /toastie, by caller (User-Agent product token). Zero for long enough means it can go.",
    deprecatedAt: LEGACY_DEPRECATED_AT,
    sunsetAt: LEGACY_SUNSET_AT,
    successor: "/toastie",
    knownCallers: KNOWN_CALLERS,
  });
  app.head("/toastie", legacy, (_req, res) => {
    res.status(200).type("application/json").end();
  });
  app.get("/toastie", legacy, async (req, res) => {
    const order = parseQueryOrder(req.query as Record<string, unknown>);
    const key = parseIdempotencyKey(req.headers["idempotency-key"]);
    await serveToastie(res, order, key);
  });
}

/** Callers named in jafflr_legacy_toastie_calls_total; any other is "other". */
export const KNOWN_CALLERS = [
  "curl",
  "wget",
  "go-http-client",
  "python-requests",
  "node",
  "undici",
  "mozilla",
  "k6",
];
