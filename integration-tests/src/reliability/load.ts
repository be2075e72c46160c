/**
 * Steady load for the reliability suite: a few workers, each sending one request after another
 * (a fresh connection per request by default), every outcome kept with its timing and with what
 * the request takes from stock when it succeeds — so a test can ask "did everything started
 * before the signal succeed?" and "does the stock match the successes exactly?".
 */
import type http from "node:http";
import type { Quantities } from "./ledger";
import { type RawReply, type SendOptions, send } from "./raw-http";

export interface LoadRequest extends SendOptions {
  /** A label for messages and counting, e.g. "toastie-v2" or "pick-v1". */
  kind: string;
  /** Base URL of the service (or proxy) to send it to. */
  target: string;
  /** What a 200 takes from stock. */
  takes: Quantities;
}

export interface Outcome extends RawReply {
  request: LoadRequest;
}

export interface Load {
  /** Everything finished so far (live array). */
  readonly outcomes: Outcome[];
  /** Requests started and not finished yet. */
  inFlight(): number;
  /** Stops starting new requests, waits for the ones in flight, returns every outcome. */
  stop(): Promise<Outcome[]>;
}

/** One worker per element of `workers`; each calls its function with a running index for its next request. */
export function startLoad(
  workers: ((n: number) => LoadRequest)[],
  options: { agent?: http.Agent | false; pauseMs?: number; pauseAfterNoAnswerMs?: number } = {},
): Load {
  const outcomes: Outcome[] = [];
  let running = true;
  let inFlight = 0;
  const loops = workers.map(async (next) => {
    for (let n = 0; running; n++) {
      const request = next(n);
      inFlight++;
      const reply = await send(request.target, { agent: options.agent ?? false, ...request });
      inFlight--;
      outcomes.push({ ...reply, request });
      // A refused connection fails in microseconds: do not spin on a service that is gone.
      const pause = reply.status === 0 ? (options.pauseAfterNoAnswerMs ?? 20) : options.pauseMs;
      if (pause) await new Promise((r) => setTimeout(r, pause));
    }
  });
  return {
    outcomes,
    inFlight: () => inFlight,
    async stop() {
      running = false;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** "toastie-v2 200 ×12, pick-v1 ECONNREFUSED ×3" — a compact census for assertion messages. */
export function census(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = `${o.request.kind} ${o.status || o.error}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, n]) => `${key} ×${n}`)
    .join(", ");
}

/** One failed outcome, readable. */
export function describe(o: Outcome): string {
  const what = o.status ? `${o.status} ${o.text.slice(0, 300)}` : `no answer (${o.error})`;
  return `${o.request.kind} ${o.request.method ?? "GET"} ${o.request.target}${o.request.path} → ${what}`;
}
