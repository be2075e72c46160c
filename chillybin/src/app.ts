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
import { OpenApi } from "./openapi";
import { getOrder, listOrders, placeOrder } from "./orders";
import { mountPickV1 } from "./pick-v1";
import { PROBLEM_TYPES } from "./problems";
import { listStock, resetStock, setStock } from "./stock";
import type { StockFeed } from "./stock-feed";
import {
  parseIdempotencyKey,
  parseOrderId,
  parseOrderRequest,
  parseOrdersQuery,
  parseRestockBody,
} from "./validation";

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
  const { pool, logger, metrics } = deps;
  return createServiceApp({
    service: "chillybin",
    version: deps.version,
    logger,
    metrics,
    lifecycle: deps.lifecycle,
    readiness: { database: schemaReady(pool, deps.requiredMigrations ?? knownMigrations()) },
    routes: (app) => routes(app, deps),
  });
}

function routes(app: Express, deps: AppDeps): void {
  const { pool, feed, logger } = deps;
  const openapi = new OpenApi();

  // GET / — the whole stock, {"bread":10,"cheese":10,…} (the original's shape), from memory
  // while the stock feed is live, from the database otherwise.
  app.get("/", async (_req, res) => {
    const json = feed.currentJson() ?? JSON.stringify(await listStock(pool));
    res.type("application/json").send(json);
  });
  app.all("/", methodNotAllowed(["GET"]));

  mountPickV1(app, { pool, metrics: deps.metrics, feed, openapi });

  mountEvents(app, { pool, feed, lifecycle: deps.lifecycle, ...deps.events });

  // POST /v2/pick — a whole order, atomically, safe to retry with an Idempotency-Key.
  app.post("/v2/pick", requireJson, async (req, res) => {
    const key = parseIdempotencyKey(req.headersDistinct["idempotency-key"]);
    const request = parseOrderRequest(req.body);
    const { order, replayed, xid } = await placeOrder(pool, request, key);
    feed.wrote(xid);
    if (replayed) res.set("Idempotent-Replayed", "true");
    res.json(order);
  });
  app.all("/v2/pick", methodNotAllowed(["POST"]));

  app.get("/orders", async (req, res) => {
    res.json({ orders: await listOrders(pool, parseOrdersQuery(req.query)) });
  });
  app.all("/orders", methodNotAllowed(["GET"]));

  app.get("/orders/:id", async (req, res) => {
    const id = parseOrderId(req.params.id as string);
    const order = await getOrder(pool, id);
    if (!order) {
      throw new HttpProblem(404, "Order not found", {
        type: PROBLEM_TYPES.orderNotFound,
        detail: `There is no order ${id}.`,
      });
    }
    res.json(order);
  });
  app.all("/orders/:id", methodNotAllowed(["GET"]));

  // POST /restock — no body resets the default stock; a JSON object sets levels.
  app.post("/restock", requireAdmin(deps.adminToken), async (req, res) => {
    if (!hasBody(req)) {
      const { stock, xid } = await resetStock(pool);
      feed.wrote(xid);
      res.json(stock);
      return;
    }
    if (!req.is(["application/json", "application/*+json"])) {
      throw new HttpProblem(415, "Unsupported Media Type", {
        detail:
          "Send stock levels as JSON with Content-Type: application/json, or no body to reset.",
      });
    }
    const { stock, xid } = await setStock(pool, parseRestockBody(req.body));
    feed.wrote(xid);
    res.json(stock);
  });
  app.all("/restock", methodNotAllowed(["POST"]));

  // Built on first request, once every route (v1's too) has added its part.
  let description: string | undefined;
  app.get("/openapi.json", (_req, res) => {
    description ??= JSON.stringify(openapi.document(deps.version));
    res.type("application/json").send(description);
  });
  app.all("/openapi.json", methodNotAllowed(["GET"]));

  // After the routes, before tpi's problem handler: "database unreachable" becomes a 503.
  app.use(databaseUnavailableHandler(logger));
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

// ---------- restock ----------

/** A request with a body: a length above zero, or chunked. `curl -X POST` sends neither. */
function hasBody(req: Request): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const length = Number(req.headers["content-length"] ?? 0);
  return Number.isNaN(length) || length > 0;
}

function requireAdmin(token: string | undefined): RequestHandler {
  if (token === undefined) return (_req, _res, next) => next();
  const expected = sha256(token);
  return (req, _res, next) => {
    const match = /^Bearer +(\S+) *$/i.exec(req.get("Authorization") ?? "");
    if (!match) {
      throw new HttpProblem(401, "Unauthorized", {
        type: PROBLEM_TYPES.unauthorized,
        detail: "Restocking needs Authorization: Bearer <CHILLYBIN_ADMIN_TOKEN>.",
        headers: { "WWW-Authenticate": 'Bearer realm="chillybin"' },
      });
    }
    // Hash first so the comparison is constant-time whatever the lengths.
    if (!timingSafeEqual(sha256(match[1] as string), expected)) {
      throw new HttpProblem(403, "Forbidden", {
        type: PROBLEM_TYPES.forbidden,
        detail: "That token may not restock.",
      });
    }
    next();
  };
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
