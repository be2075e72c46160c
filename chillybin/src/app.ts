import type { Express, RequestHandler } from "express";
import type pg from "pg";
import {
  createServiceApp,
  type Lifecycle,
  type Logger,
  type Metrics,
  methodNotAllowed,
  requireJson,
} from "tpi";
import { databaseUnavailableHandler } from "./db";
import { streamEvents } from "./events";
import { schemaReady } from "./migrate";
import { getOrder, listOrders, parseIdempotencyKey, parseOrder, placeOrder } from "./orders";
import { mountPickV1 } from "./pick-v1";
import { describeApi, fail, OrderNotFound } from "./problems";
import { listStock, parseRestock, requireAdmin, setStock } from "./stock";
import type { StockFeed } from "./stock-feed";

export interface AppDeps {
  pool: pg.Pool;
  feed: StockFeed;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  version: string;
  adminToken?: string | undefined;
  /** GET /events: streams open at once (default 100) and the heartbeat interval (default 15 s). */
  events?: { maxStreams?: number; heartbeatMs?: number };
}

export function createApp(deps: AppDeps): Express {
  const { pool, feed, logger, metrics, lifecycle } = deps;
  return createServiceApp({
    service: "chillybin",
    version: deps.version,
    logger,
    metrics,
    lifecycle,
    readiness: { database: schemaReady(pool) },
    routes: (app) => {
      const only = (method: "get" | "post", path: string, ...handlers: RequestHandler[]) => {
        app[method](path, ...handlers);
        app.all(path, methodNotAllowed([method.toUpperCase()]));
      };
      // The original's shape, {"bread":10,"cheese":10,…}: from memory while the feed is live.
      only("get", "/", async (_req, res) => {
        res.type("json").send(feed.currentJson() ?? JSON.stringify(await listStock(pool)));
      });
      mountPickV1(app, { pool, metrics, feed });
      only("get", "/events", streamEvents({ pool, feed, lifecycle, ...deps.events }));
      only("post", "/v2/pick", requireJson, async (req, res) => {
        const key = parseIdempotencyKey(req.headersDistinct["idempotency-key"]);
        const { order, replayed, xid } = await placeOrder(pool, parseOrder(req.body), key);
        feed.wrote(xid);
        if (replayed) res.set("Idempotent-Replayed", "true");
        res.json(order);
      });
      only("get", "/orders", async (req, res) => {
        res.json({ orders: await listOrders(pool, req.query) });
      });
      only("get", "/orders/:id", async (req, res) => {
        const id = req.params.id as string;
        const order = await getOrder(pool, id);
        if (!order) throw fail(OrderNotFound, `There is no order ${id.toLowerCase()}.`);
        res.json(order);
      });
      only("post", "/restock", requireAdmin(deps.adminToken), async (req, res) => {
        const { stock, xid } = await setStock(pool, parseRestock(req));
        feed.wrote(xid);
        res.json(stock);
      });
      // Built on first request, once every route (v1's too) has registered its part.
      let description: string | undefined;
      only("get", "/openapi.json", (_req, res) => {
        description ??= JSON.stringify(describeApi(deps.version));
        res.type("json").send(description);
      });
      // After the routes, before tpi's problem handler: "database unreachable" becomes a 503.
      app.use(databaseUnavailableHandler(logger));
    },
  });
}
