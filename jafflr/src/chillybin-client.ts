import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { type Logger, promClient } from "tpi";
import { Agent, type Dispatcher } from "undici";

/**
 * The mechanical arm's wire: jafflr's HTTP transport to chillybin, and nothing about what the
 * calls mean (pick-v2.ts and pick-v1.ts map answers to toasties and problems). One keep-alive
 * pool with a connect timeout and a total deadline per attempt, bounded retries with backoff,
 * a metric per attempt, and what jafflr last learnt about chillybin being reachable. tpi's
 * undici instrumentation adds the client span and the W3C `traceparent` header.
 * Every call resolves with what happened; nothing is thrown for an outcome.
 */
export interface ChillybinClientOptions {
  baseUrl: string;
  connectTimeoutMs: number;
  /** Total deadline of one attempt: connect, send, headers and body. */
  timeoutMs: number;
  /** Extra attempts after a retryable failure (0 = try once). */
  retries: number;
  version: string;
  registry: promClient.Registry;
  logger: Logger;
  /** First retry delay; doubles per retry up to backoffMaxMs, with jitter. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** How often start() checks chillybin's /health while nothing else tells (default 2 s). */
  checkEveryMs?: number;
}

/** Target routes as metric labels: the route template, never a raw URL with a query. */
export type Route = "/pick" | "/v2/pick" | "/health";

export interface Answer {
  status: number;
  headers: Dispatcher.ResponseData["headers"];
  body: unknown;
}

/** The request never produced an answer: refused, reset, dropped or too slow. */
export interface NoAnswer {
  kind: "timeout" | "network_error";
  reason: string;
  /** True when the request surely never reached chillybin (refused, DNS, connect timeout). */
  notSent: boolean;
}

export type Reply = { answered: true; answer: Answer } | { answered: false; failure: NoAnswer };

/**
 * Which failures a call may repeat. "idempotent": the call carries an Idempotency-Key, so network
 * errors, timeouts and short 503s are retried. "unsent-only": the call changes stock without a
 * key, so only a request that certainly never left is retried.
 */
export type RetryPolicy = "idempotent" | "unsent-only";

export interface Call {
  route: Route;
  method: "GET" | "POST";
  /** Path and query below CHILLYBIN_URL. */
  path: string;
  body?: string;
  headers?: Record<string, string>;
  retry: RetryPolicy;
}

/** What jafflr last learnt about reaching chillybin, shown in `GET /` and as a metric. */
export interface Reachability {
  reachable: boolean;
  /** When it was learnt (ISO 8601), from a call or a check; null before the first. */
  checkedAt: string | null;
  /** Why chillybin could not be reached, while it cannot. */
  reason?: string;
}

type Outcome = "ok" | "client_error" | "server_error" | "timeout" | "network_error";

const MAX_RESPONSE_BYTES = 1024 * 1024;
const CHECK_TIMEOUT_MS = 1000;

export class ChillybinClient {
  private readonly agent: Agent;
  private readonly origin: string;
  /** A path prefix in CHILLYBIN_URL (chillybin behind a path-routing proxy), without the trailing slash. */
  private readonly basePath: string;
  private readonly userAgent: string;
  private readonly requests: promClient.Counter<"route" | "outcome">;
  private readonly duration: promClient.Histogram<"route" | "outcome">;
  /** Optimistic until told otherwise: the first toastie tries rather than being refused. */
  private state: Reachability = { reachable: true, checkedAt: null };
  private checkTimer: NodeJS.Timeout | undefined;
  private checking = false;

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
    const client = this;
    new promClient.Gauge({
      name: "jafflr_chillybin_up",
      help: "1 while jafflr can reach chillybin (learnt from calls and a periodic /health check), else 0.",
      registers: [opts.registry],
      collect() {
        this.set(client.state.reachable ? 1 : 0);
      },
    });
  }

  /** What jafflr last learnt about reaching chillybin. */
  get reachability(): Reachability {
    return { ...this.state };
  }

  /** Seconds a customer should wait before trying again while chillybin is unreachable. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.opts.checkEveryMs ?? 2_000) / 1000));
  }

  /**
   * Checks chillybin's /health every checkEveryMs, so reachability recovers by itself while
   * toasties are refused without calling it. Readiness never depends on this (issue 10.3).
   */
  start(): void {
    if (this.checkTimer) return;
    void this.check();
    this.checkTimer = setInterval(() => void this.check(), this.opts.checkEveryMs ?? 2_000);
    this.checkTimer.unref();
  }

  /** One /health check with a short deadline; resolves with what jafflr knows after it. */
  async check(): Promise<Reachability> {
    if (this.checking) return this.reachability;
    this.checking = true;
    try {
      const timeoutMs = Math.min(CHECK_TIMEOUT_MS, this.opts.timeoutMs);
      const reply = await this.attempt(
        { route: "/health", method: "GET", path: "/health", retry: "unsent-only" },
        timeoutMs,
      );
      // As with calls, only a connection that cannot be made says chillybin is gone. A check
      // that times out under load is chillybin being slow, and any answer — even a 503 from a
      // draining instance or a proxy mid-rollout — is something there answering: refusing every
      // toastie for that would turn a busy cold store into a closed stall.
      if (!reply.answered) {
        if (reply.failure.notSent) this.learn(false, reply.failure.reason);
      } else this.learn(true);
      return this.reachability;
    } finally {
      this.checking = false;
    }
  }

  /** One call, retried as its policy allows with bounded exponential backoff and jitter. */
  async call(call: Call): Promise<Reply> {
    for (let n = 0; ; n++) {
      const reply = await this.attempt(call, this.opts.timeoutMs);
      const why = this.retryable(call.retry, reply);
      if (why === undefined) return reply;
      if (n >= this.opts.retries) {
        this.opts.logger.warn(
          { route: call.route, attempts: n + 1, err: why },
          "chillybin call failed; giving up",
        );
        return reply;
      }
      const delay = this.backoff(n, reply);
      this.opts.logger.warn(
        { route: call.route, attempt: n + 1, retryInMs: delay, err: why },
        "chillybin call failed; retrying",
      );
      await sleep(delay);
    }
  }

  /** Stops the checks and closes pooled connections; called at shutdown after in-flight requests. */
  async close(): Promise<void> {
    clearInterval(this.checkTimer);
    this.checkTimer = undefined;
    await this.agent.close();
  }

  /** Why this reply may be retried under `policy`, or undefined when it is final. */
  private retryable(policy: RetryPolicy, reply: Reply): string | undefined {
    if (!reply.answered) {
      return policy === "idempotent" || reply.failure.notSent ? reply.failure.reason : undefined;
    }
    // A 503 is retried unless it asks for a longer pause than our backoff allows.
    if (policy === "idempotent" && reply.answer.status === 503) {
      const hinted = (retryAfterSeconds(reply.answer) ?? 0) * 1000;
      return hinted <= this.backoffMax() ? "chillybin answered 503" : undefined;
    }
    return undefined;
  }

  private backoffMax(): number {
    return this.opts.backoffMaxMs ?? 1000;
  }

  private backoff(n: number, reply: Reply): number {
    const base = this.opts.backoffBaseMs ?? 100;
    const ceiling = Math.min(this.backoffMax(), base * 2 ** n);
    // Equal jitter: half fixed, half random, so retries from many orders spread out.
    const delay = ceiling / 2 + randomInt(Math.floor(ceiling / 2) + 1);
    const hinted = reply.answered ? (retryAfterSeconds(reply.answer) ?? 0) * 1000 : 0;
    return Math.max(delay, hinted);
  }

  private learn(reachable: boolean, reason?: string) {
    if (reachable !== this.state.reachable) {
      if (reachable) this.opts.logger.info("chillybin is reachable again");
      else this.opts.logger.warn({ err: reason }, "chillybin is unreachable");
    }
    this.state = {
      reachable,
      checkedAt: new Date().toISOString(),
      ...(reachable ? {} : { reason }),
    };
  }

  /** One HTTP exchange; always consumes the body so the connection returns to the pool. */
  private async attempt(call: Call, timeoutMs: number): Promise<Reply> {
    const start = process.hrtime.bigint();
    let outcome: Outcome;
    let reply: Reply;
    try {
      const res = await this.agent.request({
        origin: this.origin,
        path: `${this.basePath}${call.path}`,
        method: call.method,
        headers: { "user-agent": this.userAgent, accept: "application/json", ...call.headers },
        body: call.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = await readBody(res);
      if (body === TOO_LARGE) {
        outcome = "network_error";
        reply = { answered: false, failure: tooLarge() };
      } else {
        outcome =
          res.statusCode < 400 ? "ok" : res.statusCode < 500 ? "client_error" : "server_error";
        reply = { answered: true, answer: { status: res.statusCode, headers: res.headers, body } };
      }
    } catch (err) {
      const failure = noAnswer(err, timeoutMs);
      outcome = failure.kind;
      reply = { answered: false, failure };
    }
    const labels = { route: call.route, outcome };
    this.requests.inc(labels);
    this.duration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    // Any answer means chillybin is there; only a request that never left says it is not
    // (a slow answer is chillybin being slow, not gone). check() judges /health itself.
    if (call.route === "/health") return reply;
    if (reply.answered) this.learn(true);
    else if (reply.failure.notSent) this.learn(false, reply.failure.reason);
    return reply;
  }
}

/** Retry-After in seconds when the answer carries one. */
export function retryAfterSeconds(answer: Answer): number | undefined {
  const value = answer.headers["retry-after"];
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

const TOO_LARGE = Symbol("too large");

function tooLarge(): NoAnswer {
  return {
    kind: "network_error",
    reason: `response larger than ${MAX_RESPONSE_BYTES} bytes`,
    notSent: false,
  };
}

async function readBody(res: Dispatcher.ResponseData): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      res.body.destroy();
      return TOO_LARGE;
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

function noAnswer(err: unknown, timeoutMs: number): NoAnswer {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (
    e?.name === "TimeoutError" ||
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT"
  ) {
    return { kind: "timeout", reason: `no answer within ${timeoutMs} ms`, notSent: false };
  }
  if (code === "UND_ERR_CONNECT_TIMEOUT") {
    return { kind: "timeout", reason: "connect timed out", notSent: true };
  }
  return {
    kind: "network_error",
    reason: code ?? e?.message ?? String(err),
    notSent: code !== undefined && CONNECT_FAILURES.has(code),
  };
}
