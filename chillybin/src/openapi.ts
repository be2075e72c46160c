/**
 * chillybin's HTTP API as OpenAPI 3.1, served at GET /openapi.json. Kept by hand next to the
 * routes; test/openapi.test.ts fails when a mounted route is missing here, and the integration
 * tests check every response they receive against it.
 */

import { PROBLEM_TYPES } from "./problems";
import {
  MAX_ORDER_ITEMS,
  MAX_ORDERS_LIMIT,
  MAX_RESTOCK_ENTRIES,
  MAX_STOCK_LEVEL,
} from "./validation";

export type Json = Record<string, unknown>;

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
export const json = (schema: Json) => ({ "application/json": { schema } });
export const problem = (schema: Json) => ({ "application/problem+json": { schema } });

/** A typed problem: its `type`, `title` and `status` are fixed, plus any extension members. */
export function typed(
  type: string,
  status: number,
  title: string,
  extra: Json = {},
  required: string[] = [],
) {
  return {
    allOf: [
      ref("Problem"),
      {
        type: "object",
        properties: {
          type: { const: type },
          title: { const: title },
          status: { const: status },
          ...extra,
        },
        required,
      },
    ],
  };
}

export function reply(description: string, content?: Json, headers?: Json) {
  return { description, ...(headers ? { headers } : {}), ...(content ? { content } : {}) };
}

export const ingredientNameSchema = { type: "string", pattern: "^[a-z][a-z0-9_-]{0,31}$" };
export const quantity = { type: "integer", minimum: 1, maximum: 100 };
const customer = {
  type: "string",
  minLength: 1,
  maxLength: 64,
  description:
    "1-64 Unicode code points; no leading or trailing whitespace; no control, format or line/paragraph separator characters except U+200D (zero-width joiner, as in 👩‍🍳).",
};
const item = {
  type: "object",
  properties: { ingredient: ingredientNameSchema, quantity },
  required: ["ingredient", "quantity"],
  additionalProperties: false,
};

export const unavailable = reply(
  "The database cannot be reached (or is overloaded); retry after Retry-After seconds.",
  problem(ref("DatabaseUnavailable")),
  { "Retry-After": header("Retry-After") },
);
const badRequest = reply(
  "Invalid request (errors name each problem), or a body that is not valid JSON (about:blank).",
  problem({ anyOf: [ref("InvalidRequest"), ref("BlankProblem")] }),
);
const tooLarge = reply("The body is over 16 KiB.", problem(ref("BlankProblem")));
const notJson = reply("The body is not JSON.", problem(ref("BlankProblem")));

const paths: Paths = {
  "/": {
    get: {
      operationId: "getStock",
      summary: "The whole stock: ingredient name → quantity, in name order.",
      responses: { 200: reply("The stock.", json(ref("Stock"))), 503: unavailable },
    },
  },
  "/v2/pick": {
    post: {
      operationId: "pickV2",
      summary:
        "Pick a whole order atomically and record it; safe to retry with an Idempotency-Key.",
      parameters: [
        {
          name: "Idempotency-Key",
          in: "header",
          required: false,
          description: "Exactly one header of 1-255 visible ASCII characters (a UUID is ideal).",
          schema: { type: "string", pattern: "^[\\x21-\\x7e]{1,255}$" },
        },
      ],
      requestBody: {
        required: true,
        content: json({
          oneOf: [
            {
              type: "object",
              description: "A whole order; items naming an ingredient twice are merged.",
              properties: {
                customer,
                items: { type: "array", items: item, minItems: 1, maxItems: MAX_ORDER_ITEMS },
              },
              required: ["customer", "items"],
              additionalProperties: false,
            },
            {
              type: "object",
              description: "The original's one-ingredient form.",
              properties: { customer, ingredient: ingredientNameSchema, quantity },
              required: ["customer", "ingredient", "quantity"],
              additionalProperties: false,
            },
          ],
        }),
      },
      responses: {
        200: reply(
          "Picked and recorded (or, with Idempotent-Replayed, the first answer replayed).",
          json(ref("Order")),
          {
            "Idempotent-Replayed": header("Idempotent-Replayed"),
          },
        ),
        400: badRequest,
        409: reply("Not enough of some items; nothing picked.", problem(ref("OutOfStock"))),
        413: tooLarge,
        415: notJson,
        422: reply(
          "An ingredient chillybin does not stock, or an Idempotency-Key already used for a different order.",
          problem({ anyOf: [ref("UnknownIngredient"), ref("IdempotencyKeyReused")] }),
        ),
        503: unavailable,
      },
    },
  },
  "/orders": {
    get: {
      operationId: "listOrders",
      summary: "Orders, newest first.",
      parameters: [
        { name: "customer", in: "query", required: false, schema: customer },
        {
          name: "limit",
          in: "query",
          required: false,
          schema: { type: "string", pattern: "^(100|[1-9][0-9]?)$", default: "20" },
          description: `1-${MAX_ORDERS_LIMIT}`,
        },
      ],
      responses: {
        200: reply(
          "The orders.",
          json({
            type: "object",
            properties: { orders: { type: "array", items: ref("Order") } },
            required: ["orders"],
            additionalProperties: false,
          }),
        ),
        400: badRequest,
        503: unavailable,
      },
    },
  },
  "/orders/{id}": {
    get: {
      operationId: "getOrder",
      summary: "One order, exactly as placed.",
      parameters: [
        { name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } },
      ],
      responses: {
        200: reply("The order.", json(ref("Order"))),
        400: badRequest,
        404: reply("No such order.", problem(ref("OrderNotFound"))),
        503: unavailable,
      },
    },
  },
  "/restock": {
    post: {
      operationId: "restock",
      summary:
        "No body: reset the stall's default stock. A JSON object: set those levels (creating new ingredients).",
      security: [{}, { adminToken: [] }],
      requestBody: {
        required: false,
        content: json({
          type: "object",
          propertyNames: ingredientNameSchema,
          additionalProperties: { type: "integer", minimum: 0, maximum: MAX_STOCK_LEVEL },
          minProperties: 1,
          maxProperties: MAX_RESTOCK_ENTRIES,
        }),
      },
      responses: {
        200: reply("The whole stock right after.", json(ref("Stock"))),
        400: badRequest,
        401: reply(
          "CHILLYBIN_ADMIN_TOKEN is set and no Bearer token was sent.",
          problem(ref("Unauthorized")),
          {
            "WWW-Authenticate": header("WWW-Authenticate"),
          },
        ),
        403: reply("The Bearer token is not the admin token.", problem(ref("Forbidden"))),
        413: tooLarge,
        415: notJson,
        503: unavailable,
      },
    },
  },
  "/events": {
    get: {
      operationId: "streamEvents",
      summary:
        "Server-Sent Events: the stock on connect and after every change (any instance), and every pick.",
      description:
        "Events: `event: stock` with data = the Stock object; `event: pick` with data = a PickEvent. A comment line (`: heartbeat`) every 15 s. The stream ends when the instance drains; reconnect.",
      responses: {
        200: reply(
          "The stream.",
          { "text/event-stream": { schema: { type: "string" } } },
          {
            "Cache-Control": header("Cache-Control"),
          },
        ),
        503: reply(
          "Too many streams open on this instance, it is shutting down, or the database cannot be reached.",
          problem({ anyOf: [ref("BlankProblem"), ref("DatabaseUnavailable")] }),
          { "Retry-After": header("Retry-After") },
        ),
      },
    },
  },
  "/openapi.json": {
    get: {
      operationId: "getOpenApi",
      summary: "This document.",
      responses: { 200: reply("OpenAPI 3.1.", json({ type: "object" })) },
    },
  },
  "/health": {
    get: {
      operationId: "health",
      summary: "Liveness: the process serves (never touches the database).",
      responses: {
        200: reply(
          "Alive.",
          json({
            type: "object",
            properties: {
              status: { const: "ok" },
              service: { type: "string" },
              version: { type: "string" },
            },
            required: ["status"],
          }),
        ),
      },
    },
  },
  "/ready": {
    get: {
      operationId: "ready",
      summary:
        "Readiness: the database answers and has every migration this build needs; 503 while draining.",
      responses: {
        200: reply("Ready.", json(ref("Readiness"))),
        503: reply("Not ready.", json(ref("Readiness"))),
      },
    },
  },
  "/metrics": {
    get: {
      operationId: "metrics",
      summary: "Prometheus metrics.",
      responses: {
        200: reply("Metrics in the Prometheus text format.", {
          "text/plain": { schema: { type: "string" } },
        }),
      },
    },
  },
};

const problemBase = {
  type: "object",
  properties: {
    type: { type: "string", format: "uri" },
    title: { type: "string" },
    status: { type: "integer" },
    detail: { type: "string" },
    instance: { type: "string" },
  },
  required: ["type", "title", "status"],
};

export const shortage = {
  type: "array",
  items: {
    type: "object",
    properties: {
      ingredient: { type: "string" },
      requested: { type: "integer" },
      available: { type: "integer" },
    },
    required: ["ingredient", "requested", "available"],
  },
};

const schemas: Record<string, Json> = {
  Stock: {
    type: "object",
    additionalProperties: { type: "integer", minimum: 0 },
    example: { bread: 10, cheese: 10 },
  },
  Item: item,
  Order: {
    type: "object",
    properties: {
      id: { type: "string", format: "uuid" },
      customer: { type: "string" },
      items: { type: "array", items: item },
      createdAt: { type: "string", format: "date-time" },
    },
    required: ["id", "customer", "items", "createdAt"],
    additionalProperties: false,
  },
  PickEvent: {
    type: "object",
    description: "The data of an `event: pick` on GET /events.",
    properties: {
      via: { enum: ["v1", "v2"] },
      items: { type: "array", items: item },
      customer: { type: "string" },
      orderId: { type: "string", format: "uuid" },
    },
    required: ["via", "items"],
  },
  Readiness: {
    type: "object",
    properties: {
      status: { enum: ["ready", "unavailable"] },
      checks: { type: "object", additionalProperties: { type: "string" } },
    },
    required: ["status", "checks"],
  },
  Problem: problemBase,
  InvalidRequest: typed(
    PROBLEM_TYPES.invalidRequest,
    400,
    "Invalid request",
    {
      errors: {
        type: "array",
        maxItems: 20,
        items: {
          type: "object",
          description:
            "Exactly one of pointer (into the JSON body), parameter (query or path) or header.",
          properties: {
            pointer: { type: "string" },
            parameter: { type: "string" },
            header: { type: "string" },
            detail: { type: "string" },
          },
          required: ["detail"],
          oneOf: [{ required: ["pointer"] }, { required: ["parameter"] }, { required: ["header"] }],
        },
      },
    },
    ["errors"],
  ),
  UnknownIngredient: typed(
    PROBLEM_TYPES.unknownIngredient,
    422,
    "Unknown ingredient",
    { unknown: { type: "array", items: { type: "string" } } },
    ["unknown"],
  ),
  OutOfStock: typed(PROBLEM_TYPES.outOfStock, 409, "Out of stock", { short: shortage }, ["short"]),
  IdempotencyKeyReused: typed(PROBLEM_TYPES.idempotencyKeyReused, 422, "Idempotency-Key reused"),
  OrderNotFound: typed(PROBLEM_TYPES.orderNotFound, 404, "Order not found"),
  DatabaseUnavailable: typed(PROBLEM_TYPES.databaseUnavailable, 503, "Database unavailable"),
  Unauthorized: typed(PROBLEM_TYPES.unauthorized, 401, "Unauthorized"),
  Forbidden: typed(PROBLEM_TYPES.forbidden, 403, "Forbidden"),
  // about:blank problems: any status, titled with its HTTP status phrase.
  BlankProblem: {
    allOf: [ref("Problem"), { type: "object", properties: { type: { const: "about:blank" } } }],
  },
};

const headers: Record<string, Json> = {
  "Retry-After": {
    description: "Seconds to wait before retrying.",
    schema: { type: "string", pattern: "^[0-9]+$" },
  },
  Allow: { description: "The methods this path supports.", schema: { type: "string" } },
  "Cache-Control": {
    description: "no-store: no cache may answer or replay this.",
    schema: { const: "no-store" },
  },
  "Idempotent-Replayed": {
    description: "true when this is the replay of an earlier answer with the same Idempotency-Key.",
    schema: { const: "true" },
  },
  "WWW-Authenticate": { description: 'Bearer realm="chillybin"', schema: { type: "string" } },
  "X-Request-Id": {
    description: "The request's id (the caller's, if it sent a safe one).",
    schema: { type: "string" },
  },
};

export type Paths = Record<string, Record<string, Json>>;

/**
 * The document: chillybin's own routes plus what other modules add for the routes they mount
 * (v1 adds /pick from pick-v1.ts, so deleting v1 takes it out of the description too).
 */
export class OpenApi {
  private readonly extraPaths: Paths = {};
  private readonly extraSchemas: Record<string, Json> = {};
  private readonly extraHeaders: Record<string, Json> = {};

  add(part: {
    paths?: Paths;
    schemas?: Record<string, Json>;
    headers?: Record<string, Json>;
  }): void {
    Object.assign(this.extraPaths, part.paths);
    Object.assign(this.extraSchemas, part.schemas);
    Object.assign(this.extraHeaders, part.headers);
  }

  /** The whole document for this build's version (a fresh copy each call). */
  document(version: string): Json {
    const all: Paths = structuredClone({ ...paths, ...this.extraPaths });
    // Every other method on a known path is a 405 problem naming the allowed ones in Allow;
    // a deprecated path's 405 carries the same headers as its other answers.
    for (const [path, operations] of Object.entries(all)) {
      const deprecated = Object.values(operations).find((o) => o.deprecated === true);
      const carried = deprecated
        ? (Object.values(deprecated.responses as Record<string, { headers?: Json }>)[0]?.headers ??
          {})
        : {};
      // tpi's probes answer other methods with a plain 404 (no route), not a 405.
      for (const method of PROBES.has(path) ? [] : METHODS) {
        operations[method] ??= {
          operationId: `${method}${path.replace(/[^A-Za-z0-9]+/g, "_")}NotAllowed`,
          summary: "Not allowed here.",
          ...(deprecated ? { deprecated: true } : {}),
          responses: {
            405: reply("Method not allowed.", problem(ref("BlankProblem")), {
              ...carried,
              Allow: header("Allow"),
            }),
          },
        };
      }
      // Every answer carries X-Request-Id.
      for (const operation of Object.values(operations)) {
        for (const response of Object.values(
          operation.responses as Record<string, { headers?: Json }>,
        )) {
          response.headers = { ...response.headers, "X-Request-Id": header("X-Request-Id") };
        }
      }
    }
    return {
      openapi: "3.1.0",
      info: {
        title: "chillybin",
        version,
        description:
          "The cold store of Toasties Galore: stock in PostgreSQL, picked by v2 orders (and the deprecated v1 while it lasts). Errors are RFC 9457 problem+json; an unknown route is a 404 about:blank problem. Problem types: https://toasties-galore.example/problems/<name>.",
      },
      paths: all,
      components: {
        schemas: { ...schemas, ...this.extraSchemas },
        headers: { ...headers, ...this.extraHeaders },
        securitySchemes: {
          adminToken: {
            type: "http",
            scheme: "bearer",
            description: "CHILLYBIN_ADMIN_TOKEN, when it is set.",
          },
        },
      },
    };
  }
}

/** Mounted by tpi for GET only; any other method falls through to its 404. */
const PROBES = new Set(["/health", "/ready", "/metrics"]);
const METHODS = ["get", "put", "post", "delete", "patch"] as const;
