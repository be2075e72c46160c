import { type Logger, promClient } from "tpi";
import { Agent, type Dispatcher, interceptors, type RetryHandler } from "undici";
import type { Config } from "./config";

/**
 * The arm's wire to chillybin, not what its answers mean (pick-v2.ts): one keep-alive pool,
 * timeouts on every attempt, undici's retry interceptor with our policy (its default has no
 * jitter and never passes a long Retry-After on), and whether chillybin can be reached.
 */
type Options = Pick<Config, "VERSION" | (`CHILLYBIN_${string}` & keyof Config)>;
export type Answer = { status: number; headers: Dispatcher.ResponseData["headers"]; body: unknown };
/** No answer: refused, reset or too slow; `notSent` when it surely never reached chillybin. */
export type NoAnswer = { kind: "timeout" | "network_error"; reason: string; notSent: boolean };
export type Reply = { answered: true; answer: Answer } | { answered: false; failure: NoAnswer };
/** With an `idempotency-key` header any failure is retried; without one only a request never sent. */
export type Call = { method: "GET" | "POST"; path: string; body?: string; headers?: object };
export type Reachability = { reachable: boolean; checkedAt: string | null; reason?: string };

export class ChillybinClient {
  /** Optimistic until told otherwise: the first toastie tries rather than being refused. */
  reachability: Reachability = { reachable: true, checkedAt: null };
  /** Seconds a customer should wait before trying again while chillybin is unreachable. */
  readonly retryAfterSeconds: number;
  private readonly agent: Dispatcher;
  private readonly url: URL;
  private readonly base: string;
  private timer: NodeJS.Timeout | undefined;
  private readonly requests: promClient.Counter<"route" | "outcome">;
  private readonly duration: promClient.Histogram<"route" | "outcome">;

  /** `backoffMs`: the first retry delay and the longest, doubling between, with equal jitter. */
  constructor(
    private readonly config: Options,
    private readonly deps: { registry: promClient.Registry; logger: Logger; backoffMs?: number[] },
  ) {
    const [base = 100, max = 1000] = deps.backoffMs ?? [];
    this.url = new URL(config.CHILLYBIN_URL);
    this.base = this.url.pathname.replace(/\/+$/, "");
    this.retryAfterSeconds = Math.max(1, Math.ceil(config.CHILLYBIN_CHECK_MS / 1000));
    const [labelNames, registers] = [["route", "outcome"] as const, [deps.registry]];
    this.requests = new promClient.Counter({
      ...{ name: "chillybin_client_requests_total", labelNames, registers },
      help: "Requests jafflr made to chillybin, by target route and outcome (one per attempt).",
    });
    this.duration = new promClient.Histogram({
      ...{ name: "chillybin_client_request_duration_seconds", labelNames, registers },
      help: "Duration of jafflr's calls to chillybin (retries included), by target route and outcome.",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    const connect = { timeout: config.CHILLYBIN_CONNECT_TIMEOUT_MS };
    const limits = { connections: 64, keepAliveTimeout: 4_000, maxResponseSize: 1024 * 1024 };
    const pool = new Agent({ connect, ...limits });
    // Every failed attempt, retried or final, passes here once; good answers are counted in call().
    const retry: RetryHandler.RetryCallback = (err, { state, opts }, cb) => {
      const e = err as Error & { statusCode?: number; headers?: Answer["headers"] };
      const failure = e.statusCode ? undefined : noAnswer(err, opts.headersTimeout);
      this.requests.inc(this.labels(opts.path, failure?.kind ?? outcome(e.statusCode ?? 500)));
      const keyed = "idempotency-key" in (opts.headers ?? {});
      const hinted = (retryAfterSeconds(e.headers ?? {}) ?? 0) * 1000;
      const again = failure ? keyed || failure.notSent : keyed && e.statusCode === 503;
      // A 503 asking for a longer pause than our backoff allows is passed on to the customer; the
      // periodic /health check is its own retry, and says nothing while chillybin is down.
      if (!again || hinted > max || opts.path.endsWith("/health")) return cb(err);
      const log = { path: opts.path, attempt: state.counter, err: failure?.reason ?? e.statusCode };
      if (state.counter > config.CHILLYBIN_RETRIES) {
        deps.logger.warn(log, "chillybin call failed; giving up");
        return cb(err);
      }
      const ceiling = Math.min(max, base * 2 ** (state.counter - 1));
      const delay = Math.max(ceiling * (0.5 + Math.random() / 2), hinted);
      deps.logger.warn({ ...log, retryInMs: delay }, "chillybin call failed; retrying");
      setTimeout(() => cb(null), delay);
    };
    this.agent = pool.compose(interceptors.retry({ retry, throwOnError: false }));
  }

  /** A /health check (1 s deadline) every CHILLYBIN_CHECK_MS: reachability recovers by itself. */
  start(): void {
    const timeout = Math.min(1000, this.config.CHILLYBIN_TIMEOUT_MS);
    const check = () => void this.call({ method: "GET", path: "/health" }, timeout);
    this.timer ??= setInterval(check, this.config.CHILLYBIN_CHECK_MS).unref();
    check();
  }

  async call(call: Call, timeoutMs = this.config.CHILLYBIN_TIMEOUT_MS): Promise<Reply> {
    const [path, start] = [`${this.base}${call.path}`, performance.now()];
    const headers = { "user-agent": `jafflr/${this.config.VERSION}`, accept: "application/json" };
    const timeouts = { headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
    let reply: Reply;
    try {
      const res = await this.agent.request({
        ...{ origin: this.url.origin, path, method: call.method, body: call.body, ...timeouts },
        headers: { ...headers, ...call.headers },
      });
      const json = /[/+]json\b/.test(String(res.headers["content-type"]));
      const body = await (json ? res.body.json().catch(() => undefined) : res.body.text());
      if (res.statusCode < 300) this.requests.inc(this.labels(path, "ok"));
      reply = { answered: true, answer: { status: res.statusCode, headers: res.headers, body } };
    } catch (err) {
      reply = { answered: false, failure: noAnswer(err, timeoutMs) };
    }
    const result = reply.answered ? outcome(reply.answer.status) : reply.failure.kind;
    this.duration.observe(this.labels(path, result), (performance.now() - start) / 1000);
    // Only a connection that cannot be made says chillybin is gone: a slow answer is a busy cold
    // store, any answer is something there.
    if (!reply.answered && !reply.failure.notSent) return reply;
    const [reason, checkedAt] = [
      reply.answered ? undefined : reply.failure.reason,
      new Date().toISOString(),
    ];
    if (!reason !== this.reachability.reachable) {
      if (reason) this.deps.logger.warn({ err: reason }, "chillybin is unreachable");
      else this.deps.logger.info("chillybin is reachable again");
    }
    this.reachability = { reachable: !reason, checkedAt, ...(reason && { reason }) };
    return reply;
  }

  /** Stops the checks and closes pooled connections (at shutdown, after in-flight requests). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.agent.close();
  }

  /** The route as a label, never a raw URL with a query. */
  private labels(path: string, outcome: string) {
    return { route: path.slice(this.base.length).split("?")[0], outcome };
  }
}

/** Retry-After in seconds when the answer carries one. */
export function retryAfterSeconds(headers: Answer["headers"]): number | undefined {
  const n = Number(headers["retry-after"] ?? Number.NaN);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

const outcome = (status: number) =>
  status < 400 ? "ok" : status < 500 ? "client_error" : "server_error";

/** Codes of a request that surely never reached chillybin. */
const NOT_SENT = /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|E(HOST|NET)UNREACH|UND_ERR_CONNECT_TIMEOUT)$/;

function noAnswer(err: unknown, timeoutMs?: number | null): NoAnswer {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? "";
  const [notSent, timedOut] = [NOT_SENT.test(code), /UND_ERR_(HEADERS|BODY)_TIMEOUT/.test(code)];
  if (code === "UND_ERR_CONNECT_TIMEOUT")
    return { kind: "timeout", reason: "connect timed out", notSent };
  if (timedOut) return { kind: "timeout", reason: `no answer within ${timeoutMs} ms`, notSent };
  return { kind: "network_error", reason: code || String(e?.message ?? err), notSent };
}
