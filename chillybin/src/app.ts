import { createHash, timingSafeEqual } from "node:crypto";
import type { Express, Request, RequestHandler } from "express";
import type pg from "pg";
import {
  createServiceApp,
  HttpProblem,
  type Lifecycle,
  type Logger,
  type Metrics,
  methodNotAllowed,
  requireJson,
} from "tpi";
import { databaseUnavailableHandler } from "./db";
import { mountEvents } from "./events";
import { knownMigrations } from "./migrate";
import { getOrder, listOrders, parseIdempotencyKey, parseOrder, placeOrder } from "./orders";
import { mountPickV1 } from "./pick-v1";
import { describeApi, Forbidden, fail, OrderNotFound, Unauthorized } from "./problems";
import { listStock, parseRestock, setStock } from "./stock";
import type { StockFeed } from "./stock-feed";

export interface AppDeps {
  pool: pg.Pool;
  /** The stock kept in memory from LISTEN/NOTIFY; started and closed by the caller. */
  feed: StockFeed;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  version: string;
  /** Migrations that must be applied before /ready says yes (default: all this build ships). */
  requiredMigrations?: string[];
  /** Bearer token POST /restock requires; undefined leaves it open (dev default). */
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
    readiness: { database: schemaReady(pool, deps.requiredMigrations ?? knownMigrations()) },
    routes: (app) => {
      // The original's shape, {"bread":10,"cheese":10,…}: from memory while the feed is live.
      app.get("/", async (_req, res) => {
        res
          .type("application/json")
          .send(feed.currentJson() ?? JSON.stringify(await listStock(pool)));
      });
      app.all("/", methodNotAllowed(["GET"]));

      mountPickV1(app, { pool, metrics, feed });
      mountEvents(app, { pool, feed, lifecycle, ...deps.events });

      app.post("/v2/pick", requireJson, async (req, res) => {
        const key = parseIdempotencyKey(req.headersDistinct["idempotency-key"]);
        const { order, replayed, xid } = await placeOrder(pool, parseOrder(req.body), key);
        feed.wrote(xid);
        if (replayed) res.set("Idempotent-Replayed", "true");
        res.json(order);
      });
      app.all("/v2/pick", methodNotAllowed(["POST"]));

      app.get("/orders", async (req, res) => {
        res.json({ orders: await listOrders(pool, req.query) });
      });
      app.all("/orders", methodNotAllowed(["GET"]));

      app.get("/orders/:id", async (req, res) => {
        const id = req.params.id as string;
        const order = await getOrder(pool, id);
        if (!order) throw fail(OrderNotFound, `There is no order ${id.toLowerCase()}.`);
        res.json(order);
      });
      app.all("/orders/:id", methodNotAllowed(["GET"]));

      // No body resets the default stock; a JSON object sets levels.
      app.post("/restock", requireAdmin(deps.adminToken), async (req, res) => {
        if (hasBody(req) && !req.is(["application/json", "application/*+json"])) {
          throw new HttpProblem(415, "Unsupported Media Type", {
            detail:
              "Send stock levels as JSON with Content-Type: application/json, or no body to reset.",
          });
        }
        const { stock, xid } = await setStock(
          pool,
          hasBody(req) ? parseRestock(req.body) : undefined,
        );
        feed.wrote(xid);
        res.json(stock);
      });
      app.all("/restock", methodNotAllowed(["POST"]));

      // Built on first request, once every route (v1's too) has registered its part.
      let description: string | undefined;
      app.get("/openapi.json", (_req, res) => {
        description ??= JSON.stringify(describeApi(deps.version));
        res.type("application/json").send(description);
      });
      app.all("/openapi.json", methodNotAllowed(["GET"]));

      // After the routes, before tpi's problem handler: "database unreachable" becomes a 503.
      app.use(databaseUnavailableHandler(logger));
    },
  });
}

/**
 * Ready when the database answers *and* has every migration this build needs — so with
 * MIGRATE_ON_START=false a new version takes no traffic until the migration Job has run.
 */
function schemaReady(pool: pg.Pool, required: string[]) {
  return async () => {
    const { rows } = await pool.query<{ name: string }>({
      name: "applied-migrations",
      text: "SELECT name FROM pgmigrations WHERE name = ANY($1::text[])",
      values: [required],
    });
    const applied = new Set(rows.map((r) => r.name));
    const missing = required.filter((m) => !applied.has(m));
    if (missing.length > 0)
      throw new Error(`database schema is behind: ${missing.join(", ")} not applied`);
  };
}

/** A request with a body: a length above zero, or chunked. `curl -X POST` sends neither. */
function hasBody(req: Request): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const length = Number(req.headers["content-length"] ?? 0);
  return Number.isNaN(length) || length > 0;
}

function requireAdmin(token: string | undefined): RequestHandler {
  if (token === undefined) return (_req, _res, next) => next();
  const sha256 = (s: string) => createHash("sha256").update(s).digest();
  const expected = sha256(token);
  return (req, _res, next) => {
    const match = /^Bearer +(\S+) *$/i.exec(req.get("Authorization") ?? "");
    if (!match) {
      throw fail(Unauthorized, "Restocking needs Authorization: Bearer <CHILLYBIN_ADMIN_TOKEN>.", {
        headers: { "WWW-Authenticate": 'Bearer realm="chillybin"' },
      });
    }
    // Hashed first, so the comparison is constant-time whatever the lengths.
    if (!timingSafeEqual(sha256(match[1] as string), expected)) {
      throw fail(Forbidden, "That token may not restock.");
    }
    next();
  };
}
