import pg from "pg";
import { type Logger, type Metrics, promClient } from "tpi";
import type { PoolSettings } from "./db";
import { listStock, type Stock } from "./stock";
import { compareNames } from "./validation";

/** What a pick announces (migration 1764000002000): enough for GET /events' `pick` event. */
export interface PickEvent {
  via: "v1" | "v2";
  items: { ingredient: string; quantity: number }[];
  customer?: string;
  orderId?: string;
}

/** `json` is the data serialised once, however many subscribers send it on. */
export type FeedEvent =
  | { type: "stock"; stock: Stock; json: string }
  | { type: "pick"; pick: PickEvent; json: string };

/** The channel the ingredients triggers and the pick statements NOTIFY. */
const CHANNEL = "stock_changed";

/** A write of ours whose announcement has not come back after this long means the feed is broken. */
const PENDING_LIMIT_MS = 5_000;
const PING_EVERY_MS = 30_000;

/**
 * The stock, kept in memory from PostgreSQL LISTEN/NOTIFY on one dedicated connection, so GET /
 * and GET /events need no query, and every instance learns of every other instance's changes.
 *
 * Read-your-writes: a write made by this instance passes its transaction id to `wrote()`; until
 * that transaction's announcement arrives, `current()` says "ask the database". While the
 * connection is down (or not yet synced) it says the same, and the feed reconnects with backoff.
 */
export class StockFeed {
  private client: pg.Client | undefined;
  private stock = new Map<string, number>();
  /** The stock as GET / sends it, serialised once per change rather than once per request. */
  private json: string | undefined;
  private synced = false;
  private buffered: string[] | undefined;
  private readonly pending = new Map<string, number>();
  private readonly seen = new Set<string>();
  private readonly subscribers = new Set<(event: FeedEvent) => void>();
  private closed = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly connected: promClient.Gauge;

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
    this.connected = new promClient.Gauge({
      name: "chillybin_stock_feed_connected",
      help: "1 while the LISTEN connection that keeps the in-memory stock fresh is up and synced.",
      registers: [opts.metrics.registry],
    });
    this.connected.set(0);
  }

  start(): void {
    void this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.subscribers.clear();
    const client = this.client;
    this.client = undefined;
    this.synced = false;
    await client?.end().catch(() => {});
  }

  /** The whole stock as JSON from memory, or undefined when only the database can say for sure. */
  currentJson(): string | undefined {
    if (!this.synced) return undefined;
    if (this.pending.size > 0) {
      const oldest = this.pending.values().next().value as number;
      if (Date.now() - oldest > PENDING_LIMIT_MS) this.lost(new Error("own write not announced"));
      return undefined;
    }
    this.json ??= JSON.stringify(this.snapshot());
    return this.json;
  }

  /** This instance committed transaction `xid`, which changed the stock. */
  wrote(xid: string | null | undefined): void {
    if (!xid || !this.synced || this.seen.has(xid)) return;
    this.pending.set(xid, Date.now());
  }

  /** Every later stock change and pick, from any instance; returns the unsubscribe function. */
  subscribe(fn: (event: FeedEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** In name order ("C" collation), like the database's answer, whatever order changes came in. */
  private snapshot(): Stock {
    return Object.fromEntries([...this.stock].sort(([a], [b]) => compareNames(a, b)));
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const { settings, logger } = this.opts;
    const client = new pg.Client({
      connectionString: settings.DATABASE_URL,
      connectionTimeoutMillis: settings.PG_CONNECT_TIMEOUT_MS,
      statement_timeout: settings.PG_STATEMENT_TIMEOUT_MS,
      query_timeout: settings.PG_STATEMENT_TIMEOUT_MS + 1_000,
      keepAlive: true,
      application_name: "chillybin-stock-feed",
    });
    this.client = client;
    this.buffered = [];
    client.on("notification", (msg) => {
      if (client !== this.client || msg.payload === undefined) return;
      if (this.buffered) this.buffered.push(msg.payload);
      else this.apply(msg.payload);
    });
    client.on("error", (err) => this.lost(err, client));
    client.on("end", () => this.lost(new Error("connection ended"), client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      await this.load(client);
      if (this.failures > 0) logger.info("stock feed reconnected");
      this.failures = 0;
      clearInterval(this.pingTimer);
      // A connection that silently stopped answering (a dead network) would never say so.
      this.pingTimer = setInterval(() => {
        client.query("SELECT 1").catch((err: Error) => this.lost(err, client));
      }, PING_EVERY_MS);
      this.pingTimer.unref();
    } catch (err) {
      this.lost(err as Error, client);
    }
  }

  /** Reads the whole stock, then applies what was announced meanwhile (newer wins in order). */
  private async load(client: pg.Client): Promise<void> {
    this.synced = false;
    this.connected.set(0);
    this.buffered ??= [];
    const stock = await listStock(client);
    if (client !== this.client) return;
    this.stock = new Map(Object.entries(stock));
    this.json = undefined;
    const buffered = this.buffered;
    this.buffered = undefined;
    this.pending.clear();
    this.synced = true;
    this.connected.set(1);
    for (const payload of buffered) this.apply(payload);
    this.publishStock();
  }

  private apply(payload: string): void {
    let message: {
      xid?: string;
      set?: Record<string, number>;
      deleted?: string[];
      reload?: boolean;
      pick?: PickEvent;
    };
    try {
      message = JSON.parse(payload);
    } catch {
      return;
    }
    if (message.pick) {
      this.publish({ type: "pick", pick: message.pick, json: JSON.stringify(message.pick) });
      return;
    }
    if (message.xid) {
      this.pending.delete(message.xid);
      this.seen.add(message.xid);
      // Only recent ids matter (a write's own announcement arrives within moments).
      if (this.seen.size > 1_000) this.seen.delete(this.seen.values().next().value as string);
    }
    if (message.reload) {
      const client = this.client;
      if (client) this.load(client).catch((err: Error) => this.lost(err, client));
      return;
    }
    for (const [name, quantity] of Object.entries(message.set ?? {}))
      this.stock.set(name, quantity);
    for (const name of message.deleted ?? []) this.stock.delete(name);
    this.json = undefined;
    if (this.subscribers.size > 0) this.publishStock();
  }

  private publishStock(): void {
    const stock = this.snapshot();
    this.json = JSON.stringify(stock);
    this.publish({ type: "stock", stock, json: this.json });
  }

  private publish(event: FeedEvent): void {
    for (const fn of this.subscribers) fn(event);
  }

  /** The connection failed or ended: serve from the database until a new one has synced. */
  private lost(err: Error, client = this.client): void {
    if (client !== this.client || client === undefined) return;
    this.client = undefined;
    this.synced = false;
    this.buffered = undefined;
    this.pending.clear();
    this.connected.set(0);
    clearInterval(this.pingTimer);
    client.end().catch(() => {});
    if (this.closed) return;
    this.failures += 1;
    if (this.failures === 1) {
      this.opts.logger.warn(
        { err: { message: err.message, code: (err as { code?: string }).code } },
        "stock feed lost; serving stock from the database while reconnecting",
      );
    }
    const wait = Math.min(5_000, 100 * 2 ** Math.min(this.failures, 6)) * (0.5 + Math.random() / 2);
    this.retryTimer = setTimeout(() => void this.connect(), wait);
    this.retryTimer.unref();
  }
}
