import { readFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";

const listen = (server: Server, at: { port: number; host: string } | { path: string }) =>
  new Promise<void>((resolve, reject) => server.once("error", reject).listen(at, resolve));

// The OS's ephemeral range is where every port-0 listener and every outgoing connection of every
// process gets its port, so a port picked there, released and bound later by a child (or again
// after a restart) can be gone meanwhile. freePort's ports come from outside it instead.
const [low, high] = (() => {
  try {
    return readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/).map(Number);
  } catch {
    return [49152, 65535]; // IANA's, which macOS uses
  }
})() as [number, number];
const [first, last] =
  low > 11_000 ? [10_000, low - 1] : high < 60_000 ? [high + 1, 65_535] : [1024, low - 1];
let turn = process.pid;

/**
 * A port nobody listens on, which stays this process's until it exits: claimed by an abstract
 * Unix socket named after it (Linux frees it when the process dies), so concurrent test processes
 * never get the same one, however late its user binds it.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let tries = first; tries <= last; tries++) {
    const port = first + (turn++ % (last - first + 1));
    const claimed =
      process.platform !== "linux" ||
      (await listen(createServer().unref(), { path: `\0testkit-port-${port}` }).then(
        () => true,
        () => false,
      ));
    if (claimed && (await isPortFree(port, host))) return port;
  }
  throw new Error(`no free port from ${first} to ${last}`);
}

/** Whether `port` can be bound on `host` (false when something already listens there). */
export async function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  const server = createServer().unref();
  try {
    await listen(server, { port, host });
    await new Promise((resolve) => server.close(resolve));
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES") return false;
    throw error;
  }
}

/** A plain TCP connect: "connected", "TIMEOUT" (a stalled machine: no verdict) or the error code. */
export function tryConnect(port: number): Promise<string> {
  const socket = connect(port, "127.0.0.1");
  return new Promise<string>((resolve) => {
    socket.setTimeout(1_000, () => resolve("TIMEOUT"));
    socket.once("connect", () => resolve("connected"));
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  }).finally(() => socket.destroy());
}
