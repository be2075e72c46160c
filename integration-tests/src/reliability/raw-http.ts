/**
 * HTTP as the wire sees it, for the reliability suite: `send` (node:http, one connection per
 * request unless an agent is given) and `sendRaw` (bytes written to a TCP socket, for what
 * node:http refuses to send: NUL bytes, bare CR, Latin-1 in headers, broken framing). Neither
 * throws for what happened on the wire: no answer is `status: 0` with the socket error's code, so
 * a test asserts on what happened instead of crashing. `send` checks every answer against the
 * service's `GET /openapi.json` (testkit/openapi) and throws when the answer breaks it; `sendRaw`
 * does not, since a request it sends need not be one HTTP can describe.
 */
import http from "node:http";
import net from "node:net";
import { checkAgainstOpenApi } from "testkit/openapi";

export interface RawReply {
  /** 0 when no HTTP answer arrived (see `error`). */
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  text: string;
  /** The parsed body when it is JSON (application/json or +json), else undefined. */
  // biome-ignore lint/suspicious/noExplicitAny: a test reads any field of an answer and asserts on it
  json?: any;
  /** e.g. "ECONNREFUSED", "ECONNRESET" (before any answer), "RESPONSE_ABORTED" (mid-answer), "TIMEOUT". */
  error?: string;
  /** performance.now() when the request was started, its bytes were all written, and it ended. */
  startedAt: number;
  sentAt?: number;
  endedAt: number;
}

export interface SendOptions {
  method?: string;
  /** Path with query string, sent as is. */
  path: string;
  /** An object, or [name, value] pairs (repeat a name to send it twice). */
  headers?: Record<string, string> | [string, string][];
  body?: string | Buffer;
  /** Default: a fresh connection per request (`Connection: close`). */
  agent?: http.Agent | false;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export async function send(baseUrl: string, options: SendOptions): Promise<RawReply> {
  const reply = await sendUnchecked(baseUrl, options);
  await checkAgainstOpenApi(baseUrl, {
    method: options.method ?? "GET",
    path: options.path,
    status: reply.status,
    contentType: reply.headers["content-type"] ?? "",
    text: reply.text,
    json: reply.json,
  });
  return reply;
}

function sendUnchecked(baseUrl: string, options: SendOptions): Promise<RawReply> {
  const startedAt = performance.now();
  const url = new URL(baseUrl);
  return new Promise<RawReply>((resolve) => {
    let sentAt: number | undefined;
    let settled = false;
    const done = (reply: Omit<RawReply, "startedAt" | "sentAt" | "endedAt">) => {
      if (settled) return;
      settled = true;
      resolve({ ...reply, startedAt, sentAt, endedAt: performance.now() });
    };
    const failed = (error: string) => done({ status: 0, headers: {}, text: "", error });
    let request: http.ClientRequest;
    try {
      request = http.request({
        host: url.hostname,
        port: url.port,
        method: options.method ?? "GET",
        path: options.path,
        headers: toHeaderList(options.method ?? "GET", options.headers, options.body, url.host),
        agent: options.agent ?? false,
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      });
    } catch (error) {
      // node:http refused to build the request (e.g. an invalid character): a test bug, not an answer.
      throw new Error(
        `send: node:http cannot send ${options.method ?? "GET"} ${options.path}; use sendRaw: ${(error as Error).message}`,
      );
    }
    request.once("finish", () => {
      sentAt = performance.now();
    });
    request.once("timeout", () => {
      request.destroy(Object.assign(new Error("timed out"), { code: "TIMEOUT" }));
    });
    request.once("error", (error: NodeJS.ErrnoException) => failed(error.code ?? error.message));
    request.once("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.once("error", (error: NodeJS.ErrnoException) => failed(error.code ?? error.message));
      // Cut off after the answer had begun: not the same as never having been answered.
      response.once("aborted", () => failed("RESPONSE_ABORTED"));
      response.once("end", () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(response.headers)) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
        }
        const text = Buffer.concat(chunks).toString("utf8");
        done({ status: response.statusCode ?? 0, headers, text, json: parseJson(headers, text) });
      });
    });
    request.end(options.body);
  });
}

/**
 * Node's header list. Given as a list node adds no Host of its own, so it is added here (a test
 * that wants none uses sendRaw). A body gets a Content-Length unless the caller framed it; a
 * POST/PUT/PATCH without one says `Content-Length: 0` as curl and fetch do (node:http would
 * otherwise send an empty chunked body, which is a body as far as HTTP is concerned).
 */
function toHeaderList(
  method: string,
  headers: SendOptions["headers"],
  body: SendOptions["body"],
  host: string,
): string[] {
  const list: [string, string][] = Array.isArray(headers)
    ? [...headers]
    : Object.entries(headers ?? {});
  const named = (name: string) => list.some(([n]) => n.toLowerCase() === name);
  if (!named("host")) list.unshift(["Host", host]);
  const framed = named("content-length") || named("transfer-encoding");
  if (body !== undefined && !framed) {
    list.push(["Content-Length", String(Buffer.byteLength(body))]);
  } else if (body === undefined && !framed && /^(POST|PUT|PATCH)$/i.test(method)) {
    list.push(["Content-Length", "0"]);
  }
  // node:http takes a flat [name, value, name, value…] array for repeated names.
  return list.flat();
}

/**
 * Writes `bytes` to a fresh TCP connection and reads until the server closes it (send
 * `Connection: close`), or `timeoutMs`. Parses the first response only.
 */
export function sendRaw(
  baseUrl: string,
  bytes: string | Buffer,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<RawReply> {
  const startedAt = performance.now();
  const url = new URL(baseUrl);
  return new Promise<RawReply>((resolve) => {
    const chunks: Buffer[] = [];
    let sentAt: number | undefined;
    let error: string | undefined;
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    socket.setTimeout(timeoutMs, () => {
      error = "TIMEOUT";
      socket.destroy();
    });
    socket.once("connect", () => {
      socket.write(bytes, () => {
        sentAt = performance.now();
      });
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.once("error", (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message;
    });
    socket.once("close", () => {
      const parsed = parseResponse(Buffer.concat(chunks));
      resolve({
        ...(parsed ?? { status: 0, headers: {}, text: "" }),
        ...(parsed ? {} : { error: error ?? "no HTTP response" }),
        startedAt,
        sentAt,
        endedAt: performance.now(),
      });
    });
  });
}

function parseResponse(
  data: Buffer,
): Omit<RawReply, "startedAt" | "sentAt" | "endedAt"> | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? 0);
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = data.subarray(end + 4);
  const length = Number(headers["content-length"]);
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = dechunk(body);
  else if (Number.isInteger(length)) body = body.subarray(0, length);
  const text = body.toString("utf8");
  return { status, headers, text, json: parseJson(headers, text) };
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(body.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

function parseJson(headers: Record<string, string>, text: string): unknown {
  if (!/[/+]json\b/.test(headers["content-type"] ?? "")) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
