/**
 * An HTTP proxy between jafflr and chillybin that can lose an answer *after* chillybin has given
 * it — the order is committed, the caller never hears — the failure idempotent retries exist
 * for. Everything else is relayed untouched, and every exchange is recorded.
 *
 *   const proxy = await startLossyProxy(chillybin.url);
 *   proxy.next("/v2/pick", { drop: true });            // destroy the caller's socket instead
 *   proxy.next("/v2/pick", { delayMs: 2_000 });         // hold the answer back (caller times out)
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Exchange {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** chillybin's answer, whether or not the caller got it. */
  status: number;
  responseHeaders: http.IncomingHttpHeaders;
  responseBody: string;
  /** What happened to the answer. */
  fate: "relayed" | "dropped" | "delayed";
}

export interface Fault {
  /** Destroy the caller's connection instead of relaying the answer. */
  drop?: boolean;
  /** Relay the answer only after this long (if the caller is still there). */
  delayMs?: number;
}

export interface LossyProxy {
  url: string;
  readonly exchanges: Exchange[];
  /** The next request to `path` (query string ignored) suffers `fault`. */
  next(path: string, fault: Fault): void;
  close(): Promise<void>;
}

export async function startLossyProxy(target: string): Promise<LossyProxy> {
  const upstream = new URL(target);
  const exchanges: Exchange[] = [];
  const faults = new Map<string, Fault[]>();
  const sockets = new Set<import("node:net").Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer(async (req, res) => {
    const body = await readAll(req);
    const path = (req.url ?? "/").split("?")[0] as string;
    const fault = faults.get(path)?.shift();
    const forwarded = http.request({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: upstream.host, connection: "close" },
      agent: false,
    });
    forwarded.once("error", (error) => {
      res.destroy(error);
    });
    forwarded.once("response", async (answer) => {
      const responseBody = await readAll(answer);
      const fate = fault?.drop ? "dropped" : fault?.delayMs ? "delayed" : "relayed";
      exchanges.push({
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: body.toString("utf8"),
        status: answer.statusCode ?? 0,
        responseHeaders: answer.headers,
        responseBody: responseBody.toString("utf8"),
        fate,
      });
      if (fault?.drop) {
        // The whole answer arrived, so whatever chillybin did is committed; the caller hears nothing.
        req.socket.destroy();
        return;
      }
      const relay = () => {
        if (res.destroyed || req.socket.destroyed) return;
        const headers = { ...answer.headers };
        delete headers.connection;
        delete headers["keep-alive"];
        delete headers["transfer-encoding"];
        headers["content-length"] = String(responseBody.length);
        res.writeHead(answer.statusCode ?? 502, headers);
        res.end(responseBody);
      };
      if (fault?.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          relay();
        }, fault.delayMs);
        timers.add(timer);
      } else {
        relay();
      }
    });
    forwarded.end(body);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    next(path, fault) {
      const queue = faults.get(path) ?? [];
      queue.push(fault);
      faults.set(path, queue);
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.once("end", () => resolve(Buffer.concat(chunks)));
    stream.once("error", reject);
  });
}
