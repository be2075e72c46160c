import net from "node:net";

/**
 * The one fault-injecting TCP forwarder of the tests, in front of a real PostgreSQL or a real
 * service: take it away (close: refuse new connections and cut open ones) and bring it back on the
 * same address (open); or count and cut only the connections whose request starts a certain way
 * (`GET /events`), a dropped network as the client sees it. Bytes pass untouched.
 */
export class TcpProxy {
  port = 0;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Client connections by the first bytes they sent (latin1), for `connections` and `cut`. */
  private readonly clients = new Map<net.Socket, string>();
  private readonly firsts: string[] = [];

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.once("close", () => this.sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      this.clients.set(client, "");
      client.once("close", () => this.clients.delete(client));
      client.once("data", (first: Buffer) => {
        const start = first.toString("latin1", 0, 256);
        this.clients.set(client, start);
        this.firsts.push(start);
      });
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections open now (`"open"`) or ever accepted (`"seen"`) whose first bytes start with `prefix`. */
  connections(prefix: string, which: "open" | "seen" = "open"): number {
    const starts = which === "open" ? [...this.clients.values()] : this.firsts;
    return starts.filter((s) => s.startsWith(prefix)).length;
  }

  /** Destroys the open connections whose first bytes start with `prefix`. */
  cut(prefix: string): void {
    for (const [socket, start] of this.clients) if (start.startsWith(prefix)) socket.destroy();
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
