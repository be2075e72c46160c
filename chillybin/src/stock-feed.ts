import pg from "pg";
import { type Logger, type Metrics, promClient } from "tpi";
import type { PoolSettings } from "./db";
import { compareNames, listStock } from "./stock";

/** A `stock` event (the whole stock) or a `pick` event, its data serialised once for everyone. */
export type FeedEvent = { type: "stock" | "pick"; json: string };

/** A write of ours whose announcement has not come back after this long means the feed is broken. */
const PENDING_LIMIT_MS = 5_000;
const PING_EVERY_MS = 30_000;

/**
 * The stock, kept in memory from PostgreSQL LISTEN/NOTIFY (channel stock_changed: the ingredients
 * triggers and the pick statements) on one connection, so GET / and GET /events need no query and
 * every instance learns of every other instance's changes.
 *
 * Read-your-writes: a write made here passes its transaction id to `wrote()`; until that
 * transaction's announcement arrives, `currentJson()` says "ask the database". While the
 * connection is down (or not yet synced) it says the same, and the feed reconnects with backoff.
 */
export class StockFeed {
  #client: pg.Client | undefined;
  #stock = new Map<string, number>();
  /** The stock as GET / sends it, serialised once per change rather than once per request. */
  #json: string | undefined;
  #synced = false;
  /** Announcements that arrive while the stock is being read, applied after it. */
  #buffered: string[] | undefined;
  readonly #pending = new Map<string, number>();
  /** Announcements that came before their `wrote()` (recent ones only). */
  readonly #seen = new Set<string>();
  readonly #subscribers = new Set<(event: FeedEvent) => void>();
  #closed = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  readonly #connected: promClient.Gauge;

  constructor(
    private readonly opts: {
      settings: Pick<
        PoolSettings,
        "DATABASE_URL" | "PG_CONNECT_TIMEOUT_MS" | "PG_STATEMENT_TIMEOUT_MS"
      >;
      logger: Logger;
      metrics: Metrics;
    },
  ) {
    this.#connected = new promClient.Gauge({
      name: "chillybin_stock_feed_connected",
      help: "1 while the LISTEN connection that keeps the in-memory stock fresh is up and synced.",
      registers: [opts.metrics.registry],
    });
    this.#connected.set(0);
  }

  start(): void {
    void this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearInterval(this.#ping);
    this.#subscribers.clear();
    const client = this.#client;
    this.#client = undefined;
    this.#synced = false;
    await client?.end().catch(() => {});
  }

  /** The whole stock as JSON from memory, or undefined when only the database can say for sure. */
  currentJson(): string | undefined {
    if (!this.#synced) return undefined;
    const oldest = this.#pending.values().next().value;
    if (oldest !== undefined) {
      if (Date.now() - oldest > PENDING_LIMIT_MS) this.#lost(new Error("own write not announced"));
      return undefined;
    }
    this.#json ??= this.#snapshot();
    return this.#json;
  }

  /** This instance committed transaction `xid`, which changed the stock. */
  wrote(xid: string | null | undefined): void {
    if (xid && this.#synced && !this.#seen.has(xid)) this.#pending.set(xid, Date.now());
  }

  /** Every later stock change and pick, from any instance; returns the unsubscribe function. */
  subscribe(fn: (event: FeedEvent) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** In name order ("C" collation), like the database's answer, whatever order changes came in. */
  #snapshot(): string {
    return JSON.stringify(
      Object.fromEntries([...this.#stock].sort(([a], [b]) => compareNames(a, b))),
    );
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const { settings } = this.opts;
    const client = new pg.Client({
      connectionString: settings.DATABASE_URL,
      connectionTimeoutMillis: settings.PG_CONNECT_TIMEOUT_MS,
      statement_timeout: settings.PG_STATEMENT_TIMEOUT_MS,
      query_timeout: settings.PG_STATEMENT_TIMEOUT_MS + 1_000,
      keepAlive: true,
      application_name: "chillybin-stock-feed",
    });
    this.#client = client;
    this.#buffered = [];
    client.on("notification", ({ payload }) => {
      if (client !== this.#client || payload === undefined) return;
      if (this.#buffered) this.#buffered.push(payload);
      else this.#apply(payload);
    });
    client.on("error", (err) => this.#lost(err, client));
    client.on("end", () => this.#lost(new Error("connection ended"), client));
    try {
      await client.connect();
      await client.query("LISTEN stock_changed");
      await this.#load(client);
      if (this.#failures > 0) this.opts.logger.info("stock feed reconnected");
      this.#failures = 0;
      clearInterval(this.#ping);
      // A connection that silently stopped answering (a dead network) would never say so.
      this.#ping = setInterval(() => {
        client.query("SELECT 1").catch((err: Error) => this.#lost(err, client));
      }, PING_EVERY_MS).unref();
    } catch (err) {
      this.#lost(err as Error, client);
    }
  }

  /** Reads the whole stock, then applies what was announced meanwhile (newer wins, in order). */
  async #load(client: pg.Client): Promise<void> {
    this.#synced = false;
    this.#connected.set(0);
    this.#buffered ??= [];
    const stock = await listStock(client);
    if (client !== this.#client) return;
    this.#stock = new Map(Object.entries(stock));
    const buffered = this.#buffered;
    this.#buffered = undefined;
    this.#pending.clear();
    this.#synced = true;
    this.#connected.set(1);
    for (const payload of buffered) this.#apply(payload);
    this.#publishStock();
  }

  #apply(payload: string): void {
    let message: {
      xid?: string;
      set?: Record<string, number>;
      deleted?: string[];
      reload?: boolean;
      pick?: unknown;
    };
    try {
      message = JSON.parse(payload);
    } catch {
      return;
    }
    if (message.pick) {
      this.#publish({ type: "pick", json: JSON.stringify(message.pick) });
      return;
    }
    if (message.xid) {
      this.#pending.delete(message.xid);
      this.#seen.add(message.xid);
      // A write's own announcement arrives within moments: only recent ids matter.
      if (this.#seen.size > 1_000) this.#seen.delete(this.#seen.values().next().value as string);
    }
    if (message.reload) {
      const client = this.#client;
      if (client) this.#load(client).catch((err: Error) => this.#lost(err, client));
      return;
    }
    for (const [name, quantity] of Object.entries(message.set ?? {}))
      this.#stock.set(name, quantity);
    for (const name of message.deleted ?? []) this.#stock.delete(name);
    this.#json = undefined;
    if (this.#subscribers.size > 0) this.#publishStock();
  }

  #publishStock(): void {
    this.#json = this.#snapshot();
    this.#publish({ type: "stock", json: this.#json });
  }

  #publish(event: FeedEvent): void {
    for (const fn of this.#subscribers) fn(event);
  }

  /** The connection failed or ended: serve from the database until a new one has synced. */
  #lost(err: Error, client = this.#client): void {
    if (client !== this.#client || client === undefined) return;
    this.#client = undefined;
    this.#synced = false;
    this.#buffered = undefined;
    this.#pending.clear();
    this.#connected.set(0);
    clearInterval(this.#ping);
    client.end().catch(() => {});
    if (this.#closed) return;
    if (++this.#failures === 1) {
      this.opts.logger.warn(
        { err: { message: err.message, code: (err as { code?: string }).code } },
        "stock feed lost; serving stock from the database while reconnecting",
      );
    }
    const wait =
      Math.min(5_000, 100 * 2 ** Math.min(this.#failures, 6)) * (0.5 + Math.random() / 2);
    this.#retry = setTimeout(() => void this.#connect(), wait).unref();
  }
}
