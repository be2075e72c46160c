/**
 * A TCP relay in front of chillybin that knows which connections carry `GET /events`, so a test
 * can see how many event streams jafflr holds open to chillybin (one per jafflr, shared by all
 * its stall pages; none when no page is open) and cut them to force a reconnect. Bytes are
 * relayed untouched: chillybin itself answers everything.
 */
import net from "node:net";

export interface EventsRelay {
  url: string;
  /** `GET /events` connections open now. */
  openStreams(): number;
  /** `GET /events` connections ever accepted. */
  streamsSeen(): number;
  /** Destroys every open /events connection: a dropped network, as jafflr sees it. */
  cutStreams(): void;
  close(): Promise<void>;
}

export async function startEventsRelay(target: string): Promise<EventsRelay> {
  const upstream = new URL(target);
  const sockets = new Set<net.Socket>();
  const streams = new Set<net.Socket>();
  let seen = 0;
  const server = net.createServer((client) => {
    const chillybin = net.connect(Number(upstream.port), upstream.hostname);
    sockets.add(client);
    const done = () => {
      client.destroy();
      chillybin.destroy();
      sockets.delete(client);
      streams.delete(client);
    };
    client.once("data", (first: Buffer) => {
      if (first.toString("latin1").startsWith("GET /events")) {
        streams.add(client);
        seen += 1;
      }
    });
    client.pipe(chillybin).pipe(client);
    client.on("error", done).on("close", done);
    chillybin.on("error", done).on("close", done);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    openStreams: () => streams.size,
    streamsSeen: () => seen,
    cutStreams() {
      for (const s of streams) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
