import { randomInt } from "node:crypto";
import { type Logger, promClient } from "tpi";
import { Agent, type Dispatcher, interceptors, type RetryHandler } from "undici";
import type { Config } from "./config";

/**
 * The arm's wire to chillybin, not what its answers mean (pick-v2.ts): one keep-alive pool with
 * connect, headers and body timeouts on every attempt, undici's retry interceptor with our
 * policy, and whether chillybin can be reached. A call resolves with what happened, never throws.
 */
type Options = Pick<
  Config,
  "VERSION" | `CHILLYBIN_${"URL" | "TIMEOUT_MS" | "RETRIES" | "CHECK_MS"}`
>;
export type Answer = { status: number; headers: Dispatcher.ResponseData["headers"]; body: unknown };
/** No answer: refused, reset or too slow; `notSent` when it surely never reached chillybin. */
export type NoAnswer = { kind: "timeout" | "network_error"; reason: string; notSent: boolean };
export type Reply = { answered: true; answer: Answer } | { answered: false; failure: NoAnswer };
/** With an `idempotency-key` header any failure is retried; without one only a request never sent. */
export type Call = { method: "GET" | "POST"; path: string; body?: string; headers?: object };
type Deps = { registry: promClient.Registry; logger: Logger; backoffMs?: [number, number] };
export type Reachability = { reachable: boolean; checkedAt: string | null; reason?: string };

export class ChillybinClient {
  private readonly pool: Agent;
  private readonly agent: Dispatcher;
  private readonly url: URL;
  private readonly base: string;
  /** Optimistic until told otherwise: the first toastie tries rather than being refused. */
  private state: Reachability = { reachable: true, checkedAt: null };
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<unknown> | undefined;
  private readonly metrics: ReturnType<typeof clientMetrics>;
  private readonly logger: Logger;

  /** `backoffMs`: the first retry delay and the longest, doubling between, with equal jitter. */
  constructor(
    private readonly config: Options & Pick<Config, "CHILLYBIN_CONNECT_TIMEOUT_MS">,
    { registry, logger, backoffMs: [base, max] = [100, 1000] }: Deps,
  ) {
    this.url = new URL(config.CHILLYBIN_URL);
    this.base = this.url.pathname.replace(/\/+$/, "");
    const t = config.CHILLYBIN_TIMEOUT_MS;
    this.logger = logger;
    this.pool = new Agent({
      connect: { timeout: config.CHILLYBIN_CONNECT_TIMEOUT_MS },
      headersTimeout: t,
      bodyTimeout: t,
      ...{ connections: 64, keepAliveTimeout: 4_000, maxResponseSize: 1024 * 1024 },
    });
    this.metrics = clientMetrics(registry);
    // Every failed attempt, retried or final, passes here once; good answers are counted in call().
    const retry: RetryHandler.RetryCallback = (err, { state, opts: call }, cb) => {
      const e = err as Error & { statusCode?: number; headers?: Answer["headers"] };
      const failure = e.statusCode ? undefined : noAnswer(err, t);
      this.count(call.path, failure?.kind ?? outcome(e.statusCode ?? 500));
      const keyed = "idempotency-key" in (call.headers ?? {});
      const hinted = (retryAfterSeconds({ headers: e.headers ?? {} }) ?? 0) * 1000;
      // A 503 asking for a longer pause than our backoff allows is passed on to the customer.
      const again = failure
        ? keyed || failure.notSent
        : keyed && e.statusCode === 503 && hinted <= max;
      // The periodic /health check is its own retry, and says nothing while chillybin is down.
      if (!again || call.path.endsWith("/health")) return cb(err);
      const log = { path: call.path, attempt: state.counter, err: failure?.reason ?? e.statusCode };
      if (state.counter > config.CHILLYBIN_RETRIES) {
        logger.warn(log, "chillybin call failed; giving up");
        return cb(err);
      }
      const ceiling = Math.min(max, base * 2 ** (state.counter - 1));
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
    return Math.max(1, Math.ceil(this.config.CHILLYBIN_CHECK_MS / 1000));
  }

  /** A /health check every checkEveryMs, so reachability recovers while toasties are refused. */
  start(): void {
    this.timer ??= setInterval(() => void this.check(), this.config.CHILLYBIN_CHECK_MS).unref();
    void this.check();
  }

  /**
   * One /health check with a 1 s deadline. As with calls, only a connection that cannot be made
   * says chillybin is gone: a slow answer is a busy cold store, any answer is something there.
   */
  async check(): Promise<Reachability> {
    const timeout = Math.min(1000, this.config.CHILLYBIN_TIMEOUT_MS);
    this.checking ??= this.call({ method: "GET", path: "/health" }, timeout);
    await this.checking.finally(() => {
      this.checking = undefined;
    });
    return this.reachability;
  }

  async call(call: Call, timeoutMs = this.config.CHILLYBIN_TIMEOUT_MS): Promise<Reply> {
    const [path, start] = [`${this.base}${call.path}`, performance.now()];
    const headers = { "user-agent": `jafflr/${this.config.VERSION}`, accept: "application/json" };
    let reply: Reply;
    try {
      const res = await this.agent.request({
        ...{ origin: this.url.origin, path, method: call.method, body: call.body },
        ...{
          headers: { ...headers, ...call.headers },
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        },
      });
      const json = /[/+]json\b/.test(String(res.headers["content-type"]));
      const body = await (json ? res.body.json().catch(() => undefined) : res.body.text());
      if (res.statusCode < 300) this.count(path, "ok");
      const answer = { status: res.statusCode, headers: res.headers, body };
      reply = { answered: true, answer };
    } catch (err) {
      reply = { answered: false, failure: noAnswer(err, timeoutMs) };
    }
    const result = reply.answered ? outcome(reply.answer.status) : reply.failure.kind;
    this.count(path, result, (performance.now() - start) / 1000);
    if (reply.answered || reply.failure.notSent)
      this.learn(reply.answered ? undefined : reply.failure.reason);
    return reply;
  }

  /** Stops the checks and closes pooled connections (at shutdown, after in-flight requests). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.pool.close();
  }

  /** One attempt; the route as a label, never a raw URL with a query. */
  private count(path: string, outcome: string, seconds?: number) {
    const labels = { route: path.slice(this.base.length).split("?")[0], outcome };
    if (seconds === undefined) this.metrics.requests.inc(labels);
    else this.metrics.duration.observe(labels, seconds);
  }

  /** No reason: reachable. */
  private learn(reason?: string) {
    const reachable = reason === undefined;
    if (reachable && !this.state.reachable) this.logger.info("chillybin is reachable again");
    if (!reachable && this.state.reachable)
      this.logger.warn({ err: reason }, "chillybin is unreachable");
    this.state = { reachable, checkedAt: new Date().toISOString(), ...(reason && { reason }) };
  }
}

function clientMetrics(registry: promClient.Registry) {
  const [labelNames, registers] = [["route", "outcome"] as const, [registry]];
  const requests = new promClient.Counter({
    ...{ name: "chillybin_client_requests_total", labelNames, registers },
    help: "Requests jafflr made to chillybin, by target route and outcome (one per attempt).",
  });
  const duration = new promClient.Histogram({
    ...{ name: "chillybin_client_request_duration_seconds", labelNames, registers },
    help: "Duration of jafflr's calls to chillybin (retries included), by target route and outcome.",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
  return { requests, duration };
}

/** Retry-After in seconds when the answer carries one. */
export function retryAfterSeconds(answer: Pick<Answer, "headers">): number | undefined {
  const n = Number(answer.headers["retry-after"] ?? Number.NaN);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

const outcome = (status: number) =>
  status < 400 ? "ok" : status < 500 ? "client_error" : "server_error";

/** Codes of a request that surely never reached chillybin. */
const NOT_SENT =
  "ECONNREFUSED ENOTFOUND EAI_AGAIN EHOSTUNREACH ENETUNREACH UND_ERR_CONNECT_TIMEOUT";

function noAnswer(err: unknown, timeoutMs: number): NoAnswer {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? "";
  const notSent = NOT_SENT.split(" ").includes(code);
  if (code === "UND_ERR_CONNECT_TIMEOUT")
    return { kind: "timeout", reason: "connect timed out", notSent };
  if (!/UND_ERR_(HEADERS|BODY)_TIMEOUT/.test(code)) {
    return { kind: "network_error", reason: code || String(e?.message ?? err), notSent };
  }
  return { kind: "timeout", reason: `no answer within ${timeoutMs} ms`, notSent };
}
