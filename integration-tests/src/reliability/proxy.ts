/**
 * A small round-robin HTTP proxy standing in for a Kubernetes Service in front of several
 * instances: it sends each request to the next backend whose `/ready` answered 200 at the last
 * poll (every ~100 ms), and retries on another backend only when the connection was refused —
 * the request certainly never arrived, so even a non-idempotent one may go elsewhere. Anything
 * else that goes wrong is passed on to the client as it happened (a 502), never hidden.
 *
 * Bodies are buffered (the test's requests are small) so a refused request can be re-sent.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface BackendStats {
  url: string;
  ready: boolean;
  /** Requests this backend answered (any status). */
  served: number;
}

export interface ProxyStats {
  /** Requests re-sent to another backend after a refused connection. */
  retriedAfterRefusal: number;
  /** Requests answered 502/503 by the proxy itself (no ready backend, or a backend failed mid-way). */
  failed: number;
}

export interface ReadyProxy {
  url: string;
  /** Adds an instance; it takes traffic once its `/ready` says 200. */
  add(url: string): void;
  /** Removes an instance (its pod is gone). */
  remove(url: string): void;
  /** Resolves once `url` is in rotation (its /ready answered 200 to the proxy). */
  waitUntilInRotation(url: string, timeoutMs?: number): Promise<void>;
  backends(): BackendStats[];
  /** Every backend that was ever added, with what it served. */
  history(): BackendStats[];
  readonly stats: ProxyStats;
  close(): Promise<void>;
}

interface Backend extends BackendStats {
  host: string;
  port: number;
  polling: boolean;
}

const MAX_BODY_BYTES = 1024 * 1024;
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
]);

export async function startReadyProxy(
  options: { pollMs?: number; name?: string } = {},
): Promise<ReadyProxy> {
  const pollMs = options.pollMs ?? 100;
  const name = options.name ?? "proxy";
  const backends: Backend[] = [];
  const everyBackend: Backend[] = [];
  const stats: ProxyStats = { retriedAfterRefusal: 0, failed: 0 };
  const sockets = new Set<Socket>();
  let next = 0;
  let closed = false;

  const poll = (backend: Backend) => {
    if (backend.polling) return;
    backend.polling = true;
    // A generous timeout: a /ready slowed by a loaded machine must not take a healthy instance
    // out of rotation (then the proxy answers 503 itself). Refusals and 503s still count at once.
    const request = http.get(
      { host: backend.host, port: backend.port, path: "/ready", agent: false, timeout: 10_000 },
      (response) => {
        response.resume();
        response.once("end", () => {
          backend.ready = response.statusCode === 200;
          backend.polling = false;
        });
        response.once("error", () => {
          backend.ready = false;
          backend.polling = false;
        });
      },
    );
    request.once("timeout", () => request.destroy(new Error("timed out")));
    request.once("error", () => {
      backend.ready = false;
      backend.polling = false;
    });
  };
  const poller = setInterval(() => {
    for (const backend of backends) poll(backend);
  }, pollMs);

  /** The next ready backend in round-robin order, skipping those already tried. */
  const choose = (tried: Set<Backend>): Backend | undefined => {
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[(next + i) % backends.length] as Backend;
      if (backend.ready && !tried.has(backend)) {
        next = (next + i + 1) % backends.length;
        return backend;
      }
    }
    return undefined;
  };

  const server = http.createServer(async (req, res) => {
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      res.destroy();
      return;
    }
    const tried = new Set<Backend>();
    for (;;) {
      const backend = choose(tried);
      if (!backend) {
        stats.failed++;
        problem(res, 503, `${name}: no ready backend`);
        return;
      }
      tried.add(backend);
      const outcome = await forward(backend, req, body, res);
      if (outcome !== "refused") return;
      stats.retriedAfterRefusal++;
    }
  });

  /** Relays one request to `backend`; "refused" means nothing was sent and nothing answered. */
  const forward = (
    backend: Backend,
    req: http.IncomingMessage,
    body: Buffer,
    res: http.ServerResponse,
  ) =>
    new Promise<"done" | "refused">((resolve) => {
      const headers: http.OutgoingHttpHeaders = {};
      for (const [key, value] of Object.entries(req.headers)) {
        if (!HOP_BY_HOP.has(key) && value !== undefined) headers[key] = value;
      }
      headers["content-length"] = String(body.length);
      let connected = false;
      const upstream = http.request({
        host: backend.host,
        port: backend.port,
        method: req.method,
        path: req.url,
        headers,
        agent: false, // one connection per request: a draining instance's keep-alive cannot bite
        timeout: 60_000,
      });
      upstream.once("socket", (socket) => {
        socket.once("connect", () => {
          connected = true;
        });
      });
      upstream.once("timeout", () => upstream.destroy(new Error("backend timed out")));
      upstream.once("error", (error: NodeJS.ErrnoException) => {
        if (!connected && error.code === "ECONNREFUSED") {
          backend.ready = false; // until the next poll says otherwise
          resolve("refused");
          return;
        }
        stats.failed++;
        if (!res.headersSent)
          problem(res, 502, `${name}: ${backend.url} failed: ${error.code ?? error.message}`);
        else res.destroy();
        resolve("done");
      });
      upstream.once("response", (answer) => {
        backend.served++;
        const out: http.OutgoingHttpHeaders = {};
        for (const [key, value] of Object.entries(answer.headers)) {
          if (!HOP_BY_HOP.has(key) && value !== undefined) out[key] = value;
        }
        res.writeHead(answer.statusCode ?? 502, out);
        answer.pipe(res);
        answer.once("aborted", () => res.destroy());
        answer.once("end", () => resolve("done"));
        answer.once("error", () => {
          res.destroy();
          resolve("done");
        });
      });
      upstream.end(body);
    });

  server.keepAliveTimeout = 60_000; // a Service does not close its clients' connections
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    add(url) {
      const parsed = new URL(url);
      const backend: Backend = {
        url,
        host: parsed.hostname,
        port: Number(parsed.port),
        ready: false,
        served: 0,
        polling: false,
      };
      backends.push(backend);
      everyBackend.push(backend);
      poll(backend);
    },
    remove(url) {
      const i = backends.findIndex((b) => b.url === url);
      if (i >= 0) backends.splice(i, 1);
    },
    async waitUntilInRotation(url, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!backends.some((b) => b.url === url && b.ready)) {
        if (Date.now() > deadline || closed) {
          throw new Error(`${name}: ${url} did not become ready within ${timeoutMs} ms`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    backends: () => backends.map(({ url, ready, served }) => ({ url, ready, served })),
    history: () => everyBackend.map(({ url, ready, served }) => ({ url, ready, served })),
    close() {
      closed = true;
      clearInterval(poller);
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy(new Error("body too large for the test proxy"));
      else chunks.push(chunk);
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

function problem(res: http.ServerResponse, status: number, title: string) {
  const body = JSON.stringify({ type: "about:blank", title, status });
  res.writeHead(status, {
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}
