import { createServer, type Server } from "node:net";

const listen = (server: Server, port: number, host: string) =>
  new Promise<number>((resolve, reject) => {
    server.once("error", reject).listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    });
  });
const close = (server: Server) => new Promise((r) => server.close(r));

/** A TCP port nobody is listening on right now (the OS picks it). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return (await freePorts(1, host))[0] as number;
}

/** `count` distinct free ports, all held at once while picked, so no two are the same. */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer().unref());
  try {
    return await Promise.all(servers.map((s) => listen(s, 0, host)));
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** Whether `port` can be bound on `host` (false when something already listens there). */
export async function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  const server = createServer().unref();
  try {
    await listen(server, port, host);
    await close(server);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES") return false;
    throw error;
  }
}
