/**
 * The shared watch of chillybin's GET /events against network faults (real sockets that
 * misbehave on purpose; the stream against a real chillybin is in integration-tests): no
 * answer, an answer that is not a stream, a stream gone silent, a refused connection — each is
 * reported and followed by a reconnect, and stop() ends it all, even mid-backoff.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChillybinWatch, type Pick, type Stock } from "../src/page/upstream";
import { closedPort, eventually, faultServer, memoryLogger } from "./helpers";

function watchOf(url: string, opts: { idleTimeoutMs?: number; connectTimeoutMs?: number } = {}) {
  const seen = { stocks: [] as Stock[], picks: [] as Pick[], status: [] as string[] };
  const watch = new ChillybinWatch({
    chillybinUrl: url,
    logger: memoryLogger("error").logger,
    backoffBaseMs: 10,
    backoffMaxMs: 40,
    ...opts,
    handlers: {
      stock: (s) => seen.stocks.push(s),
      pick: (p) => seen.picks.push(p),
      status: (connected, reason) => seen.status.push(connected ? "up" : `down: ${reason}`),
    },
  });
  watch.start();
  return { watch, seen };
}

describe("ChillybinWatch", () => {
  it("reads stock and pick events, ignores what does not fit the contract", async () => {
    const server = await faultServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write('event: stock\ndata: {"bread":10,"cheese":9}\n\n');
      res.write('event: stock\ndata: {"Bread!":-1}\n\n'); // not stock: ignored
      res.write(
        'event: pick\ndata: {"via":"v2","items":[{"ingredient":"cheese","quantity":1}],"customer":"gita","orderId":7}\n\n',
      );
      res.write('event: pick\ndata: {"via":"v3"}\n\n'); // not a pick: ignored
    });
    const { watch, seen } = watchOf(server.url);
    try {
      await eventually(() => seen.picks.length === 1, "the pick arrives");
      assert.deepEqual(seen.stocks, [{ bread: 10, cheese: 9 }]);
      assert.deepEqual(seen.picks, [
        {
          via: "v2",
          items: [{ ingredient: "cheese", quantity: 1 }],
          customer: "gita",
          orderId: "7",
        },
      ]);
      assert.deepEqual(seen.status, ["up"]);
      assert.equal(server.requests[0]?.url, "/events");
      assert.equal(server.requests[0]?.headers.accept, "text/event-stream");
    } finally {
      await watch.stop();
      await server.close();
    }
  });

  it("a stream silent for longer than the idle timeout is given up and opened again", async () => {
    const server = await faultServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write('event: stock\ndata: {"cheese":1}\n\n'); // then nothing, not even a heartbeat
    });
    const { watch, seen } = watchOf(server.url, { idleTimeoutMs: 150 });
    try {
      await eventually(() => seen.stocks.length >= 2, "a second connection's stock");
      assert.equal(seen.status[0], "up");
      assert.match(seen.status[1] ?? "", /^down: /);
      assert.equal(seen.status[2], "up");
    } finally {
      await watch.stop();
      await server.close();
    }
  });

  it("no answer within the timeout, an error status, a refused connection: reported, retried", async () => {
    const silent = await faultServer(() => {}); // accepts, never answers
    const broken = await faultServer((_req, res) => {
      res.writeHead(503, { "content-type": "application/problem+json" });
      res.end("{}");
    });
    const refused = `http://127.0.0.1:${await closedPort()}`;
    const watches = [
      watchOf(silent.url, { connectTimeoutMs: 100 }),
      watchOf(broken.url),
      watchOf(refused),
    ];
    try {
      await eventually(
        () => watches.every(({ seen }) => seen.status.length >= 2),
        "each watch reported twice (it retried)",
      );
      assert.match(watches[0]?.seen.status[0] ?? "", /^down: .*timeout/i);
      assert.match(
        watches[1]?.seen.status[0] ?? "",
        /^down: chillybin answered GET \/events with 503/,
      );
      assert.match(watches[2]?.seen.status[0] ?? "", /^down: /);
      assert.ok(broken.requests.length >= 2, "retried after the 503");
    } finally {
      await Promise.all(watches.map(({ watch }) => watch.stop()));
      await silent.close();
      await broken.close();
    }
  });

  it("stop() ends the watch mid-backoff and nothing happens after it", async () => {
    const refused = `http://127.0.0.1:${await closedPort()}`;
    const { watch, seen } = watchOf(refused, { connectTimeoutMs: 100 });
    await eventually(() => seen.status.length >= 1, "the first failure");
    await watch.stop();
    const after = seen.status.length;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(seen.status.length, after);
  });
});
