import { randomInt } from "node:crypto";
import { EventSource } from "eventsource";
import { type Logger, z } from "tpi";
import { Agent, fetch } from "undici";

export const Stock = z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/), z.number().int().min(0));
export type Stock = z.infer<typeof Stock>;

export interface WatchOptions {
  chillybinUrl: string;
  logger: Logger;
  stock(stock: Stock): void;
  /** Connected (a stock snapshot arrived) or lost chillybin, with why. */
  status(connected: boolean, reason?: string): void;
  connectTimeoutMs?: number;
  /** No byte for this long (three of chillybin's 15 s heartbeats) and the stream is given up. */
  idleTimeoutMs?: number;
}

/**
 * jafflr's one watch of chillybin's GET /events, shared by every open stall page; returns stop().
 * Any error closes the EventSource and a new one follows with capped, jittered backoff (its own
 * reconnect waits a fixed 3 s and gives up for good on an error status).
 */
export function watchChillybin(opts: WatchOptions): () => void {
  const { logger, connectTimeoutMs: timeout = 2_000, idleTimeoutMs: bodyTimeout = 45_000 } = opts;
  // Its own single connection: the long-lived stream must not take a slot of the pick pool.
  const connect = { timeout };
  const agent = new Agent({ connections: 1, connect, headersTimeout: timeout * 2, bodyTimeout });
  const url = new URL("/events", opts.chillybinUrl);
  let [failures, connected] = [0, false];
  let [source, retry]: [EventSource?, NodeJS.Timeout?] = [];
  // Events that do not fit the contract are logged and skipped (a throw here would be uncaught).
  const read = <T>(schema: z.ZodType<T>, event: string, use: (value: T) => void) =>
    source?.addEventListener(event, ({ data }) => {
      try {
        use(schema.parse(JSON.parse(data)));
      } catch (err) {
        logger.warn({ err, data: data.slice(0, 200) }, `${event} event skipped`);
      }
    });
  const open = () => {
    source = new EventSource(url, { fetch: (u, init) => fetch(u, { ...init, dispatcher: agent }) });
    read(Stock, "stock", (stock) => {
      if (!connected) {
        [connected, failures] = [true, 0];
        logger.info({ url: url.href }, "watching chillybin's events");
        opts.status(true);
      }
      opts.stock(stock);
    });
    source.onerror = (e) => {
      source?.close();
      const reason = e.code
        ? `chillybin answered GET /events with ${e.code}`
        : (e.message ?? "chillybin ended the event stream");
      // One line per outage, not one per attempt: a long outage must not flood the log.
      if (connected || failures === 0) logger.warn({ reason }, "lost chillybin's events");
      [connected, failures] = [false, failures + 1];
      opts.status(false, reason);
      const delay = Math.min(10_000, 250 * 2 ** Math.min(failures - 1, 6));
      retry = setTimeout(open, randomInt(Math.ceil(delay / 2), delay + 1));
    };
  };
  open();
  return () => {
    clearTimeout(retry);
    source?.close();
    void agent.destroy().catch(() => undefined);
  };
}
