import { DONENESS } from "./grill";
import { stallPageHtmlContent, stallPagePaths, stallPageRootHeaders } from "./page/openapi";
import { PROBLEM_TYPES } from "./problems";
import { LEGACY_DEPRECATED_AT, LEGACY_SUNSET_AT } from "./toastie-get";

/**
 * jafflr's HTTP API as OpenAPI 3.1, served at `GET /openapi.json`. The integration tests check
 * every answer they receive against it, and jafflr's own test checks every mounted route is in
 * it, so it cannot drift from the code. The stall page (src/page/) adds its routes here.
 */

const problem = (status: number, types: string[], description: string) => ({
  description,
  content: {
    "application/problem+json": {
      schema: {
        allOf: [
          { $ref: "#/components/schemas/Problem" },
          {
            properties: {
              type: { enum: types },
              status: { const: status },
            },
          },
        ],
      },
    },
  },
});

const retryAfter = {
  "Retry-After": {
    description: "Seconds to wait before trying again.",
    schema: { type: "string", pattern: "^[0-9]+$" },
  },
};

const deprecationHeaders = {
  Deprecation: {
    description: "RFC 9745: deprecated since this time (`@` Unix seconds).",
    schema: { type: "string", example: `@${Math.floor(LEGACY_DEPRECATED_AT.getTime() / 1000)}` },
  },
  Sunset: {
    description: "RFC 8594: the legacy form may stop working after this date.",
    schema: { type: "string", example: LEGACY_SUNSET_AT.toUTCString() },
  },
  Link: {
    description: 'The successor: `</toastie>; rel="successor-version"` (POST /toastie).',
    schema: { type: "string" },
  },
  "Cache-Control": {
    description: "`no-store`: a GET that changes state must not be cached or replayed.",
    schema: { type: "string", const: "no-store" },
  },
};

const BLANK = "about:blank";

/** What a toastie can answer, besides 200; the same for POST and the legacy GET. */
const toastieFailures = {
  "400": problem(
    400,
    [PROBLEM_TYPES.invalidRequest, BLANK],
    "invalid-request: the order or the Idempotency-Key is not valid (`errors` says where and why); about:blank for malformed JSON. Nothing was picked.",
  ),
  "409": problem(
    409,
    [PROBLEM_TYPES.outOfStock],
    "out-of-stock: not enough of an ingredient (`short`). With v1, `taken` lists what was already picked (v1 is not atomic).",
  ),
  "413": problem(413, [BLANK], "The body is larger than 16 KiB."),
  "415": problem(415, [BLANK], "A body that is not JSON."),
  "422": problem(
    422,
    [
      PROBLEM_TYPES.unknownIngredient,
      PROBLEM_TYPES.idempotencyKeyReused,
      PROBLEM_TYPES.orderRejected,
    ],
    "unknown-ingredient: the cold store does not stock it (`unknown`); idempotency-key-reused: the key was used for a different order; order-rejected: chillybin refused the pick for another reason.",
  ),
  "500": problem(500, [BLANK], "Something went wrong inside jafflr (never expected)."),
  "502": problem(
    502,
    [PROBLEM_TYPES.coldStoreError],
    "cold-store-error: chillybin answered something jafflr cannot use. Nothing was cooked.",
  ),
  "503": {
    ...problem(
      503,
      [PROBLEM_TYPES.grillBusy, PROBLEM_TYPES.coldStoreUnavailable],
      "grill-busy: every slot and the queue are full; cold-store-unavailable: chillybin is down, overloaded or too slow. Try again after Retry-After.",
    ),
    headers: retryAfter,
  },
};

const idempotencyKey = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "Exactly one, 1-255 visible ASCII characters (a UUID is ideal). The same key makes a retried toastie pick once (v2); without one, jafflr makes one per toastie.",
  schema: { type: "string", pattern: "^[\\x21-\\x7e]{1,255}$" },
};

const queryOrder = (required: boolean) => [
  {
    name: "i",
    in: "query",
    required,
    description:
      "An ingredient, repeated in order (`?i=cheese&i=vegemite`); cheese or sheese is a must.",
    style: "form",
    explode: true,
    schema: {
      type: "array",
      items: { $ref: "#/components/schemas/IngredientName" },
      minItems: 1,
      maxItems: 10,
    },
  },
  {
    name: "customer",
    in: "query",
    required: false,
    schema: { $ref: "#/components/schemas/Customer" },
  },
  {
    name: "doneness",
    in: "query",
    required: false,
    schema: { $ref: "#/components/schemas/Doneness" },
  },
];

const toastieDone = {
  description: "Toasted.",
  content: { "application/json": { schema: { $ref: "#/components/schemas/Toastie" } } },
};

export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "jafflr",
    version: "1",
    description:
      "The toastie stall: orders toasties, picks their ingredients from chillybin (v1 or v2, as the `pick.v2` flag says per customer) and cooks them. Problems are RFC 9457 problem+json; their types are listed under x-problem-types.",
  },
  "x-problem-types": [
    { type: PROBLEM_TYPES.invalidRequest, status: 400, title: "Invalid request" },
    { type: PROBLEM_TYPES.outOfStock, status: 409, title: "Out of stock" },
    { type: PROBLEM_TYPES.unknownIngredient, status: 422, title: "Unknown ingredient" },
    { type: PROBLEM_TYPES.idempotencyKeyReused, status: 422, title: "Idempotency-Key reused" },
    { type: PROBLEM_TYPES.orderRejected, status: 422, title: "Order rejected" },
    { type: PROBLEM_TYPES.coldStoreError, status: 502, title: "Cold store error" },
    { type: PROBLEM_TYPES.grillBusy, status: 503, title: "Grill busy" },
    { type: PROBLEM_TYPES.coldStoreUnavailable, status: 503, title: "Cold store unavailable" },
  ],
  paths: {
    "/": {
      get: {
        summary: "The stall's status: the grill, and whether chillybin is reachable.",
        description:
          "A browser (an Accept that prefers text/html) gets Gita's stall page instead; curl's `*/*`, `application/json` and no Accept get the JSON status.",
        responses: {
          "200": {
            description: "Status, or the stall page.",
            headers: stallPageRootHeaders,
            content: {
              "application/json": { schema: { $ref: "#/components/schemas/Status" } },
              ...stallPageHtmlContent,
            },
          },
        },
      },
    },
    ...stallPagePaths,
    "/toastie": {
      post: {
        summary: "Order a toastie.",
        description:
          "The order is a JSON body or, as the original stall took it, the query string — not both. Answered once it is cooked.",
        parameters: [idempotencyKey, ...queryOrder(false)],
        requestBody: {
          required: false,
          content: {
            "application/json": { schema: { $ref: "#/components/schemas/ToastieOrder" } },
          },
        },
        responses: { "200": toastieDone, ...toastieFailures },
      },
      get: {
        summary: "Order a toastie the original's way (deprecated; use POST /toastie).",
        deprecated: true,
        parameters: [idempotencyKey, ...queryOrder(true)],
        responses: {
          "200": { ...toastieDone, headers: deprecationHeaders },
          ...Object.fromEntries(
            // A GET body is never read, so never refused for its media type.
            Object.entries(toastieFailures)
              .filter(([status]) => status !== "415")
              .map(([status, response]) => [
                status,
                {
                  ...response,
                  headers: {
                    ...deprecationHeaders,
                    ...("headers" in response ? response.headers : {}),
                  },
                },
              ]),
          ),
        },
      },
      head: {
        summary:
          "The legacy form's headers only: never reads the order, never toasts (deprecated).",
        deprecated: true,
        responses: { "200": { description: "No body.", headers: deprecationHeaders } },
      },
    },
    "/health": {
      get: {
        summary: "Liveness: the process serves. Never touches chillybin.",
        responses: {
          "200": {
            description: "Alive.",
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["status", "service", "version"],
                  properties: {
                    status: { const: "ok" },
                    service: { const: "jafflr" },
                    version: { type: "string" },
                  },
                },
              },
            },
          },
        },
      },
    },
    "/ready": {
      get: {
        summary:
          "Readiness: this instance can do useful work (not draining). Does not depend on chillybin: while it is down toasties answer 503 problems.",
        responses: {
          "200": {
            description: "Ready.",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Readiness" } } },
          },
          "503": {
            description: "Shutting down.",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Readiness" } } },
          },
        },
      },
    },
    "/metrics": {
      get: {
        summary: "Prometheus metrics.",
        responses: {
          "200": { description: "Prometheus text format.", content: { "text/plain": {} } },
        },
      },
    },
    "/openapi.json": {
      get: {
        summary: "This description.",
        responses: {
          "200": { description: "OpenAPI 3.1.", content: { "application/json": {} } },
        },
      },
    },
  },
  components: {
    schemas: {
      Problem: {
        type: "object",
        description: "RFC 9457 problem details.",
        required: ["type", "title", "status"],
        properties: {
          type: { type: "string" },
          title: { type: "string" },
          status: { type: "integer" },
          detail: { type: "string" },
          instance: { type: "string" },
          errors: {
            description: "invalid-request: what is wrong and where (at most 20).",
            type: "array",
            maxItems: 20,
            items: {
              oneOf: [
                {
                  type: "object",
                  required: ["pointer", "detail"],
                  additionalProperties: false,
                  properties: { pointer: { type: "string" }, detail: { type: "string" } },
                },
                {
                  type: "object",
                  required: ["parameter", "detail"],
                  additionalProperties: false,
                  properties: { parameter: { type: "string" }, detail: { type: "string" } },
                },
                {
                  type: "object",
                  required: ["header", "detail"],
                  additionalProperties: false,
                  properties: { header: { type: "string" }, detail: { type: "string" } },
                },
              ],
            },
          },
          short: {
            description: "out-of-stock: what was short.",
            type: "array",
            items: {
              type: "object",
              required: ["ingredient"],
              properties: {
                ingredient: { type: "string" },
                requested: { type: "integer" },
                available: { type: "integer" },
              },
            },
          },
          unknown: {
            description: "unknown-ingredient: what the cold store does not stock.",
            type: "array",
            items: { type: "string" },
          },
          taken: {
            description:
              "v1 only: ingredients already picked before the failure (they stay taken).",
            type: "array",
            items: { type: "string" },
          },
          failedAt: { description: "v1 only: the ingredient whose pick failed.", type: "string" },
        },
      },
      IngredientName: { type: "string", pattern: "^[a-z][a-z0-9_-]{0,31}$" },
      Customer: {
        type: "string",
        description:
          "1-64 Unicode code points, no leading or trailing whitespace, no control, format or separator characters except the zero-width joiner (👩‍🍳 is fine). Defaults to `anonymous`.",
        minLength: 1,
        maxLength: 64,
      },
      Doneness: { type: "string", enum: [...DONENESS], default: "light" },
      ToastieOrder: {
        type: "object",
        required: ["ingredients"],
        additionalProperties: false,
        properties: {
          ingredients: {
            type: "array",
            items: { $ref: "#/components/schemas/IngredientName" },
            minItems: 1,
            maxItems: 10,
            description: "Without the bread (two slices are added); cheese or sheese is a must.",
          },
          doneness: { $ref: "#/components/schemas/Doneness" },
          customer: { $ref: "#/components/schemas/Customer" },
        },
      },
      Toastie: {
        type: "object",
        required: ["status", "customer", "ingredients", "doneness", "pickedVia"],
        additionalProperties: false,
        properties: {
          status: { const: "done" },
          customer: { type: "string" },
          ingredients: { type: "array", items: { type: "string" }, description: "With the bread." },
          doneness: { $ref: "#/components/schemas/Doneness" },
          pickedVia: { enum: ["v1", "v2"] },
          orderId: { type: "string", description: "chillybin's order id (v2 only)." },
        },
      },
      Status: {
        type: "object",
        required: ["toasting", "waiting", "slots", "version", "chillybin"],
        properties: {
          toasting: { type: "integer", minimum: 0 },
          waiting: { type: "integer", minimum: 0 },
          slots: { type: "integer", minimum: 1 },
          version: { type: "string" },
          chillybin: {
            type: "object",
            required: ["reachable", "checkedAt"],
            additionalProperties: false,
            properties: {
              reachable: { type: "boolean" },
              checkedAt: { type: ["string", "null"], format: "date-time" },
              reason: { type: "string", description: "Why it cannot be reached, while it cannot." },
            },
          },
        },
      },
      Readiness: {
        type: "object",
        required: ["status", "checks"],
        properties: {
          status: { enum: ["ready", "unavailable"] },
          checks: { type: "object", additionalProperties: { type: "string" } },
        },
      },
    },
  },
};
