import type { Express, RequestHandler } from "express";
import * as tpi from "tpi";
import { type Lifecycle, type Logger, type Metrics, methodNotAllowed, promClient, z } from "tpi";
import type { ChillybinClient } from "./chillybin-client";
import type { Config } from "./config";
import type { Features } from "./features";
import type { FlagName } from "./flags";
import type { Grill } from "./grill";
import { registerStallRoutes, stallPage, stallPageRoot } from "./page";
import { Problem, problemTypes } from "./problems";
import * as toastie from "./toastie";

export interface AppDeps {
  /** CHILLYBIN_URL is for the stall page, which reads stock straight from chillybin. */
  config: Pick<Config, "VERSION" | "CHILLYBIN_URL"> & Partial<Pick<Config, "STALL_STREAMS_MAX">>;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  features: Features<FlagName>;
  chillybin: ChillybinClient;
  grill: Grill;
  /** Told once per toastie that passed validation, after its answer is decided. */
  onToastie?: (outcome: toastie.ToastieOutcome) => void;
}

const Status = z
  .object({
    ...{ toasting: z.int().min(0), waiting: z.int().min(0), slots: z.int().min(1) },
    version: z.string(),
    chillybin: z.strictObject({
      ...{ reachable: z.boolean(), checkedAt: z.iso.datetime().nullable() },
      reason: z.string().optional(),
    }),
  })
  .openapi("Status");

export function createApp(deps: AppDeps): Express {
  const { config, metrics, chillybin, grill } = deps;
  for (const [name, help, read] of [
    ["grill_toasting", "Orders holding a grill slot (picking or cooking).", () => grill.toasting],
    ["grill_waiting", "Orders queued for a grill slot.", () => grill.waiting],
    ["jafflr_chillybin_up", "1 while jafflr can reach chillybin, else 0.", () => up(chillybin)],
  ] as const) {
    new promClient.Gauge({ name, help, registers: [metrics.registry], collect: collector(read) });
  }
  const page = stallPage(deps); // hears every toastie; mounted before the JSON GET /
  const serve = toastie.toastieServer({ ...deps, ...page });
  const described = describe(config.VERSION);
  // The JSON parser skips other media types: a form body must not become an empty order.
  const jsonIfAny: typeof tpi.requireJson = (req, res, next) =>
    req.headers["transfer-encoding"] || Number(req.headers["content-length"] ?? 0) > 0
      ? tpi.requireJson(req, res, next)
      : next();
  const order: RequestHandler = async (req, res) => {
    const body = req.method === "POST" ? req.body : undefined; // the legacy GET reads the query only
    const order = toastie.parseToastieOrder({ query: req.query, body });
    await serve(res, order, toastie.parseIdempotencyKey(req.headers["idempotency-key"]));
  };
  // The original's `GET /toastie?i=cheese&i=vegemite&customer=gordon&doneness=burnt`, as chillybin's
  // GET /pick: deprecated, uncached, its calls counted by caller to watch them fall to zero.
  const legacy = tpi.deprecated({
    metrics,
    counter: "jafflr_legacy_toastie_calls_total",
    help: "Calls to the deprecated GET/HEAD /toastie, by caller (User-Agent product token). Zero for long enough means it can go.",
    deprecatedAt: DEPRECATED_AT,
    sunsetAt: SUNSET_AT,
    successor: "/toastie",
    knownCallers: "curl wget go-http-client python-requests node undici mozilla k6".split(" "),
  });

  // Readiness is only "not draining": chillybin being down must not take every jafflr out of
  // its Service at once (toasties answer a quick 503 problem instead).
  return tpi.createServiceApp({
    ...{ service: "jafflr", version: config.VERSION, ...deps },
    routes(app) {
      page.mount(app);
      app.get("/", (_req, res) => {
        const { toasting, waiting, slots } = grill;
        const status = { toasting, waiting, slots, version: config.VERSION };
        res.json({ ...status, chillybin: chillybin.reachability } satisfies z.infer<typeof Status>);
      });
      app.all("/", methodNotAllowed(["GET", "HEAD"]));
      app.post("/toastie", jsonIfAny, order);
      app.head("/toastie", legacy, (_req, res) => void res.type("json").end()); // never toasts
      app.get("/toastie", legacy, order);
      app.all("/toastie", methodNotAllowed(["GET", "HEAD", "POST"]));
      app.get("/openapi.json", (_req, res) => void res.json(described));
      app.all("/openapi.json", methodNotAllowed(["GET", "HEAD"]));
    },
  });
}

const up = (chillybin: ChillybinClient) => (chillybin.reachability.reachable ? 1 : 0);
const collector = (read: () => number) =>
  function (this: promClient.Gauge) {
    this.set(read());
  };

const DEPRECATED_AT = new Date(Date.UTC(2026, 10, 1));
const SUNSET_AT = new Date(Date.UTC(2027, 5, 30));
const text = (description: string, example?: string) => ({
  description,
  schema: { type: "string" as const, example },
});
const LEGACY_HEADERS = {
  Deprecation: text("RFC 9745: deprecated since then.", `@${DEPRECATED_AT.getTime() / 1000}`),
  Sunset: text("RFC 8594: may stop working after this date.", SUNSET_AT.toUTCString()),
  Link: text('`</toastie>; rel="successor-version"` (POST /toastie).'),
  "Cache-Control": text("`no-store`: a GET that changes state must not be cached.", "no-store"),
};

type Route = Parameters<tpi.OpenAPIRegistry["registerPath"]>[0];

/** GET /openapi.json: OpenAPI 3.1 from the zod schemas that check requests and shape answers. */
function describe(version: string) {
  const registry = new tpi.OpenAPIRegistry();
  const body = (type: string, schema: z.ZodType, description = "") => ({
    description,
    content: { [type]: { schema } },
  });
  const json = (schema: z.ZodType, about = "") => body("application/json", schema, about);
  const problem = (description: string) => body("application/problem+json", Problem, description);
  const failures = {
    400: problem("invalid-request (`errors`: where and why); about:blank for malformed JSON."),
    409: problem("out-of-stock (`short`); with v1, `taken`: what was already picked."),
    413: problem("The body is larger than 16 KiB."),
    422: problem("unknown-ingredient, idempotency-key-reused or order-rejected."),
    500: problem("Something went wrong inside jafflr (never expected)."),
    502: problem("cold-store-error: chillybin answered something jafflr cannot use."),
    503: {
      ...problem("grill-busy or cold-store-unavailable: try again after Retry-After."),
      headers: { "Retry-After": { schema: { type: "string" as const, pattern: "^[0-9]+$" } } },
    },
  };
  const key = z.string().regex(toastie.IDEMPOTENCY_KEY).optional();
  const headers = z.object({ "Idempotency-Key": key });
  const done = json(toastie.Toastie, "Toasted.");
  // Every answer to the legacy form carries these; they are listed on its 200s.
  const legacy = { ...done, headers: LEGACY_HEADERS };
  const bare = { description: "", headers: LEGACY_HEADERS };
  const root = { ...json(Status), headers: stallPageRoot.headers };
  Object.assign(root.content, stallPageRoot.content); // a browser gets the stall page
  const content = { "application/json": { schema: toastie.ToastieOrderBody } };
  const post = { headers, query: toastie.ToastieOrderQuery.partial(), body: { content } };
  const deprecated = { deprecated: true };
  const legacyGet = { ...deprecated, request: { headers, query: toastie.ToastieOrderQuery } };
  const posted = { 200: done, 415: problem("A body that is not JSON."), ...failures };
  const paths: [Route["method"], string, string, Route["responses"], Partial<Route>?][] = [
    ["get", "/", "The grill, and whether chillybin is reachable.", { 200: root }],
    ["post", "/toastie", "Order a toastie: a JSON body or the query.", posted, { request: post }],
    ["get", "/toastie", "Order the original's way.", { ...failures, 200: legacy }, legacyGet],
    ["head", "/toastie", "Headers only: never toasts.", { 200: bare }, deprecated],
    ["get", "/openapi.json", "This description.", { 200: json(z.object({})) }],
  ];
  for (const [method, path, summary, responses, more] of paths) {
    registry.registerPath({ method, path, summary, responses, ...more });
  }
  tpi.registerTpiRoutes(registry, "jafflr"); // /health; /ready (here only "not draining"); /metrics
  registerStallRoutes(registry);
  const info = { title: "jafflr", version, description: "Problem types: x-problem-types." };
  return { ...tpi.openApiDocument(registry, info), "x-problem-types": problemTypes };
}
