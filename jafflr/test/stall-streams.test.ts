/**
 * The cap on stall pages' event streams, against jafflr as a real process (so its memory is its
 * own): past STALL_STREAMS_MAX a stream is a 503 problem with Retry-After, a flood of clients that
 * never read leaves its memory bounded, and /health and /ready answer all the while.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import { after, before, it } from "node:test";
import { type ServiceProcess, startService, stopAll } from "testkit/service-process";
import { eventually, faultServer } from "./helpers";

const [CAP, FLOOD] = [20, 3_000];
const sockets: net.Socket[] = [];
let chillybin: Awaited<ReturnType<typeof faultServer>>;
let jafflr: ServiceProcess;

before(async () => {
  chillybin = await faultServer((_req, res) => res.end("{}"));
  const env = { CHILLYBIN_URL: chillybin.url, STALL_STREAMS_MAX: String(CAP) };
  jafflr = await startService("jafflr", env);
});
after(async () => {
  for (const socket of sockets) socket.destroy();
  await stopAll();
  await chillybin.close();
});

const get = (path: string) =>
  fetch(new URL(path, jafflr.url), { signal: AbortSignal.timeout(10_000) });
const rssMiB = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${jafflr.child.pid}/status`, "utf8"))?.[1]) /
  1024;
const streams = async () =>
  Number(/^stall_page_streams(?:{[^}]*})? (\d+)/m.exec(await (await get("/metrics")).text())?.[1]);

/** A client that asks for the page's stream and never reads a byte of the answer. */
const neverReads = () =>
  new Promise<void>((resolve, reject) => {
    const socket = net.connect(jafflr.port, "127.0.0.1", () => {
      socket.pause();
      socket.write("GET /stall/events HTTP/1.1\r\nHost: jafflr\r\n\r\n", () => resolve());
    });
    socket.on("error", reject); // once resolved, errors (a reset) are only swallowed
    sockets.push(socket);
  });

it(`holds ${CAP} streams; ${FLOOD} more that never read get a 503 and leave memory and probes alone`, async () => {
  await (await get("/")).text(); // warm: the first answers load code, which is not the flood's
  const before = rssMiB();
  for (let i = 0; i < CAP; i++) await neverReads();
  await eventually(async () => (await streams()) === CAP, `${CAP} streams open`);
  for (let i = 0; i < FLOOD / 100; i++) await Promise.all(Array.from({ length: 100 }, neverReads));
  const refused = await get("/stall/events");
  const { title, detail } = await refused.json();
  const type = refused.headers.get("content-type");
  assert.deepEqual(
    [refused.status, refused.headers.get("retry-after"), type, title],
    [503, "2", "application/problem+json; charset=utf-8", "Service Unavailable"],
  );
  assert.match(detail, new RegExp(`at most ${CAP}`));
  for (const probe of ["/health", "/ready"]) assert.equal((await get(probe)).status, 200, probe);
  assert.equal(await streams(), CAP);
  const grown = rssMiB() - before;
  assert.ok(grown < 60, `jafflr's memory grew by ${grown.toFixed(1)} MiB`);
  // A page that leaves makes room for the next.
  sockets[0]?.destroy();
  await eventually(async () => (await streams()) < CAP, "a stream closed");
  const next = await get("/stall/events");
  assert.equal(next.status, 200);
  await next.body?.cancel();
});
