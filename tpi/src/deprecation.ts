import type { RequestHandler } from "express";
import { type Metrics, promClient } from "./metrics";

/** The product token of a User-Agent (`curl/8.5.0` → `curl`), bounded to `known` so labels stay few. */
export function callerOf(userAgent: string | undefined, known: ReadonlySet<string>): string {
  const token = /^[^\s/]+/.exec(userAgent ?? "")?.[0].toLowerCase();
  return token ? (known.has(token) ? token : "other") : "unknown";
}

/**
 * Middleware for a route on its way out: every answer says so (RFC 9745 `Deprecation`, RFC 8594
 * `Sunset`, a `Link` to its successor), no cache may replay it (it changes state), and calls are
 * counted by caller, so its traffic can be watched down to zero before the route is deleted.
 */
export function deprecated(d: {
  metrics: Metrics;
  /** e.g. `chillybin_v1_pick_calls_total`, labelled by `caller` */
  counter: string;
  help: string;
  deprecatedAt: Date;
  sunsetAt: Date;
  successor: string;
  /** User-Agent product tokens (lowercase) named in the metric; any other is `other`. */
  knownCallers: readonly string[];
}): RequestHandler {
  const calls = new promClient.Counter({
    name: d.counter,
    help: d.help,
    labelNames: ["caller"],
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
