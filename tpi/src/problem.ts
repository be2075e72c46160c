import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "./logger";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface ProblemOptions {
  detail?: string;
  /** A URI naming the kind of problem; defaults to about:blank as RFC 9457 says. */
  type?: string;
  headers?: Record<string, string>;
  /** Extra members, e.g. `short: [...]` naming the ingredients that ran out. */
  extensions?: Record<string, unknown>;
}

/** Throw from any handler to answer with an RFC 9457 problem. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly title: string;
  readonly options: ProblemOptions;

  constructor(status: number, title: string, options: ProblemOptions = {}) {
    super(options.detail ?? title);
    this.name = "HttpProblem";
    this.status = status;
    this.title = title;
    this.options = options;
  }
}

/**
 * RFC 9110's reason phrases for the statuses tpi answers itself. A problem of type about:blank
 * takes its status's phrase as title (RFC 9457 §4.2.1); written out here because node's table
 * differs between versions (413 is "Payload Too Large" in Node 20, "Content Too Large" in 9110).
 */
const PHRASES: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
};

/** The title of a generic (about:blank) problem with this status. */
function phrase(status: number): string {
  return PHRASES[status] ?? STATUS_CODES[status] ?? "Error";
}

/** A generic HTTP problem: type about:blank, the status phrase as title, a detail saying why. */
function blankProblem(status: number, detail: string, headers?: Record<string, string>) {
  return new HttpProblem(status, phrase(status), { detail, ...(headers ? { headers } : {}) });
}

/** The request path, capped: a client's 10 KB path is not echoed back in full. */
function instanceOf(res: Response): string | undefined {
  const path = res.req?.originalUrl?.split("?")[0];
  return path && path.length > 256 ? `${path.slice(0, 256)}…` : path;
}

export function sendProblem(
  res: Response,
  status: number,
  title: string,
  options: ProblemOptions = {},
): void {
  const body = {
    ...options.extensions,
    type: options.type ?? "about:blank",
    title,
    status,
    ...(options.detail === undefined ? {} : { detail: options.detail }),
    instance: instanceOf(res),
  };
  if (options.headers) res.set(options.headers);
  res.status(status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

/** 415 unless the request carries a JSON body (routes that take JSON only). */
export const requireJson: RequestHandler = (req, _res, next) => {
  if (!req.is(["application/json", "application/*+json"])) {
    throw blankProblem(415, "Send the body as JSON with Content-Type: application/json.");
  }
  next();
};

/** 405 with Allow for a path's other methods; mount with app.all(path, …) after the real routes. */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  return (req, _res) => {
    throw blankProblem(405, `${req.method} is not supported here; use ${allowed.join(" or ")}.`, {
      Allow: allowed.join(", "),
    });
  };
}

export const notFound: RequestHandler = (req) => {
  const path = req.path.length > 256 ? `${req.path.slice(0, 256)}…` : req.path;
  throw blankProblem(404, `No route for ${req.method} ${path}.`);
};

/** body-parser / raw-body errors carry a `type`; they are the client's fault, never a 500. */
const BODY_ERRORS: Record<string, [number, string]> = {
  "entity.parse.failed": [400, "The request body is not valid JSON."],
  "entity.too.large": [413, "The request body is larger than 16 KiB."],
  "encoding.unsupported": [415, "Unsupported Content-Encoding."],
  "charset.unsupported": [415, "Unsupported charset; send UTF-8."],
  "request.size.invalid": [400, "Content-Length does not match the body."],
  "request.aborted": [400, "The request was aborted."],
};

/** Maps anything thrown into a problem+json response; unexpected errors are logged, never shown. */
export function problemErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpProblem) return sendProblem(res, err.status, err.title, err.options);
    const bodyError = BODY_ERRORS[(err as { type?: string })?.type ?? ""];
    if (bodyError)
      return sendProblem(res, bodyError[0], phrase(bodyError[0]), { detail: bodyError[1] });
    // http-errors style (status 4xx), e.g. the router's URIError for an undecodable `%ZZ` param:
    // the client's fault, whether or not the thrower marked it `expose`.
    const status = (err as { status?: unknown })?.status;
    if (typeof status === "number" && status >= 400 && status < 500) {
      return sendProblem(res, status, phrase(status), {
        detail: (err as { expose?: boolean }).expose
          ? (err as Error).message
          : "The request could not be understood.",
      });
    }
    logger.error({ err, method: req.method, url: req.originalUrl }, "unexpected error");
    sendProblem(res, 500, phrase(500), { detail: "Something went wrong on our side." });
  };
}

/**
 * Requests node's HTTP parser rejects before express sees them (a NUL in a header, a 20 KB header,
 * a bad chunk size) still get a problem+json answer instead of node's bare 400.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
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
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
