/**
 * Every answer the integration tests receive is checked against the answering service's own
 * OpenAPI 3.1 description (`GET /openapi.json`), so the description cannot drift from the code:
 * the status must be declared for the operation, the content type declared for that status, and
 * a JSON body must match the declared schema. Answers that are not JSON (the stall page's HTML,
 * an event stream, plain-text metrics or v1's `ok`) are checked for status and content type only.
 *
 * The HTTP clients call `checkAgainstOpenApi` on every answer; a mismatch throws, so it fails the
 * test that received the answer, whatever that test was about.
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";

export interface Received {
  method: string;
  /** Path and query as requested, e.g. "/pick?name=cheese". */
  path: string;
  status: number;
  /** The Content-Type header, "" when there was none. */
  contentType: string;
  text: string;
  /** The parsed body when it is JSON, else undefined. */
  json?: unknown;
}

export class OpenApiMismatch extends Error {
  override name = "OpenApiMismatch";
}

/**
 * Statuses the HTTP layer may answer before any route is chosen (a request line, headers or body
 * too large). They belong to no operation, so an operation need not declare them; the answer must
 * still be a problem.
 */
const HTTP_LAYER_STATUSES = new Set([413, 414, 431]);

/** What any problem answer is (RFC 9457), for answers that belong to no declared operation. */
const PROBLEM_SCHEMA = {
  type: "object",
  required: ["type", "title", "status"],
  properties: {
    type: { type: "string" },
    title: { type: "string" },
    status: { type: "integer" },
    detail: { type: "string" },
    instance: { type: "string" },
  },
};

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
const DOC_ID = "openapi.json";
const FETCH_TIMEOUT_MS = 10_000;

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is walked as plain JSON
type Json = any;

export interface Described {
  doc: Json;
  ajv: Ajv2020;
  validators: Map<string, ValidateFunction>;
  /** Path templates, most literal first, as an OpenAPI tool must match them. */
  routes: { template: string; pattern: RegExp; literal: number }[];
}

const described = new Map<string, Promise<Described>>();

/**
 * Starts reading the description of the service at `baseUrl` now, while it certainly answers, so
 * an answer received later (say, during its shutdown) can still be checked.
 */
export function prefetchOpenApi(baseUrl: string): void {
  describedBy(baseUrl).catch(() => {
    // reported by the first check that needs it
  });
}

/** Throws OpenApiMismatch when `received` is not what the service's description says. */
export async function checkAgainstOpenApi(baseUrl: string, received: Received): Promise<void> {
  if (received.status === 0) return; // no answer: nothing to check
  const service = await describedBy(baseUrl);
  const problem = mismatch(service, received);
  if (problem) {
    const body = received.text.length > 600 ? `${received.text.slice(0, 600)}…` : received.text;
    throw new OpenApiMismatch(
      `${new URL(baseUrl).origin} ${received.method} ${received.path} → ${received.status} ${received.contentType || "(no content type)"}: ${problem} (checked against ${new URL(DOC_ID, baseUrl).href})\n${body}`,
    );
  }
}

function describedBy(baseUrl: string): Promise<Described> {
  const origin = new URL(baseUrl).origin;
  let found = described.get(origin);
  if (!found) {
    found = load(origin);
    described.set(origin, found);
    // A failed read is not remembered: the next answer from that service tries again.
    found.catch(() => described.delete(origin));
  }
  return found;
}

async function load(origin: string): Promise<Described> {
  const url = `${origin}/${DOC_ID}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch (error) {
    throw new OpenApiMismatch(`cannot read ${url} to check answers against: ${String(error)}`);
  }
  if (response.status !== 200) {
    throw new OpenApiMismatch(
      `${url} answered ${response.status}: every service must describe itself there`,
    );
  }
  const doc = (await response.json()) as Json;
  if (typeof doc?.openapi !== "string" || !doc.openapi.startsWith("3.1")) {
    throw new OpenApiMismatch(
      `${url} is not an OpenAPI 3.1 document (openapi: ${JSON.stringify(doc?.openapi)})`,
    );
  }
  return describe(doc);
}

/** Ready-to-check form of an OpenAPI 3.1 document. */
export function describe(doc: Json): Described {
  // The whole document is registered as one schema, so a response schema is compiled as a
  // reference into it and its `#/components/schemas/…` references resolve as they are written.
  // Not strict: OpenAPI adds keywords of its own (example, discriminator, xml, …).
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false, logger: false });
  addFormats(ajv);
  ajv.addSchema(doc, DOC_ID);
  const routes = Object.keys(doc.paths ?? {})
    .map((template) => ({
      template,
      pattern: templatePattern(template),
      literal: template.replace(/\{[^}]*\}/g, "").length,
    }))
    .sort((a, b) => b.literal - a.literal);
  return { doc, ajv, validators: new Map(), routes };
}

/** `/orders/{id}` → /^\/orders\/[^/]+\/?$/i: express routes are case-insensitive and forgive one trailing slash. */
function templatePattern(template: string): RegExp {
  const source = template
    .split(/(\{[^}]*\})/)
    .map((part) => (part.startsWith("{") ? "[^/]+" : part.replace(/[.*+?^$()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source.replace(/\/$/, "")}/?$`, "i");
}

/** What is wrong with `received`, or undefined when it is what the description says. */
export function mismatch(service: Described, received: Received): string | undefined {
  const method = received.method.toLowerCase();
  // As sent, not as a URL parser would normalise it ("//x" is a path here, not a host).
  const pathname = received.path.split("?")[0] ?? "";
  const route = service.routes.find((r) => r.pattern.test(pathname));
  const pathPointer = route ? `/paths/${segment(route.template)}` : undefined;
  const pathItem = route ? service.doc.paths[route.template] : undefined;
  // express answers HEAD with the GET handler (and no body) unless HEAD has a route of its own.
  const declares = (m: string) =>
    (METHODS as readonly string[]).includes(m) &&
    pathItem !== undefined &&
    Object.hasOwn(pathItem, m);
  const operationMethod = declares(method)
    ? method
    : method === "head" && declares("get")
      ? "get"
      : undefined;
  const noBody = method === "head" || received.status === 204 || received.status === 304;

  if (!operationMethod || !pathPointer) {
    // No operation: only an error about the request itself (unknown route, method not allowed…).
    if (received.status < 400 || received.status > 499) {
      return `no operation is declared for ${received.method} ${pathname}, yet the answer is not a 4xx`;
    }
    return problemMismatch(service, received, noBody);
  }

  const responsesPointer = `${pathPointer}/${operationMethod}/responses`;
  const responses = resolve(service.doc, responsesPointer);
  const status = String(received.status);
  const key = [status, `${status[0]}XX`, "default"].find((k) => responses.value?.[k] !== undefined);
  if (key === undefined) {
    if (HTTP_LAYER_STATUSES.has(received.status)) return problemMismatch(service, received, noBody);
    const declared = Object.keys(responses.value ?? {}).join(", ") || "none";
    return `status ${status} is not declared for ${operationMethod.toUpperCase()} ${route?.template} (declared: ${declared})`;
  }
  const response = resolve(service.doc, `${responses.pointer}/${segment(key)}`);
  const content: Json = response.value?.content;
  const mediaType = received.contentType.split(";")[0]?.trim().toLowerCase() ?? "";

  if (content === undefined || Object.keys(content).length === 0) {
    return received.text.length > 0 && !noBody
      ? `the ${key} response declares no content, yet the answer has a ${mediaType || "typeless"} body`
      : undefined;
  }
  if (mediaType === "") {
    return noBody && received.text.length === 0
      ? undefined
      : `the answer has no Content-Type; declared: ${Object.keys(content).join(", ")}`;
  }
  const declaredType = [mediaType, `${mediaType.split("/")[0]}/*`, "*/*"].find((t) =>
    Object.keys(content).some((k) => k.toLowerCase() === t),
  );
  if (declaredType === undefined) {
    return `content type ${mediaType} is not declared for ${key} (declared: ${Object.keys(content).join(", ")})`;
  }
  if (noBody || !isJson(mediaType)) return undefined;
  const contentKey = Object.keys(content).find((k) => k.toLowerCase() === declaredType) as string;
  if (content[contentKey]?.schema === undefined) return undefined;
  const schemaPointer = `${response.pointer}/content/${segment(contentKey)}/schema`;
  return bodyMismatch(service, schemaPointer, received);
}

/** An answer that belongs to no declared operation must at least be a well-formed problem. */
function problemMismatch(
  service: Described,
  received: Received,
  noBody: boolean,
): string | undefined {
  if (noBody && received.text.length === 0) return undefined;
  if (!/^application\/problem\+json\b/i.test(received.contentType)) {
    return `an error outside any declared operation must be application/problem+json`;
  }
  let validate = service.validators.get("problem");
  if (!validate) {
    validate = service.ajv.compile(PROBLEM_SCHEMA);
    service.validators.set("problem", validate);
  }
  if (!validate(received.json))
    return `not a problem: ${service.ajv.errorsText(validate.errors, { dataVar: "body" })}`;
  if ((received.json as { status: number }).status !== received.status) {
    return `the problem's status ${(received.json as { status: number }).status} is not the HTTP status`;
  }
  return undefined;
}

function bodyMismatch(
  service: Described,
  schemaPointer: string,
  received: Received,
): string | undefined {
  if (received.json === undefined) return "the body is not valid JSON";
  let validate = service.validators.get(schemaPointer);
  if (!validate) {
    // As a URI fragment the pointer is percent-encoded: `{id}` in a path template becomes `%7Bid%7D`.
    const fragment = schemaPointer.split("/").map(encodeURIComponent).join("/");
    validate = service.ajv.compile({ $ref: `${DOC_ID}#${fragment}` });
    service.validators.set(schemaPointer, validate);
  }
  if (validate(received.json)) return undefined;
  return `the body does not match #${schemaPointer}: ${service.ajv.errorsText(validate.errors, { dataVar: "body" })}`;
}

/** Follows `$ref`s ("#/components/responses/…") so a reused response is found where it is defined. */
function resolve(doc: Json, pointer: string): { value: Json; pointer: string } {
  let at = pointer;
  let value = get(doc, at);
  for (let hops = 0; typeof value?.$ref === "string" && hops < 10; hops++) {
    if (!value.$ref.startsWith("#/"))
      throw new OpenApiMismatch(`external $ref ${value.$ref} is not supported`);
    at = value.$ref.slice(1);
    value = get(doc, at);
  }
  return { value, pointer: at };
}

function get(doc: Json, pointer: string): Json {
  return pointer
    .split("/")
    .slice(1)
    .reduce((node, part) => node?.[part.replaceAll("~1", "/").replaceAll("~0", "~")], doc);
}

/** A JSON Pointer segment (RFC 6901). */
function segment(name: string): string {
  return name.replaceAll("~", "~0").replaceAll("/", "~1");
}

function isJson(mediaType: string): boolean {
  return /^application\/([\w.-]+\+)?json$/.test(mediaType);
}
