import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { ErrorRequestHandler, RequestHandler, Response } from "express";
import type { Logger } from "./logger";

export interface ProblemOptions {
  detail?: string;
  /** A URI naming the kind of problem; about:blank (RFC 9457's default) when absent. */
  type?: string;
  headers?: Record<string, string>;
  /** Extra members, e.g. `short: [...]` naming the ingredients that ran out. */
  extensions?: Record<string, unknown>;
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

/** RFC 9110's phrases where node's differ (413 is "Payload Too Large" in Node 20). */
const PHRASES: Record<number, string> = { 413: "Content Too Large" };
const phrase = (status: number) => PHRASES[status] ?? STATUS_CODES[status] ?? "Error";

/** A generic problem (about:blank): its status's phrase as title, as RFC 9457 says. */
const blank = (status: number, detail: string, headers?: Record<string, string>) =>
  new HttpProblem(status, phrase(status), { detail, ...(headers && { headers }) });

/** A client's 10 KB path is not echoed back in full. */
const capped = (path: string) => (path.length > 256 ? `${path.slice(0, 256)}…` : path);

function send(res: Response, { status, title, options }: HttpProblem): void {
  const body = {
    ...options.extensions,
    type: options.type ?? "about:blank",
    title,
    status,
    detail: options.detail,
    instance: capped(res.req.originalUrl.split("?")[0] ?? ""),
  };
  if (options.headers) res.set(options.headers);
  res.status(status).type("application/problem+json").send(JSON.stringify(body));
}

/** 415 unless the request carries a JSON body (routes that take JSON only). */
export const requireJson: RequestHandler = (req, _res, next) => {
  if (!req.is(["application/json", "application/*+json"])) {
    throw blank(415, "Send the body as JSON with Content-Type: application/json.");
  }
  next();
};

/** 405 with Allow for a path's other methods; mount with app.all(path, …) after the real routes. */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  return (req) => {
    const detail = `${req.method} is not supported here; use ${allowed.join(" or ")}.`;
    throw blank(405, detail, { Allow: allowed.join(", ") });
  };
}

export const notFound: RequestHandler = (req) => {
  throw blank(404, `No route for ${req.method} ${capped(req.path)}.`);
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
export function problemErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpProblem) return send(res, err);
    const known = BODY_ERRORS[String(err?.type)];
    if (known) return send(res, blank(...known));
    // http-errors style 4xx, e.g. the router's URIError for `%ZZ`: the client's fault.
    const status = err?.status;
    if (typeof status === "number" && status >= 400 && status < 500) {
      return send(
        res,
        blank(status, err.expose ? err.message : "The request could not be understood."),
      );
    }
    logger.error({ err, method: req.method, url: req.originalUrl }, "unexpected error");
    send(res, blank(500, "Something went wrong on our side."));
  };
}

/** Requests node's HTTP parser rejects (a NUL in a header, a 20 KB header) get problem+json too. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
  const status =
    err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  const title = phrase(status);
  const body = JSON.stringify({
    type: "about:blank",
    title,
    status,
    detail: "The request is not valid HTTP.",
  });
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
