/**
 * Every problem chillybin answers with, one zod schema each (docs/api.md lists them), and
 * GET /openapi.json: each route module registers its part when it loads, so deleting v1's deletes it.
 */
import {
  HttpProblem,
  INVALID_REQUEST,
  OpenAPIRegistry,
  openApiDocument,
  registerTpiRoutes,
  z,
} from "tpi";

export const registry = new OpenAPIRegistry();
type Route = Parameters<typeof registry.registerPath>[0];

/** One operation's description: "METHOD /path", its operationId and summary, then the rest. */
export function route(at: string, operationId: string, summary: string, rest: Partial<Route>) {
  const [method, path] = at.split(" ") as [string, string];
  const lower = method.toLowerCase() as Route["method"];
  registry.registerPath({ responses: {}, method: lower, path, operationId, summary, ...rest });
}

/** A kind of problem: its schema, the one place of its type, title and status (`.example`: RFC 2606). */
export const problem = <E extends z.ZodRawShape>(
  status: number,
  title: string,
  extensions?: E,
  type = `https://toasties-galore.example/problems/${title.toLowerCase().replaceAll(" ", "-")}`,
) =>
  z
    .object({ type: z.literal(type), title: z.literal(title), status: z.literal(status) })
    .extend({ detail: z.string().optional(), instance: z.string().optional(), ...extensions })
    .openapi(title.replace(/(^|[ -])(.)/g, (_, _s, c: string) => c.toUpperCase()));

type Kind = { shape: Record<"type" | "title" | "status", { value: unknown }> };
type More = { headers?: Record<string, string>; extensions?: Record<string, unknown> };

/** The HttpProblem of a kind: type, title and status from its schema. */
export function fail({ shape: s }: Kind, detail: string, more: More = {}) {
  const options = { ...more, type: String(s.type.value), detail };
  return new HttpProblem(Number(s.status.value), String(s.title.value), options);
}

export const shortage = z.array(
  z.object({ ingredient: z.string(), requested: z.number().int(), available: z.number().int() }),
);
export type Shortage = z.infer<typeof shortage>[number];
/** Where (exactly one of a body pointer, a query or path parameter, a header) and what is wrong. */
const at = (where: string) => z.object({ [where]: z.string(), detail: z.string() });
const errors = z.array(z.union([at("pointer"), at("parameter"), at("header")])).max(20);

export const InvalidRequest = problem(400, "Invalid request", { errors }, INVALID_REQUEST);
const names = z.array(z.string());
export const UnknownIngredient = problem(422, "Unknown ingredient", { unknown: names });
export const OutOfStock = problem(409, "Out of stock", { short: shortage });
export const IdempotencyKeyReused = problem(422, "Idempotency-Key reused");
export const OrderNotFound = problem(404, "Order not found");
export const DatabaseUnavailable = problem(503, "Database unavailable");
export const Unauthorized = problem(401, "Unauthorized");
export const Forbidden = problem(403, "Forbidden");
/** 404, 405, 413, 415, malformed JSON, a full /events: about:blank, titled with the status phrase. */
export const BlankProblem = z
  .looseObject({ type: z.literal("about:blank"), title: z.string(), status: z.number().int() })
  .openapi("BlankProblem");

/** 422: the request is well-formed, the cold store just does not stock these (v1 and v2 alike). */
export const unknownIngredients = (names: string[]) =>
  fail(UnknownIngredient, `The cold store does not stock ${names.join(", ")}.`, {
    extensions: { unknown: names },
  });

export const json = (schema: z.ZodType) => ({ "application/json": { schema } });
type HeaderSchema = { type?: "string"; pattern?: string; const?: string };
export function header(description: string, schema: HeaderSchema = { type: "string" }) {
  return { description, schema };
}

/** A response whose body is one of these problems. */
export function problems(description: string, ...kinds: z.ZodType[]) {
  const schema = kinds.length === 1 ? (kinds[0] as z.ZodType) : z.union(kinds);
  return { description, content: { "application/problem+json": { schema } } };
}
export const unavailable = (description: string, ...kinds: z.ZodType[]) => ({
  ...problems(description, DatabaseUnavailable, ...kinds),
  headers: { "Retry-After": header("Seconds to wait.", { pattern: "^[0-9]+$" }) },
});
const badRequest = problems("Invalid request, or malformed JSON.", InvalidRequest, BlankProblem);
const down = unavailable("The database cannot be reached (or is overloaded).");
export const responses = {
  forQuery: { 400: badRequest, 503: down },
  forJson: {
    400: badRequest,
    413: problems("The body is over 16 KiB.", BlankProblem),
    415: problems("The body is not JSON.", BlankProblem),
    503: down,
  },
};

registerTpiRoutes(registry, "chillybin");
route("GET /openapi.json", "getOpenApi", "This document, OpenAPI 3.1.", {
  responses: { 200: { description: "OpenAPI 3.1.", content: json(z.looseObject({})) } },
});

/** tpi answers these itself, for GET only: any other method is its 404. */
const PROBES = new Set(["/health", "/ready", "/metrics"]);
const BLANK = {
  "application/problem+json": { schema: { $ref: "#/components/schemas/BlankProblem" } },
};
type Operation = { responses: Record<string, { headers?: object }>; deprecated?: boolean };

/**
 * The document. Any other method on a known path is a 405 naming the allowed ones (HEAD too on a
 * deprecated path: it never runs the route), every answer on a deprecated path carries its 200's
 * deprecation headers, and every answer has X-Request-Id.
 */
export function describeApi(version: string) {
  const doc = openApiDocument(registry, {
    title: "chillybin",
    version,
    description:
      "The cold store of Toasties Galore: stock in PostgreSQL, picked by v2 orders (and the deprecated v1 while it lasts). Errors are RFC 9457 problem+json; an unknown route is a 404 about:blank problem.",
  });
  const headers = { Allow: header("The methods this path supports.") };
  const notAllowed = { description: "Method not allowed.", content: BLANK, headers };
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const operations = item as Record<string, Operation>;
    const old = Object.values(operations).find((o) => o.deprecated)?.responses[200]?.headers;
    const others = PROBES.has(path) ? [] : ["get", "put", "post", "delete", "patch"];
    for (const method of old ? [...others, "head"] : others)
      operations[method] ??= {
        ...(old && { deprecated: true }),
        responses: { 405: { ...notAllowed } },
      };
    for (const r of Object.values(operations).flatMap((o) => Object.values(o.responses)))
      r.headers = { ...old, ...r.headers, "X-Request-Id": header("The request's id.") };
  }
  return doc;
}
