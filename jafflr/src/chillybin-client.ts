import { randomInt } from "node:crypto";
import { type Logger, promClient } from "tpi";
import { Agent, type Dispatcher, interceptors, type RetryHandler } from "undici";

/**
 * The arm's wire to chillybin, and nothing about what the calls mean (pick-v2.ts, pick-v1.ts):
 * one keep-alive pool with connect, headers and body timeouts on every attempt, undici's retry
 * interceptor with our policy, and what jafflr last learnt about reaching chillybin. tpi's undici
 * instrumentation adds `traceparent`. A call resolves with what happened; it never throws.
 */
export interface ChillybinClientOptions {
  baseUrl: string;
  connectTimeoutMs: number;
  /** Deadline of an attempt's headers, and again of its body. */
  timeoutMs: number;
  /** Extra attempts after a retryable failure. */
  retries: number;
  version: string;
  registry: promClient.Registry;
  logger: Logger;
  /** First retry delay, doubling up to backoffMaxMs, with equal jitter. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  checkEveryMs?: number;
}

export interface Answer {
  status: number;
  headers: Dispatcher.ResponseData["headers"];
  body: unknown;
}

/** No answer: refused, reset, dropped or too slow; `notSent` when it surely never reached chillybin. */
export interface NoAnswer {
  kind: "timeout" | "network_error";
  reason: string;
  notSent: boolean;
}

export type Reply = { answered: true; answer: Answer } | { answered: false; failure: NoAnswer };

/**
 * With an `idempotency-key` header, network errors, timeouts and short 503s are retried; without
 * one the call may change stock, so only a request that never left is.
 */
export type Call = { method: "GET" | "POST"; path: string; body?: string; headers?: object };

/** What jafflr last learnt about reaching chillybin (GET / and jafflr_chillybin_up). */
export interface Reachability {
  reachable: boolean;
  checkedAt: string | null;
  reason?: string;
}

export class ChillybinClient {
  private readonly pool: Agent;
  private readonly agent: Dispatcher;
  private readonly url: URL;
  /** Optimistic until told otherwise: the first toastie tries rather than being refused. */
  private state: Reachability = { reachable: true, checkedAt: null };
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<unknown> | undefined;
  private readonly requests: promClient.Counter<"route" | "outcome">;
  private readonly duration: promClient.Histogram<"route" | "outcome">;

  constructor(private readonly opts: ChillybinClientOptions) {
    this.url = new URL(opts.baseUrl.replace(/\/*$/, ""));
    const { timeoutMs: t, registry, logger } = opts;
    this.pool = new Agent({
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: t,
      bodyTimeout: t,
      keepAliveTimeout: 4_000,
      connections: 64,
      maxResponseSize: 1024 * 1024,
    });
    this.requests = new promClient.Counter({
      name: "chillybin_client_requests_total",
      help: "Requests jafflr made to chillybin, by target route and outcome (one per attempt).",
      labelNames: ["route", "outcome"],
      registers: [registry],
    });
    this.duration = new promClient.Histogram({
      name: "chillybin_client_request_duration_seconds",
      help: "Duration of jafflr's calls to chillybin (retries included), by target route and outcome.",
      labelNames: ["route", "outcome"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    const up = () => (this.state.reachable ? 1 : 0);
    new promClient.Gauge({
      name: "jafflr_chillybin_up",
      help: "1 while jafflr can reach chillybin (learnt from calls and a /health check), else 0.",
      registers: [registry],
      collect() {
        this.set(up());
      },
    });
    // Every failed attempt, retried or final, passes here once; good answers are counted in call().
    const retry: RetryHandler.RetryCallback = (err, { state, opts: call }, cb) => {
      const e = err as Error & { statusCode?: number; headers?: Answer["headers"] };
      const failure = e.statusCode ? undefined : noAnswer(err, t);
      this.count(call.path, failure?.kind ?? outcome(e.statusCode ?? 500));
      const keyed = "idempotency-key" in (call.headers ?? {});
      const max = opts.backoffMaxMs ?? 1000;
      const hinted = (retryAfterSeconds({ headers: e.headers ?? {} }) ?? 0) * 1000;
      // A 503 asking for a longer pause than our backoff allows is passed on to the customer.
      const again = failure
        ? keyed || failure.notSent
        : keyed && e.statusCode === 503 && hinted <= max;
      const log = { path: call.path, attempt: state.counter, err: failure?.reason ?? e.statusCode };
      // The periodic /health check is its own retry, and says nothing while chillybin is down.
      if (!again || call.path.endsWith("/health")) return cb(err);
      if (state.counter > opts.retries) {
        logger.warn(log, "chillybin call failed; giving up");
        return cb(err);
      }
      const ceiling = Math.min(max, (opts.backoffBaseMs ?? 100) * 2 ** (state.counter - 1));
      const delay = Math.max(ceiling / 2 + randomInt(Math.floor(ceiling / 2) + 1), hinted);
      logger.warn({ ...log, retryInMs: delay }, "chillybin call failed; retrying");
      setTimeout(() => cb(null), delay);
    };
    this.agent = this.pool.compose(interceptors.retry({ retry, throwOnError: false }));
  }

  get reachability(): Reachability {
    return { ...this.state };
  }

  /** Seconds a customer should wait before trying again while chillybin is unreachable. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.opts.checkEveryMs ?? 2_000) / 1000));
  }

  /** A /health check every checkEveryMs, so reachability recovers while toasties are refused. */
  start(): void {
    this.timer ??= setInterval(() => void this.check(), this.opts.checkEveryMs ?? 2_000).unref();
    void this.check();
  }

  /**
   * One /health check with a 1 s deadline. As with calls, only a connection that cannot be made
   * says chillybin is gone: a slow answer is a busy cold store, and any answer is something there.
   */
  async check(): Promise<Reachability> {
    const health = { method: "GET", path: "/health" } as const;
    this.checking ??= this.call(health, Math.min(1000, this.opts.timeoutMs)).finally(() => {
      this.checking = undefined;
    });
    await this.checking;
    return this.reachability;
  }

  async call(call: Call, timeoutMs = this.opts.timeoutMs): Promise<Reply> {
    const path = `${this.url.pathname.replace(/\/$/, "")}${call.path}`;
    const start = performance.now();
    let reply: Reply;
    try {
      const res = await this.agent.request({
        origin: this.url.origin,
        path,
        method: call.method,
        headers: {
          "user-agent": `jafflr/${this.opts.version}`,
          accept: "application/json",
          ...call.headers,
        },
        body: call.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await res.body.text();
      const json = /[/+]json\b/.test(String(res.headers["content-type"]));
      if (res.statusCode < 300) this.count(path, "ok");
      const body = json ? parseJson(text) : text;
      reply = { answered: true, answer: { status: res.statusCode, headers: res.headers, body } };
    } catch (err) {
      reply = { answered: false, failure: noAnswer(err, timeoutMs) };
    }
    const route = this.route(path);
    const result = reply.answered ? outcome(reply.answer.status) : reply.failure.kind;
    this.duration.observe({ route, outcome: result }, (performance.now() - start) / 1000);
    if (reply.answered) this.learn(true);
    else if (reply.failure.notSent) this.learn(false, reply.failure.reason);
    return reply;
  }

  /** Stops the checks and closes pooled connections (at shutdown, after in-flight requests). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.pool.close();
  }

  private count(path: string, outcome: string) {
    this.requests.inc({ route: this.route(path), outcome });
  }

  /** The route template as a label, never a raw URL with a query. */
  private route(path: string) {
    return path.slice(this.url.pathname.replace(/\/$/, "").length).split("?")[0];
  }

  private learn(reachable: boolean, reason?: string) {
    if (reachable !== this.state.reachable) {
      if (reachable) this.opts.logger.info("chillybin is reachable again");
      else this.opts.logger.warn({ err: reason }, "chillybin is unreachable");
    }
    const at = new Date().toISOString();
    this.state = reachable ? { reachable, checkedAt: at } : { reachable, checkedAt: at, reason };
  }
}

/** Retry-After in seconds when the answer carries one. */
export function retryAfterSeconds(answer: Pick<Answer, "headers">): number | undefined {
  const n = Number(answer.headers["retry-after"] ?? Number.NaN);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

const outcome = (status: number) =>
  status < 400 ? "ok" : status < 500 ? "client_error" : "server_error";

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const NOT_SENT = ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"];

function noAnswer(err: unknown, timeoutMs: number): NoAnswer {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? "";
  if (/UND_ERR_(HEADERS|BODY)_TIMEOUT/.test(code)) {
    return { kind: "timeout", reason: `no answer within ${timeoutMs} ms`, notSent: false };
  }
  if (code === "UND_ERR_CONNECT_TIMEOUT") {
    return { kind: "timeout", reason: "connect timed out", notSent: true };
  }
  const reason = code || (e?.message ?? String(err));
  return { kind: "network_error", reason, notSent: NOT_SENT.includes(code) };
}
