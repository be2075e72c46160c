import type { RequestHandler } from "express";
import type { Metrics } from "./metrics";
import { promClient } from "./metrics";

/**
 * A route on its way out — chillybin's v1 `GET /pick`, jafflr's legacy `GET /toastie`. Every
 * answer says so (RFC 9745 `Deprecation`, RFC 8594 `Sunset`, a `Link` to its successor), no cache
 * may answer or replay it (both change state), and calls are counted by caller, so its traffic
 * can be watched down to zero before the route is deleted.
 */
export interface Deprecation {
  metrics: Metrics;
  /** The counter, e.g. `chillybin_v1_pick_calls_total`, labelled by `caller`. */
  counter: string;
  help: string;
  deprecatedAt: Date;
  sunsetAt: Date;
  /** The path that replaces it, e.g. `/v2/pick`. */
  successor: string;
  /** User-Agent product tokens (lowercase) named in the metric; any other is `other`. */
  knownCallers: readonly string[];
}

/** The product token of a User-Agent (`curl/8.5.0` → `curl`), bounded to `known` so the label set stays small. */
export function callerOf(userAgent: string | undefined, known: ReadonlySet<string>): string {
  const token = /^[^\s/]+/.exec(userAgent ?? "")?.[0].toLowerCase();
  if (!token) return "unknown";
  return known.has(token) ? token : "other";
}

/** Middleware for each method of the deprecated route: sets the headers and counts the call. */
export function deprecated(d: Deprecation): RequestHandler {
  const calls = new promClient.Counter({
    name: d.counter,
    help: d.help,
    labelNames: ["caller"] as const,
    registers: [d.metrics.registry],
  });
  const known = new Set(d.knownCallers);
  const headers = {
    Deprecation: `@${Math.floor(d.deprecatedAt.getTime() / 1000)}`,
    Sunset: d.sunsetAt.toUTCString(),
    Link: `<${d.successor}>; rel="successor-version"`,
    "Cache-Control": "no-store",
  };
  return (req, res, next) => {
    res.set(headers);
    calls.inc({ caller: callerOf(req.get("User-Agent"), known) });
    next();
  };
}
