/**
 * The shared watch of chillybin's GET /events against sockets that misbehave on purpose (the
 * stream against a real chillybin is in integration-tests): each fault is reported and followed
 * by a reconnect with backoff.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Stock, watchChillybin } from "../src/page/upstream";
import { closedPort, eventually, faultServer, memoryLogger } from "./helpers";

function watch(url: string, opts: { idleTimeoutMs?: number; connectTimeoutMs?: number } = {}) {
  const seen = { stocks: [] as Stock[], status: [] as string[] };
  const stop = watchChillybin({
    chillybinUrl: url,
    logger: memoryLogger("error").logger,
    ...opts,
    stock: (s) => seen.stocks.push(s),
    status: (connected, reason) => seen.status.push(connected ? "up" : `down: ${reason}`),
  });
  return { stop, seen };
}

/** A chillybin that answers with these events and then keeps the stream open, silent. */
const streaming = (...events: string[]) =>
  faultServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (const e of events) res.write(`${e}\n\n`);
  });

describe("the watch of chillybin's events", () => {
  it("reads stock, ignores what does not fit the contract, and asks for a stream", async () => {
    const server = await streaming(
      'event: stock\ndata: {"bread":10,"cheese":9}',
      'event: stock\ndata: {"Bread!":-1}',
      "event: stock\ndata: not json",
      'event: stock\ndata: {"cheese":8}',
    );
    const { stop, seen } = watch(server.url);
    await eventually(() => seen.stocks.length === 2, "the last stock arrives");
    stop();
    await server.close();
    assert.deepEqual(seen, { stocks: [{ bread: 10, cheese: 9 }, { cheese: 8 }], status: ["up"] });
    assert.equal(server.requests[0]?.url, "/events");
    assert.equal(server.requests[0]?.headers.accept, "text/event-stream");
  });

  it("silence, no answer, an error status, a refused connection: each reported, then retried", async () => {
    const silent = await streaming('event: stock\ndata: {"cheese":1}');
    const mute = await faultServer(() => {}); // accepts, never answers
    const broken = await faultServer((_req, res) => res.writeHead(503).end("{}"));
    const watches = [
      watch(silent.url, { idleTimeoutMs: 150 }),
      watch(mute.url, { connectTimeoutMs: 100 }),
      watch(broken.url),
      watch(`http://127.0.0.1:${await closedPort()}`),
    ];
    await eventually(() => watches.every(({ seen }) => seen.status.length >= 3), "each retried");
    for (const { stop } of watches) stop();
    await Promise.all([silent, mute, broken].map((s) => s.close()));
    const [idle, timeout, error, refused] = watches.map(({ seen }) => seen.status.join(" | "));
    assert.match(idle ?? "", /^up \| down: .+ \| up/);
    assert.match(timeout ?? "", /^down: .*timeout/i);
    assert.match(error ?? "", /^down: chillybin answered GET \/events with 503 \| /);
    assert.match(refused ?? "", /^down: /);
  });
});
