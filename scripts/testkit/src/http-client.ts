/**
 * The HTTP clients of tests against running services. `actClient`: the request under test, never
 * throws for an answer (status 0 and `error` when none came). `arrangeClient`: setting the scene,
 * throws unless 2xx. Every answer is checked against the service's own GET /openapi.json
 * (OpenAPI 3.1): the status declared for the operation, the content type for that status, a JSON
 * body valid against its schema. A mismatch throws, failing whichever test saw it.
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";

// biome-ignore lint/suspicious/noExplicitAny: a test reads any field of an answer and asserts on it
export type Json = any;
export interface Reply<T = Json> {
  status: number;
  headers: Headers;
  /** Parsed JSON for JSON answers, the text otherwise. */
  body: T;
  text: string;
  contentType: string;
  error?: string;
}
export interface RequestOptions {
  json?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}
type Send = <T = Json>(path: string, options?: RequestOptions) => Promise<Reply<T>>;
export interface Client {
  baseUrl: string;
  get: Send;
  post: Send;
  request<T = Json>(method: string, path: string, options?: RequestOptions): Promise<Reply<T>>;
}

export function actClient(baseUrl: string, defaultHeaders: Record<string, string> = {}): Client {
  void documentOf(baseUrl).catch(() => {}); // read it now, while the service certainly answers
  return client(
    baseUrl,
    async <T>(method: string, path: string, options: RequestOptions = {}): Promise<Reply<T>> => {
      const headers: Record<string, string> = {
        accept: "application/json, */*;q=0.1",
        ...defaultHeaders,
        ...options.headers,
      };
      if (options.json !== undefined) headers["content-type"] ??= "application/json";
      const body = options.json === undefined ? undefined : JSON.stringify(options.json);
      const signal = AbortSignal.timeout(options.timeoutMs ?? 30_000);
      const answer = await fetch(new URL(path, baseUrl), { method, headers, body, signal })
        .then(async (response) => ({ response, text: await response.text() }))
        .catch((e: { name: string; cause?: { code?: string }; message: string }) =>
          e.name === "TimeoutError" ? "TIMEOUT" : (e.cause?.code ?? e.message),
        );
      if (typeof answer === "string") {
        const none = { status: 0, headers: new Headers(), text: "", contentType: "" };
        return { ...none, body: undefined as T, error: answer };
      }
      const { response, text } = answer;
      const contentType = response.headers.get("content-type") ?? "";
      const json = /[/+]json\b/.test(contentType) ? parseJson(text) : undefined;
      const { status } = response;
      await checkAgainstOpenApi(baseUrl, { method, path, status, contentType, text, json });
      return { status, headers: response.headers, body: (json ?? text) as T, text, contentType };
    },
  );
}

export function arrangeClient(
  baseUrl: string,
  defaultHeaders: Record<string, string> = {},
): Client {
  const act = actClient(baseUrl, defaultHeaders);
  return client(baseUrl, async (method, path, options) => {
    const reply = await act.request(method, path, options);
    if (reply.status >= 200 && reply.status <= 299) return reply;
    const what = reply.status ? `${reply.status} ${reply.text.slice(0, 1_000)}` : reply.error;
    throw new Error(`arrange: ${method} ${path} at ${baseUrl} failed: ${what}`);
  });
}

function client(baseUrl: string, request: Client["request"]): Client {
  return {
    baseUrl,
    request,
    get: (path, options) => request("GET", path, options),
    post: (path, options) => request("POST", path, options),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An answer as received: path and query as sent, the parsed body when it is JSON. */
export type Received = Record<"method" | "path" | "contentType" | "text", string> & {
  status: number;
  json?: unknown;
};
type Document = { doc: Json; routes: [string, RegExp][] };
const documents = new Map<string, Promise<Document>>();
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true, logger: false }));
const validators = new Map<Json, ValidateFunction>();
const PROBLEM = { type: "object", required: ["type", "title", "status"] };
/** Answered by the HTTP layer before any route is chosen, so no operation declares them. */
const HTTP_LAYER = [413, 414, 431];

function documentOf(baseUrl: string): Promise<Document> {
  const url = new URL("/openapi.json", baseUrl).href;
  const found =
    documents.get(url) ??
    fetch(url).then(async (response) => {
      const doc: Json = await response.json();
      if (!/^3\.1\./.test(doc.openapi)) throw new Error(`OpenAPI: ${url} is not OpenAPI 3.1`);
      // The most literal template first; express routes are case-insensitive, forgive a trailing /.
      const literal = (t: string) => t.replace(/\{[^}]*\}/g, "").length;
      const templates = Object.keys(doc.paths).sort((a, b) => literal(b) - literal(a));
      const pattern = (t: string) => `^${t.replace(/\{[^}]*\}/g, "[^/]+").replace(/\/$/, "")}/?$`;
      return {
        doc,
        routes: templates.map((t): [string, RegExp] => [t, new RegExp(pattern(t), "i")]),
      };
    });
  documents.set(url, found);
  found.catch(() => documents.delete(url)); // the next answer tries again
  return found;
}

/** Throws when `received` is not what the service's own document declares. */
export async function checkAgainstOpenApi(baseUrl: string, received: Received): Promise<void> {
  if (received.status === 0) return;
  const problem = mismatch(await documentOf(baseUrl), received);
  if (!problem) return;
  const { method, path, status, contentType, text } = received;
  const what = `${method} ${new URL(path, baseUrl).href} → ${status} ${contentType}`;
  throw new Error(`OpenAPI mismatch: ${what}: ${problem}\n${text.slice(0, 600)}`);
}

function mismatch({ doc, routes }: Document, received: Received): string | undefined {
  const { status, text, json } = received;
  const pathname = received.path.split("?")[0] as string;
  const [template] = routes.find(([, pattern]) => pattern.test(pathname)) ?? [];
  const method = received.method.toLowerCase();
  const item = template ? doc.paths[template] : {};
  // express answers HEAD with the GET route's handler, unless HEAD is refused (then: a problem).
  const fallback = method === "head" && status < 400 ? item.get : undefined;
  const op = /^(get|put|post|delete|patch|head)$/.test(method)
    ? (item[method] ?? fallback)
    : undefined;
  const type = received.contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  const invalid = (schema: Json) => {
    if (text === "" || json === undefined) return undefined;
    const validate =
      validators.get(schema) ?? ajv.compile({ ...schema, components: doc.components });
    validators.set(schema, validate);
    return validate(json)
      ? undefined
      : `body: ${ajv.errorsText(validate.errors, { dataVar: "body" })}`;
  };
  const problem = () =>
    text === "" || type === "application/problem+json" ? invalid(PROBLEM) : "not a problem";
  const key = [`${status}`, `${`${status}`[0]}XX`, "default"].find((k) => op?.responses?.[k]);
  if (!op && status >= 400 && status < 500) return problem(); // no such route or method
  if (!key)
    return HTTP_LAYER.includes(status)
      ? problem()
      : `status ${status} is not declared for ${method} ${template ?? pathname}`;
  const response = op.responses[key];
  const content =
    (response.$ref ? doc.components.responses[response.$ref.split("/").pop()] : response).content ??
    {};
  if (text === "" && (type === "" || Object.keys(content).length === 0)) return undefined;
  const declared = [type, `${type.split("/")[0]}/*`, "*/*"].find((t) => content[t]);
  if (!declared) return `content type ${type || "(none)"} is not declared for ${key}`;
  return /json$/.test(type) && content[declared].schema
    ? invalid(content[declared].schema)
    : undefined;
}
