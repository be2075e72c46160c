/**
 * The one fault-injecting proxy of the tests: a TCP forwarder in front of a real PostgreSQL or real
 * services. It can go away and come back on the same port, cut connections that began a certain
 * way, lose the answer to the next matching request after the backend gave it, and record every
 * HTTP exchange. With several backends it is a Kubernetes Service stand-in: round robin over those
 * whose `/ready` answered 200 at the last poll; a refused connection is tried on the next.
 */
import net from "node:net";
import { freePort } from "./net";
import { get } from "./service-process";

/** `served`: connections it accepted. */
export type Backend = { url: string; host: string; port: number; served: number } & {
  ready: boolean;
  removed: boolean;
};
export interface Exchange {
  /** The request's first bytes (latin1): request line, headers, a small body. */
  request: string;
  response: string;
  fate: "relayed" | "dropped";
}
type Target = string | { host: string; port: number };

const HTTP_REQUEST = /^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/;

export class TcpProxy {
  port = 0;
  readonly backends: Backend[] = [];
  readonly exchanges: Exchange[] = [];
  /** Requests it could not deliver or whose answer broke off (what a client would see fail). */
  failed = 0;
  private server: net.Server | undefined;
  private poller: NodeJS.Timeout | undefined;
  private turn = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly clients = new Map<net.Socket, string>();
  private readonly drops: string[] = [];

  /** `ready`: take only backends whose GET /ready answers 200 (polled every 100 ms). */
  constructor(
    targets: Target | Target[] = [],
    private readonly options: { ready?: boolean } = {},
  ) {
    for (const target of [targets].flat()) this.add(target);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  add(target: Target): void {
    const { hostname: host, port } =
      typeof target === "string" ? new URL(target) : { hostname: target.host, port: target.port };
    const url = `http://${host}:${port}`;
    this.backends.push({
      url,
      host,
      port: Number(port),
      served: 0,
      ready: !this.options.ready,
      removed: false,
    });
  }

  /** Takes a backend out of rotation (its pod is gone); it stays in `backends` with what it served. */
  remove(url: string): void {
    for (const backend of this.backends) if (backend.url === url) backend.removed = true;
  }

  /** The answer to the next request whose first bytes start with `prefix` is lost after it arrived. */
  loseNextAnswer(prefix: string): void {
    this.drops.push(prefix);
  }

  /** Connections open now whose first bytes start with `prefix`. */
  connections(prefix: string): number {
    return [...this.clients.values()].filter((first) => first.startsWith(prefix)).length;
  }

  /** Destroys the open connections whose first bytes start with `prefix`. */
  cut(prefix: string): void {
    for (const [socket, first] of this.clients) if (first.startsWith(prefix)) socket.destroy();
  }

  /** Listens on a freePort, the same one again after close(): nothing else can take it meanwhile. */
  async open(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true }, (client) => this.relay(client));
    this.port ||= await freePort();
    await new Promise<void>((resolve, reject) =>
      server.once("error", reject).listen(this.port, "127.0.0.1", resolve),
    );
    this.server = server;
    if (this.options.ready) this.poller = setInterval(() => this.poll(), 100);
  }

  /** Refuses new connections and cuts the open ones. */
  async close(): Promise<void> {
    clearInterval(this.poller);
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  private poll(): void {
    // A generous timeout: a /ready slowed by a busy machine must not take a healthy backend out.
    for (const backend of this.backends.filter((b) => !b.removed))
      get(new URL("/ready", backend.url), 10_000).then(
        (reply) => (backend.ready = reply.status === 200),
        () => (backend.ready = false),
      );
  }

  private track(socket: net.Socket): net.Socket {
    this.sockets.add(socket);
    return socket.once("close", () => this.sockets.delete(socket));
  }

  private relay(client: net.Socket): void {
    this.track(client).on("error", () => upstream?.destroy());
    this.clients.set(client, "");
    let exchange: Exchange | undefined;
    let upstream: net.Socket | undefined;
    const early: Buffer[] = [];
    client.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1", 0, 4096);
      if (!this.clients.get(client)) this.clients.set(client, text);
      if (HTTP_REQUEST.test(text)) {
        const drop = this.drops.findIndex((prefix) => text.startsWith(prefix));
        if (drop >= 0) this.drops.splice(drop, 1);
        exchange = { request: text, response: "", fate: drop >= 0 ? "dropped" : "relayed" };
        this.exchanges.push(exchange);
      }
      if (upstream) upstream.write(chunk);
      else early.push(chunk);
    });
    let ended = false; // the client may finish sending before the backend answers the connect
    client.on("end", () => {
      ended = true;
      upstream?.end();
    });
    client.once("close", () => {
      this.clients.delete(client);
      upstream?.destroy();
    });
    const tried = new Set<Backend>();
    const attempt = () => {
      const live = this.backends.filter((b) => b.ready && !b.removed && !tried.has(b));
      const backend = live[this.turn++ % live.length];
      if (!backend) {
        this.failed++;
        client.destroy();
        return;
      }
      tried.add(backend);
      const socket = this.track(
        net.connect({ port: backend.port, host: backend.host, allowHalfOpen: true }),
      );
      socket.once("connect", () => {
        upstream = socket;
        backend.served++;
        for (const chunk of early.splice(0)) socket.write(chunk);
        if (ended) socket.end();
      });
      socket.on("data", (chunk: Buffer) => {
        if (exchange && exchange.response.length < 4096)
          exchange.response += chunk.toString("latin1");
        if (exchange?.fate !== "dropped") client.write(chunk);
        else client.destroy();
      });
      socket.on("end", () => client.end());
      socket.once("error", (error: NodeJS.ErrnoException) => {
        if (upstream !== socket && error.code === "ECONNREFUSED") {
          if (this.options.ready) backend.ready = false; // until the next poll says otherwise
          return attempt();
        }
        if (exchange && !exchange.response) this.failed++;
        client.destroy();
      });
    };
    attempt();
  }
}
