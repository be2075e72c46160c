import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "tpi";
import { Agent, request } from "undici";
import type { Via } from "./meter";
import { SseParser } from "./sse-parser";

/**
 * jafflr's one watch of chillybin's GET /events (stock snapshots and changes, picks), shared by
 * every open stall page. It reconnects with capped, jittered backoff, and treats a stream that
 * has been silent for longer than a few of chillybin's 15 s heartbeats as dead, so a half-open
 * connection (a restarted pod, a dropped NAT entry) is noticed instead of freezing the page.
 */
export type Stock = Record<string, number>;

export interface Pick {
  via: Via;
  items: { ingredient: string; quantity: number }[];
  customer?: string;
  orderId?: string;
}

export interface WatchHandlers {
  stock(stock: Stock): void;
  pick(pick: Pick): void;
  /** The watch connected (a stock snapshot arrived) or lost chillybin, with why. */
  status(connected: boolean, reason?: string): void;
}

export interface WatchOptions {
  chillybinUrl: string;
  logger: Logger;
  handlers: WatchHandlers;
  connectTimeoutMs?: number;
  /** No byte for this long (heartbeats included) and the stream is given up (default 45 s). */
  idleTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

const INGREDIENT = /^[a-z][a-z0-9_-]{0,31}$/;

export class ChillybinWatch {
  private readonly stopping = new AbortController();
  private readonly agent: Agent;
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: WatchOptions) {
    const connectTimeout = opts.connectTimeoutMs ?? 2_000;
    // Its own single connection: the long-lived stream must not take a slot of the pick pool.
    this.agent = new Agent({
      connections: 1,
      connect: { timeout: connectTimeout },
      headersTimeout: connectTimeout * 2,
      bodyTimeout: opts.idleTimeoutMs ?? 45_000,
    });
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Ends the stream and waits for the loop; the pending reconnect delay is cut short. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    await this.agent.destroy().catch(() => undefined);
  }

  private async run(): Promise<void> {
    const { logger, handlers } = this.opts;
    const base = this.opts.backoffBaseMs ?? 250;
    const max = this.opts.backoffMaxMs ?? 10_000;
    let failures = 0;
    const url = new URL("/events", this.opts.chillybinUrl);
    while (!this.stopping.signal.aborted) {
      let connected = false;
      try {
        const res = await request(url, {
          dispatcher: this.agent,
          signal: this.stopping.signal,
          headers: { accept: "text/event-stream" },
        });
        if (res.statusCode !== 200) {
          await res.body.dump().catch(() => undefined);
          throw new Error(`chillybin answered GET /events with ${res.statusCode}`);
        }
        const parser = new SseParser({
          message: (msg) => {
            if (msg.event === "stock") {
              const stock = parseStock(msg.data);
              if (!stock) return logger.warn({ data: msg.data.slice(0, 200) }, "bad stock event");
              if (!connected) {
                connected = true;
                failures = 0;
                logger.info({ url: url.href }, "watching chillybin's events");
                handlers.status(true);
              }
              handlers.stock(stock);
            } else if (msg.event === "pick") {
              const pick = parsePick(msg.data);
              if (!pick) return logger.warn({ data: msg.data.slice(0, 200) }, "bad pick event");
              handlers.pick(pick);
            }
          },
        });
        const decoder = new TextDecoder();
        for await (const chunk of res.body) parser.push(decoder.decode(chunk, { stream: true }));
        throw new Error("chillybin ended the event stream");
      } catch (err) {
        if (this.stopping.signal.aborted) break;
        failures += 1;
        const reason = (err as Error).message;
        // One line per outage, not one per attempt: a long outage must not flood the log.
        if (connected || failures === 1) logger.warn({ reason }, "lost chillybin's events");
        handlers.status(false, reason);
        const delay = Math.min(max, base * 2 ** Math.min(failures - 1, 16));
        await sleep(randomInt(Math.ceil(delay / 2), delay + 1), undefined, {
          signal: this.stopping.signal,
        }).catch(() => undefined);
      }
    }
  }
}

function parseStock(data: string): Stock | undefined {
  const value = parseJson(data);
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const stock: Stock = {};
  for (const [name, quantity] of Object.entries(value)) {
    if (!INGREDIENT.test(name) || !Number.isSafeInteger(quantity) || (quantity as number) < 0)
      return undefined;
    stock[name] = quantity as number;
  }
  return stock;
}

function parsePick(data: string): Pick | undefined {
  const value = parseJson(data) as Partial<Pick> | undefined;
  if (typeof value !== "object" || value === null) return undefined;
  if (value.via !== "v1" && value.via !== "v2") return undefined;
  const items = Array.isArray(value.items)
    ? value.items.filter(
        (i) => typeof i?.ingredient === "string" && Number.isSafeInteger(i?.quantity),
      )
    : [];
  return {
    via: value.via,
    items: items.map((i) => ({ ingredient: i.ingredient, quantity: i.quantity })),
    ...(typeof value.customer === "string" ? { customer: value.customer } : {}),
    ...(value.orderId !== undefined ? { orderId: String(value.orderId) } : {}),
  };
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
