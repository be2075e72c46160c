import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import { requestListener } from "./http";
import { type Logger, stdoutSink } from "./logger";
import { answerClientError } from "./problem";
import { shutdownTelemetry, telemetryStarted } from "./telemetry";

/** Shared state: readiness reads the flag; long-lived streams listen for the moment it is set. */
export class Lifecycle {
  #shuttingDown = false;
  readonly #listeners = new Set<() => void>();

  /** True from the moment shutdown begins; it never goes back. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Calls `fn` once shutdown begins (at once if it has); returns the function that cancels it. */
  onShutdown(fn: () => void): () => void {
    if (this.#shuttingDown) {
      fn();
      return () => {};
    }
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Shutdown begins: readiness fails from now on, and every listener is told once. */
  beginShutdown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const fn of this.#listeners) fn();
    this.#listeners.clear();
  }
}

/** Something to close after the listener has drained, e.g. the DB pool or the flag client. */
export interface Resource {
  name: string;
  close: () => Promise<unknown> | unknown;
}

export interface ServeOptions {
  config: { HOST: string; PORT: number; SHUTDOWN_TIMEOUT_MS: number; SHUTDOWN_DELAY_MS: number };
  logger: Logger;
  lifecycle: Lifecycle;
  /** Closed in this order once in-flight requests are done; telemetry is flushed after them. */
  resources?: Resource[];
  /** Install SIGTERM/SIGINT handlers (default true; tests drive shutdown() directly). */
  handleSignals?: boolean;
  exit?: (code: number) => void;
}

export interface Serving {
  server: Server;
  url: string;
  /** Drains and closes everything; resolves with the exit code (0 clean, 1 deadline hit). */
  shutdown: (reason: string) => Promise<number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function serve(app: Express, opts: ServeOptions): Promise<Serving> {
  if (!telemetryStarted() && opts.handleSignals !== false) {
    throw new Error(
      'Telemetry is not started: make `import "tpi/register"` the entry point\'s first line.',
    );
  }
  const { logger, lifecycle, config } = opts;
  const exit = opts.exit ?? exitAfterFlush;
  const server = createServer(requestListener(app)).listen(config.PORT, config.HOST);
  // Long enough for a burnt toastie queued behind others; shorter than a load balancer's idle timeout.
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 5_000;
  server.on("clientError", answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.HOST.includes(":") ? `[${config.HOST}]` : config.HOST}:${port}`;
  logger.info({ url }, "listening");

  const inFlight = trackRequests(server);
  const resources: Resource[] = [
    ...(opts.resources ?? []),
    { name: "telemetry", close: shutdownTelemetry },
  ];
  let shutdownPromise: Promise<number> | undefined;

  const shutdown = (reason: string): Promise<number> => {
    shutdownPromise ??= drainAndClose(reason);
    return shutdownPromise;
  };

  async function drainAndClose(reason: string): Promise<number> {
    lifecycle.beginShutdown();
    logger.info({ reason, in_flight: inFlight.count() }, "shutting down");
    let stage = "pre-stop delay";
    const deadline = new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        logger.error(
          { stage, in_flight: inFlight.count(), timeout_ms: config.SHUTDOWN_TIMEOUT_MS },
          `shutdown deadline passed while ${stage} (${inFlight.count()} requests still open)`,
        );
        resolve(1);
      }, config.SHUTDOWN_TIMEOUT_MS);
      timer.unref();
    });
    const work = (async () => {
      if (config.SHUTDOWN_DELAY_MS > 0) await sleep(config.SHUTDOWN_DELAY_MS);
      stage = "draining in-flight requests";
      await closeServer(server);
      for (const resource of resources) {
        stage = `closing ${resource.name}`;
        await resource.close();
      }
      logger.info("shutdown complete");
      return 0;
    })();
    return Promise.race([work, deadline]);
  }

  if (opts.handleSignals !== false) {
    let signals = 0;
    const begin = (reason: string) => {
      // The deadline is absolute: whatever a resource or stdout does, the process is gone by
      // SHUTDOWN_TIMEOUT_MS + 1 s (the last second is for the final log lines). Not unref'd: a
      // hang with nothing left on the event loop must still end in exit 1, not a quiet exit 0.
      setTimeout(() => process.exit(1), config.SHUTDOWN_TIMEOUT_MS + 900);
      shutdown(reason).then(exit, (err) => {
        logger.error({ err }, "shutdown failed");
        exit(1);
      });
    };
    const onSignal = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, "second signal: exiting now");
        exit(130);
        return;
      }
      begin(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    // Spawned with an IPC channel by a supervisor (the stall behind `npm start`, a test
    // harness): when it dies, even by SIGKILL, the channel closes, and this process must not
    // live on as an orphan holding its port.
    if (process.send && process.connected) {
      process.once("disconnect", () => {
        signals += 1;
        if (signals === 1) begin("supervisor gone (IPC channel closed)");
      });
    }
  }
  return { server, url, shutdown };
}

/**
 * Waits up to a second for the last log lines ("shutdown complete") to reach stdout, then
 * exits — with 1 when they could not all be written (stdout stuck or gone).
 */
function exitAfterFlush(code: number): void {
  stdoutSink()
    .drain(1000)
    .then((written) => process.exit(written ? code : code || 1));
}

/** Counts requests that have started and not yet finished. */
function trackRequests(server: Server) {
  let count = 0;
  server.on("request", (_req, res) => {
    count += 1;
    res.on("close", () => {
      count -= 1;
    });
  });
  return { count: () => count };
}

/**
 * Stops accepting, lets in-flight requests finish, and closes keep-alive sockets as they go
 * idle, resolving only once the last connection is gone (server.close's callback).
 */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    const sweeper = setInterval(() => server.closeIdleConnections(), 50);
    server.close((err) => {
      clearInterval(sweeper);
      if (err && (err as NodeJS.ErrnoException).code !== "ERR_SERVER_NOT_RUNNING") reject(err);
      else resolve();
    });
    server.closeIdleConnections();
  });
}
