import { randomUUID } from "node:crypto";
import type { Express, Request } from "express";
import {
  createHttpApp,
  finishHttpApp,
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
import type { Grill } from "./grill";
import { parseIdempotencyKey, parseToastieOrder, type ToastieOutcome, withBread } from "./toastie";

export interface AppDeps {
  /** CHILLYBIN_URL is here for the stall page, which reads stock straight from chillybin. */
  config: Pick<Config, "VERSION" | "CHILLYBIN_URL">;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  features: Features;
  chillybin: Pick<ChillybinClient, "pickV1" | "pickV2" | "ping">;
  grill: Grill;
  /** Called once per toastie that passed validation, after its answer is decided (done or failed). */
  onToastie?: (outcome: ToastieOutcome) => void;
}

export function createApp(deps: AppDeps): Express {
  const { config, logger, metrics, lifecycle, features, chillybin, grill } = deps;
  const app = createHttpApp({
    service: "jafflr",
    version: config.VERSION,
    logger,
    metrics,
    lifecycle,
    readiness: { chillybin: () => chillybin.ping() },
  });
  const toasties = grillMetrics(metrics.registry, grill);

  app.get("/", (_req, res) => {
    res.json({
      toasting: grill.toasting,
      waiting: grill.waiting,
      slots: grill.slots,
      version: config.VERSION,
    });
  });
  app.all("/", methodNotAllowed(["GET", "HEAD"]));

  app.post("/toastie", async (req, res) => {
    rejectNonJsonBody(req);
    const order = parseToastieOrder({
      query: req.query as Record<string, unknown>,
      body: req.body,
    });
    const clientKey = parseIdempotencyKey(req.headers["idempotency-key"]);

    // A customer who hangs up while queued leaves the queue before anything is picked for them.
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort(new HttpProblem(499, "Client Closed Request"));
    };
    res.once("close", onClose);
    let pickedVia: "v1" | "v2" | undefined;
    let orderId: string | undefined;
    const tell = (status: number, problem?: { title: string; detail?: string }) =>
      deps.onToastie?.({
        at: new Date().toISOString(),
        customer: order.customer,
        ingredients: order.ingredients,
        doneness: order.doneness,
        ...(pickedVia ? { pickedVia } : {}),
        status,
        ...(orderId ? { orderId } : {}),
        ...(problem ? { problem } : {}),
      });
    let slot: Awaited<ReturnType<Grill["reserve"]>>;
    try {
      slot = await grill.reserve(gone.signal);
    } catch (err) {
      tell(...failure(err));
      throw err;
    }
    try {
      const ingredients = withBread(order.ingredients);
      // The original's HasFeature(customer, "pick.v2"), per request so a flip applies at once.
      pickedVia = features.isEnabled("pick.v2", { userId: order.customer }) ? "v2" : "v1";
      const picked =
        pickedVia === "v2"
          ? await chillybin.pickV2(order.customer, ingredients, clientKey ?? randomUUID())
          : await chillybin.pickV1(ingredients);
      if (picked.via === "v2") orderId = picked.orderId;
      await slot.cook(order.doneness);
      toasties.inc({ picked_via: picked.via });
      logger.info(
        { customer: order.customer, pickedVia: picked.via, doneness: order.doneness },
        "toastie done",
      );
      res.json({
        status: "done",
        customer: order.customer,
        ingredients,
        doneness: order.doneness,
        pickedVia: picked.via,
        ...(picked.via === "v2" ? { orderId: picked.orderId } : {}),
      });
      tell(200);
    } catch (err) {
      tell(...failure(err));
      throw err;
    } finally {
      slot.release();
      res.off("close", onClose);
    }
  });
  app.all("/toastie", methodNotAllowed(["POST"]));

  return finishHttpApp(app, { logger });
}

/** The status and words a failed toastie's customer got, for onToastie. */
function failure(err: unknown): [number, { title: string; detail?: string }] {
  if (err instanceof HttpProblem)
    return [err.status, { title: err.title, detail: err.options.detail }];
  return [500, { title: "Internal Server Error" }];
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

function grillMetrics(registry: promClient.Registry, grill: Grill) {
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
  return new promClient.Counter({
    name: "toasties_total",
    help: "Toasties served, by how their ingredients were picked.",
    labelNames: ["picked_via"],
    registers: [registry],
  });
}
