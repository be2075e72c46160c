import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Express } from "express";
import { createMetrics, createServiceApp, Lifecycle, serve } from "../src/index";
import { capturingLogger, get, startFixture } from "./helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds: requests are "in flight" once the server has them, not after a guess. */
async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 1000; i++) {
    if (check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting until ${what}`);
}

function slowApp(
  lifecycle: Lifecycle,
  logger = capturingLogger().logger,
  onStart: (res: import("express").Response) => void = () => {},
): Express {
  return createServiceApp({
    service: "t",
    version: "1",
    logger,
    metrics: createMetrics({ service: "t", version: "1" }),
    lifecycle,
    routes: (app) => {
      app.get("/slow", async (req, res) => {
        onStart(res);
        await sleep(Number(req.query.ms ?? 300));
        res.json({ done: true });
      });
    },
  });
}

const config = (timeout = 5000, delay = 0) => ({
  HOST: "127.0.0.1",
  PORT: 0,
  SHUTDOWN_TIMEOUT_MS: timeout,
  SHUTDOWN_DELAY_MS: delay,
});

describe("graceful shutdown (real HTTP server)", () => {
  it("finishes in-flight requests, refuses new connections, then closes resources in order", async () => {
    const lifecycle = new Lifecycle();
    const { logger } = capturingLogger();
    const closed: string[] = [];
    let started = 0;
    let finished = 0; // server side: the response was handed to the socket
    const s = await serve(
      slowApp(lifecycle, logger, (res) => {
        started += 1;
        res.once("finish", () => {
          finished += 1;
        });
      }),
      {
        config: config(),
        logger,
        lifecycle,
        handleSignals: false,
        resources: [
          {
            name: "db pool",
            close: async () => void closed.push(`db pool (in flight done: ${finished})`),
          },
          { name: "flag client", close: () => void closed.push("flag client") },
        ],
      },
    );
    const inFlight = [1, 2, 3].map(() => get(`${s.url}/slow?ms=400`));
    await until(() => started === 3, "the server has all three requests");
    const shutdown = s.shutdown("test");
    assert.equal(lifecycle.shuttingDown, true, "readiness flips at once");
    await until(() => !s.server.listening, "the listener is closed");
    const late = await get(`${s.url}/health`);
    assert.equal(late.error, "ECONNREFUSED", "the listener no longer accepts");
    const results = await Promise.all(inFlight);
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200],
    );
    assert.equal(await shutdown, 0);
    assert.deepEqual(closed, ["db pool (in flight done: 3)", "flag client"]);
  });

  it("answers /ready with 503 during the pre-stop delay while still serving", async () => {
    const lifecycle = new Lifecycle();
    const { logger } = capturingLogger();
    // Both requests below must land inside the delay: 2 s leaves room for a loaded machine.
    const s = await serve(slowApp(lifecycle, logger), {
      config: config(5000, 2000),
      logger,
      lifecycle,
      handleSignals: false,
    });
    const shutdown = s.shutdown("test");
    const ready = await get(`${s.url}/ready`);
    assert.equal(ready.status, 503);
    assert.match(ready.body ?? "", /shutting down/);
    const health = await get(`${s.url}/health`);
    assert.equal(health.status, 200, "still serving during the delay");
    assert.equal(await shutdown, 0);
  });

  it("closes idle keep-alive connections instead of waiting for them", async () => {
    const lifecycle = new Lifecycle();
    const { logger } = capturingLogger();
    const s = await serve(slowApp(lifecycle, logger), {
      config: config(3000),
      logger,
      lifecycle,
      handleSignals: false,
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await get(`${s.url}/health`, agent)).status, 200);
    // The agent parks the socket as free just after the response ends.
    await until(() => Object.values(agent.freeSockets).flat().length > 0, "the socket is idle");
    const sockets = Object.values(agent.freeSockets).flat();
    assert.equal(sockets.length, 1, "one idle keep-alive socket");
    const socketClosed = new Promise((r) => sockets[0]?.once("close", r));
    // The deadline (3 s) is shorter than keepAliveTimeout (5 s): exit code 0 means the idle
    // socket was closed by the server, not waited out.
    assert.equal(await s.shutdown("test"), 0);
    // The agent unrefs idle sockets: a timer keeps the test alive until the close arrives.
    const keepAlive = setTimeout(() => assert.fail("the idle socket was not closed"), 5000);
    await socketClosed;
    clearTimeout(keepAlive);
    agent.destroy();
  });

  it("gives up at the deadline with exit code 1 and names what was still open", async () => {
    const lifecycle = new Lifecycle();
    const { logger, lines } = capturingLogger();
    let started = 0;
    const s = await serve(
      slowApp(lifecycle, logger, () => {
        started += 1;
      }),
      { config: config(300), logger, lifecycle, handleSignals: false },
    );
    const stuck = get(`${s.url}/slow?ms=1500`);
    await until(() => started === 1, "the server has the request");
    assert.equal(await s.shutdown("test"), 1);
    const line = lines().find((l) => String(l.msg).startsWith("shutdown deadline passed"));
    assert.ok(line, "a log line explains the forced exit");
    assert.equal(line.in_flight, 1);
    assert.equal(line.stage, "draining in-flight requests");
    await stuck;
    s.server.closeAllConnections();
  });
});

describe("signals (real process)", () => {
  it("SIGTERM: in-flight requests finish, exit code 0", async () => {
    const f = startFixture();
    const url = await f.url;
    const inFlight = [get(`${url}/slow?ms=600`), get(`${url}/slow?ms=600`)];
    await until(() => f.output().split('"slow started"').length === 3, "both requests started");
    f.child.kill("SIGTERM");
    const results = await Promise.all(inFlight);
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200],
    );
    assert.equal(await f.exited, 0);
    // Order is asserted in-process above; across a pipe, pino's async writes may interleave.
    assert.match(f.output(), /"msg":"pool closed"/);
    assert.match(f.output(), /"msg":"shutdown complete"/);
  });

  it("a second signal exits at once", async () => {
    const f = startFixture();
    const url = await f.url;
    const stuck = get(`${url}/slow?ms=3000`);
    await until(() => f.output().includes('"slow started"'), "the request started");
    f.child.kill("SIGTERM");
    await until(() => f.output().includes('"msg":"shutting down"'), "the first signal is handled");
    f.child.kill("SIGINT");
    assert.equal(await f.exited, 130);
    assert.match(f.output(), /second signal/);
    await stuck;
  });

  it("refuses to start when pg was loaded before tpi/register", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(__dirname, "fixtures", "pg-first.ts")],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let err = "";
    child.stderr.on("data", (c) => {
      err += c;
    });
    const code = await new Promise((r) => child.once("close", r)); // stderr read to the end
    assert.notEqual(code, 0);
    assert.match(err, /tpi\/register must be imported before pg/);
  });
});

export { get, startFixture };

describe("requests node's HTTP parser rejects", () => {
  /** Writes raw bytes and reads the whole answer (the server closes the connection). */
  async function raw(url: string, payload: string): Promise<string> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => socket.write(payload));
      let answer = "";
      socket.on("data", (c) => {
        answer += c;
      });
      socket.on("end", () => resolve(answer));
      socket.on("error", reject);
    });
  }

  it("answer with problem+json, not a bare 400/431", async () => {
    const lifecycle = new Lifecycle();
    const { logger } = capturingLogger();
    const s = await serve(slowApp(lifecycle, logger), {
      config: config(),
      logger,
      lifecycle,
      handleSignals: false,
    });
    const badHeader = await raw(s.url, "GET /health HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n");
    assert.match(badHeader, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(badHeader, /Content-Type: application\/problem\+json/);
    assert.equal(JSON.parse(badHeader.split("\r\n\r\n")[1] ?? "").status, 400);
    const huge = await raw(
      s.url,
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    assert.match(huge, /^HTTP\/1\.1 431 /);
    assert.match(huge, /application\/problem\+json/);
    assert.equal(await s.shutdown("test"), 0);
  });
});

describe("Lifecycle", () => {
  it("tells each listener once when shutdown begins, at once when it already has, never when cancelled", () => {
    const lifecycle = new Lifecycle();
    const told: string[] = [];
    lifecycle.onShutdown(() => told.push("early"));
    const cancel = lifecycle.onShutdown(() => told.push("cancelled"));
    cancel();
    assert.equal(lifecycle.shuttingDown, false);
    lifecycle.beginShutdown();
    lifecycle.beginShutdown();
    assert.equal(lifecycle.shuttingDown, true);
    lifecycle.onShutdown(() => told.push("late"));
    assert.deepEqual(told, ["early", "late"]);
  });
});
