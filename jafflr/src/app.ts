import type { Express, Request } from "express";
import {
  createServiceApp,
  HttpProblem,
  type Lifecycle,
  type Logger,
  type Metrics,
  methodNotAllowed,
  promClient,
} from "tpi";
import type { ChillybinClient } from "./chillybin-client";
import type { Config } from "./config";
import type { Features } from "./features";
import type { FlagName } from "./flags";
import type { Grill } from "./grill";
import { openApiDocument } from "./openapi";
import { stallPage } from "./page";
import {
  parseIdempotencyKey,
  parseToastieOrder,
  type ToastieOutcome,
  toastieServer,
} from "./toastie";
import { mountLegacyToastie } from "./toastie-get";

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

export function createApp(deps: AppDeps): Express {
  const { config, logger, metrics, lifecycle, chillybin, grill } = deps;
  grillGauges(metrics.registry, grill);
  const page = stallPage(deps); // Gita's stall page: hears every toastie; mounted before GET /
  const serveToastie = toastieServer({
    ...deps,
    onToastie: page.onToastie,
    registry: metrics.registry,
  });

  return createServiceApp({
    service: "jafflr",
    version: config.VERSION,
    logger,
    metrics,
    lifecycle,
    // No readiness checks beyond draining: the flags are loaded (or waited for) before the app
    // exists, and chillybin being down must not take every jafflr out of its Service at once —
    // toasties answer a quick 503 problem instead (issue 10.3).
    routes(app) {
      page.mount(app);
      app.get("/", (_req, res) => {
        res.json({
          toasting: grill.toasting,
          waiting: grill.waiting,
          slots: grill.slots,
          version: config.VERSION,
          chillybin: chillybin.reachability,
        });
      });
      app.all("/", methodNotAllowed(["GET", "HEAD"]));

      app.post("/toastie", async (req, res) => {
        rejectNonJsonBody(req);
        const order = parseToastieOrder({
          query: req.query as Record<string, unknown>,
          body: req.body,
        });
        const key = parseIdempotencyKey(req.headers["idempotency-key"]);
        await serveToastie(res, order, key);
      });
      mountLegacyToastie(app, serveToastie, metrics);
      app.all("/toastie", methodNotAllowed(["GET", "HEAD", "POST"]));

      const described = {
        ...openApiDocument,
        info: { ...openApiDocument.info, version: config.VERSION },
      };
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

function grillGauges(registry: promClient.Registry, grill: Grill) {
  new promClient.Gauge({
    name: "grill_toasting",
    help: "Orders holding a grill slot (picking or cooking).",
    registers: [registry],
    collect() {
      this.set(grill.toasting);
    },
  });
  new promClient.Gauge({
    name: "grill_waiting",
    help: "Orders queued for a grill slot.",
    registers: [registry],
    collect() {
      this.set(grill.waiting);
    },
  });
}
