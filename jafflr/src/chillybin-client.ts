import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { HttpProblem, type Logger, promClient } from "tpi";
import { Agent, type Dispatcher } from "undici";
import { PROBLEM_TYPES } from "./problems";

/**
 * The mechanical arm: jafflr's HTTP client for chillybin. Every call goes through one keep-alive
 * pool with connect/headers/body timeouts plus a total deadline per attempt; tpi's undici
 * instrumentation adds the client span and the W3C `traceparent` header.
 */
export interface ChillybinClientOptions {
  baseUrl: string;
  connectTimeoutMs: number;
  /** Total deadline of one attempt: connect, send, headers and body. */
  timeoutMs: number;
  /** Extra attempts for a v2 pick after a network error, timeout or 503 (0 = try once). */
  retries: number;
  version: string;
  registry: promClient.Registry;
  logger: Logger;
  /** First retry delay; doubles per retry up to backoffMaxMs, with jitter. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export type PickResult = { via: "v1" } | { via: "v2"; orderId: string };

export interface ShortItem {
  ingredient: string;
  requested?: number;
  available?: number;
}

/** Routes as metric labels: the target's route template, never a raw URL with a query. */
type Route = "/pick" | "/v2/pick" | "/health";
type Outcome = "ok" | "client_error" | "server_error" | "timeout" | "network_error";

interface Answer {
  status: number;
  headers: Dispatcher.ResponseData["headers"];
  body: unknown;
}

/** The request never produced an answer: refused, reset, dropped or too slow. */
class TransportError extends Error {
  constructor(
    readonly kind: "timeout" | "network_error",
    message: string,
    /** True when the request surely never reached chillybin, so even a non-idempotent call may be retried. */
    readonly notSent: boolean,
  ) {
    super(message);
  }
}

const MAX_RESPONSE_BYTES = 1024 * 1024;
const READY_TIMEOUT_MS = 1000;
const DEFAULT_RETRY_AFTER_S = 2;

export class ChillybinClient {
  private readonly agent: Agent;
  private readonly origin: string;
  /** A path prefix in CHILLYBIN_URL (chillybin behind a path-routing proxy), without the trailing slash. */
  private readonly basePath: string;
  private readonly userAgent: string;
  private readonly requests: promClient.Counter<"route" | "outcome">;
  private readonly duration: promClient.Histogram<"route" | "outcome">;

  constructor(private readonly opts: ChillybinClientOptions) {
    const url = new URL(opts.baseUrl);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.userAgent = `jafflr/${opts.version}`;
    this.agent = new Agent({
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      keepAliveTimeout: 4_000,
      connections: 64,
    });
    this.requests = new promClient.Counter({
      name: "chillybin_client_requests_total",
      help: "Requests jafflr made to chillybin, by target route and outcome (one per attempt).",
      labelNames: ["route", "outcome"],
      registers: [opts.registry],
    });
    this.duration = new promClient.Histogram({
      name: "chillybin_client_request_duration_seconds",
      help: "Duration of jafflr's requests to chillybin, by target route and outcome.",
      labelNames: ["route", "outcome"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [opts.registry],
    });
  }

  /**
   * The original arm: one GET /pick per ingredient, in order. Knowingly not atomic: when a pick
   * fails midway the problem lists what was already taken (`taken`), which stays taken.
   */
  async pickV1(ingredients: string[]): Promise<PickResult> {
    const taken: string[] = [];
    for (const name of ingredients) {
      const path = `/pick?name=${encodeURIComponent(name)}&quantity=1`;
      let answer: Answer;
      try {
        // GET /pick changes stock, so it is retried only when it certainly never arrived.
        answer = await this.withRetries(
          "/pick",
          (e) => e instanceof TransportError && e.notSent,
          () => this.send("/pick", "GET", path),
        );
      } catch (err) {
        throw withTaken(this.unavailable(err), taken, name);
      }
      if (answer.status === 200) {
        taken.push(name);
        continue;
      }
      throw withTaken(this.v1Failure(answer, name), taken, name);
    }
    return { via: "v1" };
  }

  /**
   * The v2 arm: one atomic POST /v2/pick for the whole toastie. The Idempotency-Key is the same
   * on every attempt, so retrying after a lost answer can never pick twice.
   */
  async pickV2(
    customer: string,
    ingredients: string[],
    idempotencyKey: string,
  ): Promise<PickResult> {
    const body = JSON.stringify({ customer, items: countItems(ingredients) });
    let answer: Answer;
    try {
      answer = await this.withRetries(
        "/v2/pick",
        (e) => e instanceof TransportError || (e instanceof Unavailable503 && e.retryable),
        async () => {
          const a = await this.send("/v2/pick", "POST", "/v2/pick", {
            body,
            headers: { "content-type": "application/json", "idempotency-key": idempotencyKey },
          });
          if (a.status === 503) throw new Unavailable503(a, this.backoffMax());
          return a;
        },
      );
    } catch (err) {
      if (err instanceof Unavailable503) return this.v2Result(err.answer);
      throw this.unavailable(err);
    }
    return this.v2Result(answer);
  }

  /** Readiness: chillybin answers its liveness probe quickly. Rejects with the reason otherwise. */
  async ping(): Promise<void> {
    let answer: Answer;
    try {
      answer = await this.send("/health", "GET", "/health", {
        timeoutMs: Math.min(READY_TIMEOUT_MS, this.opts.timeoutMs),
      });
    } catch (err) {
      throw new Error(`chillybin unreachable: ${(err as Error).message}`);
    }
    if (answer.status !== 200) throw new Error(`chillybin /health answered ${answer.status}`);
  }

  /** Closes pooled connections; called at shutdown after in-flight requests finished. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  private v2Result(answer: Answer): PickResult {
    if (answer.status === 200) {
      const id = (answer.body as { id?: unknown } | undefined)?.id;
      if (typeof id !== "string" && typeof id !== "number") {
        throw new HttpProblem(502, "Bad Gateway", {
          type: PROBLEM_TYPES.coldStoreBroken,
          detail: "chillybin answered /v2/pick without an order id.",
        });
      }
      return { via: "v2", orderId: String(id) };
    }
    const problem = asProblem(answer.body);
    if (answer.status === 409 && Array.isArray(problem.short)) {
      throw shortProblem(problem.short as ShortItem[]);
    }
    if (answer.status === 404 && Array.isArray(problem.unknown)) {
      throw unknownProblem(problem.unknown.map(String));
    }
    throw this.otherFailure(answer, "/v2/pick");
  }

  private v1Failure(answer: Answer, name: string): HttpProblem {
    const problem = asProblem(answer.body);
    // The original said 410 Gone when an ingredient ran out.
    if (answer.status === 410 || answer.status === 409) {
      const short = Array.isArray(problem.short)
        ? (problem.short as ShortItem[])
        : [{ ingredient: name, requested: 1 }];
      return shortProblem(short);
    }
    // Without `unknown` a 404 means the route itself is gone (v1 deleted): not the customer's fault.
    if (answer.status === 404 && Array.isArray(problem.unknown)) return unknownProblem([name]);
    return this.otherFailure(answer, "/pick");
  }

  /** chillybin's remaining answers: its 5xx → 503 (try later); any other 4xx → 422 with its reason. */
  private otherFailure(answer: Answer, route: Route): HttpProblem {
    const problem = asProblem(answer.body);
    if (answer.status >= 500) {
      return new HttpProblem(503, "Cold Store Unavailable", {
        type: PROBLEM_TYPES.coldStoreUnavailable,
        detail: `chillybin answered ${answer.status}${problem.detail ? `: ${problem.detail}` : ""}; nothing was cooked.`,
        headers: { "Retry-After": String(retryAfterSeconds(answer) ?? DEFAULT_RETRY_AFTER_S) },
      });
    }
    if (answer.status === 404) {
      return new HttpProblem(502, "Bad Gateway", {
        type: PROBLEM_TYPES.coldStoreBroken,
        detail: `chillybin does not serve ${route}.`,
      });
    }
    return new HttpProblem(422, "Order Rejected by the Cold Store", {
      type: PROBLEM_TYPES.orderRejected,
      detail: `chillybin refused the pick (${answer.status}${problem.title ? ` ${problem.title}` : ""})${problem.detail ? `: ${problem.detail}` : ""}.`,
    });
  }

  private unavailable(err: unknown): HttpProblem {
    if (err instanceof HttpProblem) return err;
    if (!(err instanceof TransportError)) throw err;
    return new HttpProblem(503, "Cold Store Unavailable", {
      type: PROBLEM_TYPES.coldStoreUnavailable,
      detail:
        err.kind === "timeout"
          ? `chillybin did not answer in time (${err.message}); nothing was cooked.`
          : `chillybin could not be reached (${err.message}); nothing was cooked.`,
      headers: { "Retry-After": String(DEFAULT_RETRY_AFTER_S) },
    });
  }

  /** Runs `attempt`, retrying what `retryable` allows with bounded exponential backoff and jitter. */
  private async withRetries<T>(
    route: Route,
    retryable: (err: unknown) => boolean,
    attempt: () => Promise<T>,
  ): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (n >= this.opts.retries || !retryable(err)) {
          if (err instanceof TransportError || err instanceof Unavailable503) {
            this.opts.logger.warn(
              { route, attempts: n + 1, err: err.message },
              "chillybin call failed; giving up",
            );
          }
          throw err;
        }
        const delay = this.backoff(n, err);
        this.opts.logger.warn(
          { route, attempt: n + 1, retryInMs: delay, err: (err as Error).message },
          "chillybin call failed; retrying",
        );
        await sleep(delay);
      }
    }
  }

  private backoffMax(): number {
    return this.opts.backoffMaxMs ?? 1000;
  }

  private backoff(n: number, err: unknown): number {
    const base = this.opts.backoffBaseMs ?? 100;
    const ceiling = Math.min(this.backoffMax(), base * 2 ** n);
    // Equal jitter: half fixed, half random, so retries from many orders spread out.
    const delay = ceiling / 2 + randomInt(Math.floor(ceiling / 2) + 1);
    const hinted = err instanceof Unavailable503 ? (retryAfterSeconds(err.answer) ?? 0) * 1000 : 0;
    return Math.max(delay, hinted);
  }

  /** One HTTP exchange; always consumes the body so the connection returns to the pool. */
  private async send(
    route: Route,
    method: "GET" | "POST",
    path: string,
    extra: { body?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Answer> {
    const start = process.hrtime.bigint();
    let outcome: Outcome = "network_error";
    try {
      const res = await this.agent.request({
        origin: this.origin,
        path: `${this.basePath}${path}`,
        method,
        headers: { "user-agent": this.userAgent, accept: "application/json", ...extra.headers },
        body: extra.body,
        signal: AbortSignal.timeout(extra.timeoutMs ?? this.opts.timeoutMs),
      });
      const body = await readBody(res);
      outcome =
        res.statusCode < 400 ? "ok" : res.statusCode < 500 ? "client_error" : "server_error";
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      const transport = toTransportError(err, extra.timeoutMs ?? this.opts.timeoutMs);
      outcome = transport.kind;
      throw transport;
    } finally {
      const labels = { route, outcome };
      this.requests.inc(labels);
      this.duration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    }
  }
}

/** A 503 from chillybin: retried for v2 unless it asks for a longer pause than our backoff allows. */
class Unavailable503 extends Error {
  readonly retryable: boolean;
  constructor(
    readonly answer: Answer,
    maxBackoffMs: number,
  ) {
    super("chillybin answered 503");
    this.retryable = (retryAfterSeconds(answer) ?? 0) * 1000 <= maxBackoffMs;
  }
}

/** `["cheese","bread","bread"]` → `[{cheese,1},{bread,2}]`, first-seen order. */
export function countItems(ingredients: string[]): { ingredient: string; quantity: number }[] {
  const counts = new Map<string, number>();
  for (const name of ingredients) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts].map(([ingredient, quantity]) => ({ ingredient, quantity }));
}

function shortProblem(short: ShortItem[]): HttpProblem {
  const names = short.map((s) => s.ingredient);
  return new HttpProblem(409, "Not Enough Stock", {
    type: PROBLEM_TYPES.outOfStock,
    detail: `Not enough ${names.join(", ")} in the cold store; nothing was cooked.`,
    extensions: { short },
  });
}

/** The customer asked for something chillybin does not stock: their request is wrong, not the server. */
function unknownProblem(unknown: string[]): HttpProblem {
  return new HttpProblem(422, "Unknown Ingredient", {
    type: PROBLEM_TYPES.unknownIngredient,
    detail: `The cold store does not stock ${unknown.join(", ")}.`,
    extensions: { unknown },
  });
}

function withTaken(problem: HttpProblem, taken: string[], failedAt: string): HttpProblem {
  const detail =
    taken.length === 0
      ? problem.options.detail
      : `${problem.options.detail ?? problem.title} Already taken before ${failedAt} failed (the v1 pick is not atomic): ${taken.join(", ")}.`;
  return new HttpProblem(problem.status, problem.title, {
    ...problem.options,
    detail,
    extensions: { ...problem.options.extensions, taken: [...taken], failedAt },
  });
}

function asProblem(body: unknown): Record<string, unknown> & { title?: string; detail?: string } {
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
}

function retryAfterSeconds(answer: Answer): number | undefined {
  const value = answer.headers["retry-after"];
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

async function readBody(res: Dispatcher.ResponseData): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      res.body.destroy();
      throw new TransportError(
        "network_error",
        `response larger than ${MAX_RESPONSE_BYTES} bytes`,
        false,
      );
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  const type = String(res.headers["content-type"] ?? "");
  if (/[/+]json\b/.test(type)) {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }
  return text;
}

const CONNECT_FAILURES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

function toTransportError(err: unknown, timeoutMs: number): TransportError {
  if (err instanceof TransportError) return err;
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (
    e?.name === "TimeoutError" ||
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT"
  ) {
    return new TransportError("timeout", `no answer within ${timeoutMs} ms`, false);
  }
  if (code === "UND_ERR_CONNECT_TIMEOUT") {
    return new TransportError("timeout", "connect timed out", true);
  }
  const reason = code ?? e?.message ?? String(err);
  return new TransportError(
    "network_error",
    reason,
    code !== undefined && CONNECT_FAILURES.has(code),
  );
}
