import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import * as openapi from "@asteasolutions/zod-to-openapi";
import type { ErrorRequestHandler, RequestHandler, Response } from "express";
import { z } from "zod";
import type { Logger } from "./logger";

openapi.extendZodWithOpenApi(z); // once: every schema made with tpi's `z` takes `.openapi(...)`

export { z };
export interface ProblemOptions {
  detail?: string;
  type?: string; // a URI naming the kind of problem; about:blank (RFC 9457's default) if absent
  headers?: Record<string, string>;
  extensions?: Record<string, unknown>; // extra members, e.g. `short: [...]`
}

/** Throw from any handler to answer with an RFC 9457 problem. */
export class HttpProblem extends Error {
  override name = "HttpProblem";
  constructor(
    readonly status: number,
    readonly title: string,
    readonly options: ProblemOptions = {},
  ) {
    super(options.detail ?? title);
  }
}

/** A generic problem: about:blank, titled by the status's phrase (RFC 9110's 413, not Node 20's). */
const blank = (status: number, detail: string, headers?: Record<string, string>) => {
  const title = status === 413 ? "Content Too Large" : `${STATUS_CODES[status]}`;
  return new HttpProblem(status, title, { detail, headers });
};
/** Never echo a client's 10 KB name or path back in full. */
export const clip = (s: string, max = 40) => (s.length > max ? `${s.slice(0, max)}…` : s);

function send(res: Response, { status, title, options }: HttpProblem): void {
  const { type = "about:blank", detail, headers = {}, extensions } = options;
  const instance = clip(res.req.originalUrl.split("?")[0] ?? "", 256);
  const body = JSON.stringify({ ...extensions, type, title, status, detail, instance });
  res.set(headers).status(status).type("application/problem+json").send(body);
}

export const requireJson: RequestHandler = (req, _res, next) => {
  if (req.is(["application/json", "application/*+json"])) return next();
  throw blank(415, "Send the body as JSON with Content-Type: application/json.");
};
/** 405 with Allow for a path's other methods; mount with app.all(path, …) after the real routes. */
export const methodNotAllowed = (allowed: string[]): RequestHandler => {
  const [use, Allow] = [`use ${allowed.join(" or ")}.`, allowed.join(", ")];
  return (req) =>
    Promise.reject(blank(405, `${req.method} is not supported here; ${use}`, { Allow }));
};
export const notFound: RequestHandler = (req) => {
  throw blank(404, `No route for ${req.method} ${clip(req.path, 256)}.`);
};
/** body-parser's errors carry a `type`: the client's fault, never a 500. */
const BODY_ERRORS: Record<string, [number, string]> = {
  "entity.parse.failed": [400, "The request body is not valid JSON."],
  "entity.too.large": [413, "The request body is larger than 16 KiB."],
  "encoding.unsupported": [415, "Unsupported Content-Encoding."],
  "charset.unsupported": [415, "Unsupported charset; send UTF-8."],
  "request.size.invalid": [400, "Content-Length does not match the body."],
  "request.aborted": [400, "The request was aborted."],
};
/** Anything thrown becomes problem+json; unexpected errors are logged, never shown. */
export const problemErrorHandler =
  (logger: Logger): ErrorRequestHandler =>
  (err, req, res, next) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpProblem) return send(res, err);
    const known = BODY_ERRORS[String(err?.type)];
    if (known) return send(res, blank(...known));
    // http-errors style 4xx, e.g. the router's URIError for `%ZZ`: the client's fault.
    if (err?.status >= 400 && err.status < 500) {
      const detail = err.expose ? err.message : "The request could not be understood.";
      return send(res, blank(err.status, detail));
    }
    logger.error({ err, method: req.method, url: req.originalUrl }, "unexpected error");
    send(res, blank(500, "Something went wrong on our side."));
  };

/** Requests node's HTTP parser rejects (a NUL in a header, a 20 KB header) get problem+json too. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
  const status = { HPE_HEADER_OVERFLOW: 431, ERR_HTTP_REQUEST_TIMEOUT: 408 }[`${err.code}`] ?? 400;
  const { title, options } = blank(status, "The request is not valid HTTP.");
  const body = JSON.stringify({ type: "about:blank", title, status, detail: options.detail });
  const head = `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length`;
  socket.end(`${head}: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** One thing wrong with a request: where (body pointer, query parameter or header), and why. */
type Where = { pointer: string } | { parameter: string } | { header: string };
export type FieldError = Where & { detail: string };
export const INVALID_REQUEST = "https://toasties-galore.example/problems/invalid-request";
/** 400 listing what is wrong: at most 20 items, so 1000 bad fields get a bounded answer. */
export function invalidRequest(all: FieldError[]): HttpProblem {
  const [errors, type] = [all.slice(0, 20), INVALID_REQUEST];
  const options = { type, detail: errors.map((e) => e.detail).join("; "), extensions: { errors } };
  return new HttpProblem(400, "Invalid request", options);
}

const pointer = (path: PropertyKey[]) =>
  path.map((p) => `/${clip(String(p)).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
/** The parsed input, or a 400 with one item per zod issue; `expected` names the known keys. */
export function parseRequest<T extends z.ZodType>(
  schema: T,
  input: unknown,
  where: "body" | "query",
  expected?: string,
): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const query = where === "query";
  const at = (path: PropertyKey[], detail: string): FieldError =>
    query ? { parameter: clip(String(path[0] ?? "")), detail } : { pointer: pointer(path), detail };
  const unknown = `unknown ${query ? "parameter" : "field"}`;
  const hint = expected ? `; expected ${expected}` : "";
  const errors = result.error.issues.flatMap((issue): FieldError[] => {
    const { path, message } = issue;
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => at([...path, key], `${unknown} "${clip(key)}"${hint}`));
    }
    if (issue.code !== "invalid_key") return [at(path, message)];
    const key = clip(String(path.at(-1) ?? ""));
    return [at(path, `"${key}": ${issue.issues[0]?.message ?? message}`)];
  });
  throw invalidRequest(errors);
}

/** Describes tpi's GET /health, /ready and /metrics in a service's OpenAPI registry. */
export function registerTpiRoutes(registry: openapi.OpenAPIRegistry, service: string) {
  const get = (path: string, summary: string, schema: z.ZodType, type = "application/json") => {
    const ok = { description: summary, content: { [type]: { schema } } };
    const responses = { 200: ok, ...(path === "/ready" && { 503: ok }) };
    registry.registerPath({ method: "get", path, summary, responses });
  };
  const alive = { status: z.literal("ok"), service: z.literal(service), version: z.string() };
  get("/health", "Alive; never asks dependencies.", z.object(alive));
  const checks = z.record(z.string(), z.string());
  const ready = z.object({ status: z.enum(["ready", "unavailable"]), checks });
  get("/ready", "Ready (dependencies answer, not draining) or not.", ready);
  get("/metrics", "Prometheus metrics.", z.string(), "text/plain");
}
type Info = { title: string; version: string; description?: string };
export const openApiDocument = ({ definitions }: openapi.OpenAPIRegistry, info: Info) =>
  new openapi.OpenApiGeneratorV31(definitions).generateDocument({ openapi: "3.1.0", info });
