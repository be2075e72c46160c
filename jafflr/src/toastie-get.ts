/**
 * `GET /toastie?i=cheese&i=vegemite&customer=gordon&doneness=burnt`: how the original stall's
 * clients order. Deprecated, with POST /toastie's answers, and treated as chillybin's GET /pick
 * is (tpi's `deprecated`): Deprecation, Sunset, a successor Link, no caching, and calls counted
 * by caller so its traffic can be watched down to zero. HEAD never toasts.
 */
import type { Express } from "express";
import { deprecated, type Metrics } from "tpi";
import { parseIdempotencyKey, parseToastieOrder, type toastieServer } from "./toastie";

const DEPRECATED_AT = new Date(Date.UTC(2026, 10, 1));
const SUNSET_AT = new Date(Date.UTC(2027, 5, 30));
type Serve = ReturnType<typeof toastieServer>;
const text = (description: string, example?: string) => ({
  description,
  schema: { type: "string" as const, example },
});
export const LEGACY_HEADERS = {
  Deprecation: text("RFC 9745: deprecated since then.", `@${DEPRECATED_AT.getTime() / 1000}`),
  Sunset: text("RFC 8594: may stop working after this date.", SUNSET_AT.toUTCString()),
  Link: text('`</toastie>; rel="successor-version"` (POST /toastie).'),
  "Cache-Control": text("`no-store`: a GET that changes state must not be cached.", "no-store"),
};

export function mountLegacyToastie(app: Express, serve: Serve, metrics: Metrics) {
  const legacy = deprecated({
    metrics,
    counter: "jafflr_legacy_toastie_calls_total",
    help: "Calls to the deprecated GET/HEAD /toastie, by caller (User-Agent product token). Zero for long enough means it can go.",
    deprecatedAt: DEPRECATED_AT,
    sunsetAt: SUNSET_AT,
    successor: "/toastie",
    // Any other caller is counted as "other".
    knownCallers: "curl wget go-http-client python-requests node undici mozilla k6".split(" "),
  });
  app.head("/toastie", legacy, (_req, res) => void res.status(200).type("application/json").end());
  app.get("/toastie", legacy, async (req, res) => {
    const order = parseToastieOrder({ query: req.query });
    await serve(res, order, parseIdempotencyKey(req.headers["idempotency-key"]));
  });
}
