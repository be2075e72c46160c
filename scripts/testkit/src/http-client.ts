/**
 * The two HTTP clients the tests use against running services:
 * - `act`: the request under test. Never throws: any status, or status 0 with `error` when no
 *   answer came at all (refused, reset, timed out), so the test asserts on what happened.
 * - `arrange`: setting the scene (restock, read stock). Throws on anything but 2xx, with the
 *   answer in the message, so a broken precondition never looks like a failing assertion.
 * Both check every answer against the service's own `GET /openapi.json` (./openapi.ts) and throw
 * when it is not what the description declares: drift fails whichever test saw it.
 */
import { checkAgainstOpenApi, prefetchOpenApi } from "./openapi";

/** A parsed JSON answer: its shape is what the test asserts, so it is not typed up front. */
// biome-ignore lint/suspicious/noExplicitAny: a test reads any field of an answer and asserts on it
export type Json = any;

export interface Reply<T = Json> {
  /** 0 when there was no HTTP answer (see `error`). */
  status: number;
  headers: Headers;
  /** Parsed JSON for JSON/problem+json answers, the text otherwise. */
  body: T;
  text: string;
  contentType: string;
  /** Why there was no answer, e.g. "ECONNREFUSED". */
  error?: string;
}

export interface RequestOptions {
  /** Sent as a JSON body with Content-Type: application/json. */
  json?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface Client {
  readonly baseUrl: string;
  get<T = Json>(path: string, options?: RequestOptions): Promise<Reply<T>>;
  post<T = Json>(path: string, options?: RequestOptions): Promise<Reply<T>>;
  request<T = Json>(method: string, path: string, options?: RequestOptions): Promise<Reply<T>>;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * A client whose requests never throw for what the service answers, only when the answer breaks
 * the service's description. `defaultHeaders` go on every request (e.g. Authorization).
 */
export function actClient(baseUrl: string, defaultHeaders: Record<string, string> = {}): Client {
  prefetchOpenApi(baseUrl);
  const request = async <T>(method: string, path: string, options: RequestOptions = {}) => {
    const headers: Record<string, string> = {
      accept: "application/json, application/problem+json;q=0.9, */*;q=0.1",
      ...defaultHeaders,
      ...options.headers,
    };
    if (options.json !== undefined) headers["content-type"] ??= "application/json";
    let response: Response;
    try {
      response = await fetch(new URL(path, baseUrl), {
        method,
        headers,
        body: options.json === undefined ? undefined : JSON.stringify(options.json),
        redirect: "manual",
        signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
    } catch (error) {
      return noAnswer<T>(error);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      return noAnswer<T>(error);
    }
    const contentType = response.headers.get("content-type") ?? "";
    let body: unknown = text;
    if (/[/+]json\b/.test(contentType)) {
      try {
        body = JSON.parse(text);
      } catch {
        // keep the text: the test sees the malformed body in its message
      }
    }
    const url = new URL(path, baseUrl);
    await checkAgainstOpenApi(url.href, {
      method,
      path: `${url.pathname}${url.search}`,
      status: response.status,
      contentType,
      text,
      json: body === text ? undefined : body,
    });
    return {
      status: response.status,
      headers: response.headers,
      body: body as T,
      text,
      contentType,
    };
  };
  return {
    baseUrl,
    request,
    get: (path, options) => request("GET", path, options),
    post: (path, options) => request("POST", path, options),
  };
}

/** A client that throws unless the answer is 2xx; returns the same replies otherwise. */
export function arrangeClient(
  baseUrl: string,
  defaultHeaders: Record<string, string> = {},
): Client {
  const act = actClient(baseUrl, defaultHeaders);
  const request = async <T>(method: string, path: string, options?: RequestOptions) => {
    const reply = await act.request<T>(method, path, options);
    if (reply.status < 200 || reply.status > 299) {
      const what =
        reply.status === 0
          ? `no answer (${reply.error})`
          : `${reply.status} ${reply.text.slice(0, 1_000)}`;
      throw new Error(`arrange: ${method} ${new URL(path, baseUrl).href} failed: ${what}`);
    }
    return reply;
  };
  return {
    baseUrl,
    request,
    get: (path, options) => request("GET", path, options),
    post: (path, options) => request("POST", path, options),
  };
}

function noAnswer<T>(error: unknown): Reply<T> {
  return {
    status: 0,
    headers: new Headers(),
    body: undefined as T,
    text: "",
    contentType: "",
    error: errorCode(error),
  };
}

/** fetch wraps the socket error: `TypeError: fetch failed` with the real one as `cause`. */
export function errorCode(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; cause?: unknown };
  if (e?.name === "TimeoutError") return "TIMEOUT";
  const cause = e?.cause as
    | { code?: string; message?: string; errors?: { code?: string }[] }
    | undefined;
  return (
    cause?.code ??
    cause?.errors?.find((x) => x.code)?.code ??
    e?.code ??
    cause?.message ??
    e?.message ??
    String(error)
  );
}
