import pg from "pg";
import { type Logger, type Metrics, promClient } from "tpi";
import { backoff, connection, describe, type PoolSettings } from "./db";
import { compareNames, listStock } from "./stock";

type Message = { xid?: string; set?: Record<string, number>; deleted?: string[]; reload?: boolean };

/**
 * The stock in memory from LISTEN stock_changed (the ingredients triggers and the pick statements),
 * so GET / and GET /events need no query and every instance learns of every other's changes.
 * Read-your-writes: until the announcement of a transaction passed to `wrote()` arrives, or while
 * the connection is down or not yet synced, `currentJson()` says "ask the database".
 */
export class StockFeed {
  /** Each stock change (the whole stock) and pick, as JSON serialised once for every stream. */
  onEvent: ((type: "stock" | "pick", json: string) => void) | undefined;
  #client: pg.Client | undefined;
  #stock = new Map<string, number>();
  #json: string | undefined; // serialised once per change, not once per GET /
  #synced = false;
  #buffered: string[] | undefined; // announced while the stock is read: applied after it
  readonly #pending = new Map<string, number>(); // our writes, not announced yet
  readonly #seen = new Set<string>(); // announced before their wrote() (recent ones)
  #closed = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: { settings: PoolSettings; logger: Logger; metrics: Metrics }) {
    const synced = () => this.#synced;
    new promClient.Gauge({
      name: "chillybin_stock_feed_connected",
      help: "1 while the LISTEN connection that keeps the in-memory stock fresh is up and synced.",
      registers: [opts.metrics.registry],
      collect() {
        this.set(synced() ? 1 : 0);
      },
    });
    void this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.onEvent = undefined;
    await this.#lost(new Error("closed"));
  }

  /** The whole stock as JSON from memory, or undefined when only the database can say for sure. */
  currentJson(): string | undefined {
    if (!this.#synced) return undefined;
    const oldest = this.#pending.values().next().value;
    // A write of ours not announced within 5 s means the feed is broken.
    if (oldest !== undefined && Date.now() - oldest > 5_000)
      void this.#lost(new Error("own write not announced"));
    if (oldest !== undefined) return undefined;
    this.#json ??= this.#snapshot();
    return this.#json;
  }

  /** This instance committed transaction `xid`, which changed the stock. */
  wrote(xid: string | undefined): void {
    if (xid && this.#synced && !this.#seen.has(xid)) this.#pending.set(xid, Date.now());
  }

  /** In name order ("C" collation), like the database's answer, whatever order changes came in. */
  #snapshot(): string {
    const sorted = [...this.#stock].sort(([a], [b]) => compareNames(a, b));
    return JSON.stringify(Object.fromEntries(sorted));
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client(connection(this.opts.settings, "chillybin-stock-feed"));
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
      // A connection that silently stopped answering (a dead network) would never say so.
      const ping = () => client.query("SELECT 1").catch((err: Error) => this.#lost(err, client));
      this.#timer = setInterval(ping, 30_000).unref();
    } catch (err) {
      await this.#lost(err as Error, client);
    }
  }

  /** Reads the whole stock, then applies what was announced meanwhile (newer wins, in order). */
  async #load(client: pg.Client): Promise<void> {
    this.#synced = false;
    this.#buffered ??= [];
    const stock = await listStock(client);
    if (client !== this.#client) return;
    this.#stock = new Map(Object.entries(stock));
    const buffered = this.#buffered;
    this.#buffered = undefined;
    this.#pending.clear();
    this.#synced = true;
    for (const payload of buffered) this.#apply(payload);
    this.#json = this.#snapshot();
    this.onEvent?.("stock", this.#json);
  }

  #apply(payload: string) {
    let message: Message & { pick?: unknown };
    try {
      message = JSON.parse(payload);
    } catch {
      return;
    }
    if (message.pick) return this.onEvent?.("pick", JSON.stringify(message.pick));
    if (message.xid) {
      this.#pending.delete(message.xid);
      this.#seen.add(message.xid);
      if (this.#seen.size > 1_000) this.#seen.delete(this.#seen.values().next().value as string);
    }
    const client = this.#client;
    if (message.reload && client)
      return void this.#load(client).catch((err: Error) => this.#lost(err, client));
    for (const [name, quantity] of Object.entries(message.set ?? {}))
      this.#stock.set(name, quantity);
    for (const name of message.deleted ?? []) this.#stock.delete(name);
    this.#json = this.onEvent && this.#snapshot();
    if (this.#json) this.onEvent?.("stock", this.#json);
  }

  /** Forgets the connection (serve from the database until a new one has synced), then retries. */
  async #lost(err: Error, client = this.#client): Promise<void> {
    if (client !== this.#client || client === undefined) return;
    this.#client = this.#buffered = undefined;
    this.#synced = false;
    this.#pending.clear();
    clearTimeout(this.#timer);
    const ended = client.end().catch(() => {});
    if (this.#closed) return ended;
    const message = "stock feed lost; serving stock from the database while reconnecting";
    if (++this.#failures === 1) this.opts.logger.warn({ err: describe(err) }, message);
    this.#timer = setTimeout(() => void this.#connect(), backoff(this.#failures, 5_000)).unref();
  }
}
