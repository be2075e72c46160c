import type { Express, Request } from "express";
import {
  createServiceApp,
  HttpProblem,
  type Lifecycle,
  type Logger,
  type Metrics,
  methodNotAllowed,
  OpenAPIRegistry,
  openApiDocument,
  promClient,
  z,
} from "tpi";
import type { ChillybinClient } from "./chillybin-client";
import type { Config } from "./config";
import type { Features } from "./features";
import type { FlagName } from "./flags";
import type { Grill } from "./grill";
import { registerStallRoutes, stallPage, stallPageRoot } from "./page";
import { Problem, problemTypes } from "./problems";
import {
  IDEMPOTENCY_KEY,
  parseIdempotencyKey,
  parseToastieOrder,
  Toastie,
  ToastieOrderBody,
  ToastieOrderQuery,
  type ToastieOutcome,
  toastieServer,
} from "./toastie";
import { LEGACY_HEADERS, mountLegacyToastie } from "./toastie-get";

export interface AppDeps {
  /** CHILLYBIN_URL is here for the stall page, which reads stock straight from chillybin. */
  config: Pick<Config, "VERSION" | "CHILLYBIN_URL">;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  features: Features<FlagName>;
  chillybin: ChillybinClient;
  grill: Grill;
  /** Called once per toastie that passed validation, after its answer is decided (done or failed). */
  onToastie?: (outcome: ToastieOutcome) => void;
}

export const Status = z
  .object({
    toasting: z.int().min(0),
    waiting: z.int().min(0),
    slots: z.int().min(1),
    version: z.string(),
    chillybin: z.strictObject({
      reachable: z.boolean(),
      checkedAt: z.iso.datetime().nullable(),
      reason: z.string().optional().openapi({ description: "While it cannot be reached." }),
    }),
  })
  .openapi("Status");

export function createApp(deps: AppDeps): Express {
  const { config, logger, metrics, lifecycle, chillybin, grill } = deps;
  for (const [name, help, read] of [
    ["grill_toasting", "Orders holding a grill slot (picking or cooking).", () => grill.toasting],
    ["grill_waiting", "Orders queued for a grill slot.", () => grill.waiting],
  ] as const) {
    new promClient.Gauge({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        this.set(read());
      },
    });
  }
  const page = stallPage(deps); // Gita's stall page: hears every toastie; mounted before GET /
  const serveToastie = toastieServer({
    ...deps,
    onToastie: page.onToastie,
    registry: metrics.registry,
  });
  const described = describe(config.VERSION);

  return createServiceApp({
    service: "jafflr",
    version: config.VERSION,
    logger,
    metrics,
    lifecycle,
    // No readiness checks beyond draining: the flags are loaded before the app exists, and
    // chillybin being down must not take every jafflr out of its Service at once (toasties
    // answer a quick 503 problem instead).
    routes(app) {
      page.mount(app);
      app.get("/", (_req, res) => {
        const status: z.infer<typeof Status> = {
          toasting: grill.toasting,
          waiting: grill.waiting,
          slots: grill.slots,
          version: config.VERSION,
          chillybin: chillybin.reachability,
        };
        res.json(status);
      });
      app.all("/", methodNotAllowed(["GET", "HEAD"]));
      app.post("/toastie", async (req, res) => {
        rejectNonJsonBody(req);
        const order = parseToastieOrder({
          query: req.query as Record<string, unknown>,
          body: req.body,
        });
        await serveToastie(res, order, parseIdempotencyKey(req.headers["idempotency-key"]));
      });
      mountLegacyToastie(app, serveToastie, metrics);
      app.all("/toastie", methodNotAllowed(["GET", "HEAD", "POST"]));
      app.get("/openapi.json", (_req, res) => {
        res.json(described);
      });
      app.all("/openapi.json", methodNotAllowed(["GET", "HEAD"]));
    },
  });
}

/** The JSON parser skips other media types; a form or text body must not silently become an empty order. */
function rejectNonJsonBody(req: Request) {
  const hasBody =
    req.headers["transfer-encoding"] !== undefined ||
    Number(req.headers["content-length"] ?? 0) > 0;
  if (hasBody && !req.is(["application/json", "application/*+json"])) {
    throw new HttpProblem(415, "Unsupported Media Type", {
      detail:
        "Send the order as a JSON body (Content-Type: application/json) or in the query string.",
    });
  }
}

/** GET /openapi.json: OpenAPI 3.1 from the same zod schemas that check requests and shape answers. */
function describe(version: string) {
  const registry = new OpenAPIRegistry();
  registry.register("Problem", Problem);
  const json = (schema: z.ZodType, description: string) => ({
    description,
    content: { "application/json": { schema } },
  });
  const problem = (description: string) => ({
    description,
    content: { "application/problem+json": { schema: Problem } },
  });
  const failures = {
    400: problem("invalid-request (`errors` says where and why); about:blank for malformed JSON."),
    409: problem("out-of-stock (`short`); with v1, `taken` lists what was already picked."),
    413: problem("The body is larger than 16 KiB."),
    415: problem("A body that is not JSON."),
    422: problem("unknown-ingredient, idempotency-key-reused or order-rejected."),
    500: problem("Something went wrong inside jafflr (never expected)."),
    502: problem("cold-store-error: chillybin answered something jafflr cannot use."),
    503: {
      ...problem("grill-busy or cold-store-unavailable: try again after Retry-After."),
      headers: { "Retry-After": { schema: { type: "string" as const, pattern: "^[0-9]+$" } } },
    },
  };
  const headers = z.object({
    "Idempotency-Key": z.string().regex(IDEMPOTENCY_KEY).optional().openapi({
      description: "A retried toastie with the same key picks once (v2); else one per toastie.",
    }),
  });
  registry.registerPath({
    method: "get",
    path: "/",
    summary: "The grill, and whether chillybin is reachable; a browser gets the stall page.",
    responses: {
      200: {
        description: "Status, or the stall page.",
        headers: stallPageRoot.headers,
        content: { "application/json": { schema: Status }, ...stallPageRoot.content },
      },
    },
  });
  registerStallRoutes(registry);
  registry.registerPath({
    method: "post",
    path: "/toastie",
    summary: "Order a toastie: a JSON body or, as the original took it, the query string.",
    request: {
      headers,
      query: ToastieOrderQuery.partial(),
      body: { required: false, content: { "application/json": { schema: ToastieOrderBody } } },
    },
    responses: { 200: json(Toastie, "Toasted."), ...failures },
  });
  const { 415: _, ...getFailures } = failures;
  registry.registerPath({
    method: "get",
    path: "/toastie",
    summary: "Order a toastie the original's way (deprecated; use POST /toastie).",
    deprecated: true,
    request: { headers, query: ToastieOrderQuery },
    responses: Object.fromEntries(
      Object.entries({ 200: json(Toastie, "Toasted."), ...getFailures }).map(([s, r]) => [
        s,
        { ...r, headers: { ...LEGACY_HEADERS, ...("headers" in r ? r.headers : {}) } },
      ]),
    ),
  });
  registry.registerPath({
    method: "head",
    path: "/toastie",
    summary: "The legacy form's headers only: never reads the order, never toasts.",
    deprecated: true,
    responses: { 200: { description: "No body.", headers: LEGACY_HEADERS } },
  });
  const readiness = z.object({
    status: z.enum(["ready", "unavailable"]),
    checks: z.record(z.string(), z.string()),
  });
  for (const [path, summary, responses] of [
    [
      "/health",
      "Liveness: the process serves. Never touches chillybin.",
      {
        200: json(
          z.object({ status: z.literal("ok"), service: z.literal("jafflr"), version: z.string() }),
          "Alive.",
        ),
      },
    ],
    [
      "/ready",
      "Readiness: not draining. Does not depend on chillybin.",
      { 200: json(readiness, "Ready."), 503: json(readiness, "Shutting down.") },
    ],
    [
      "/metrics",
      "Prometheus metrics.",
      {
        200: { description: "Prometheus text.", content: { "text/plain": { schema: z.string() } } },
      },
    ],
    ["/openapi.json", "This description.", { 200: json(z.object({}), "OpenAPI 3.1.") }],
  ] as const) {
    registry.registerPath({ method: "get", path, summary, responses });
  }
  return {
    ...openApiDocument(registry, {
      title: "jafflr",
      version,
      description:
        "The toastie stall: orders toasties, picks their ingredients from chillybin (v1 or v2, as the `pick.v2` flag says per customer) and cooks them. Problem types are listed under x-problem-types.",
    }),
    "x-problem-types": problemTypes,
  };
}
