import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import { requestListener } from "./http";
import { flushStdout, type Logger } from "./logger";
import { answerClientError } from "./problem";
import { shutdownTelemetry, telemetryStarted } from "./telemetry";

/** Shutdown as a flag (readiness reads it) and an event (long-lived streams end on it). */
export class Lifecycle {
  #shuttingDown = false;
  readonly #listeners = new Set<() => void>();

  /** True from the moment shutdown begins; it never goes back. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Calls `fn` once shutdown begins (at once if it has); returns the function that cancels it. */
  onShutdown(fn: () => void): () => void {
    if (this.#shuttingDown) fn();
    else this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

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
  /** Install SIGTERM/SIGINT handlers (default true; tests call shutdown() themselves). */
  handleSignals?: boolean;
}

/** Waits up to a second for the last log lines to reach stdout; exit 1 if they could not. */
const exit = (code: number) =>
  flushStdout(1000).then((written) => process.exit(written ? code : code || 1));

export async function serve(app: Express, opts: ServeOptions) {
  const { logger, lifecycle, config } = opts;
  const signals = opts.handleSignals !== false;
  if (signals && !telemetryStarted()) {
    throw new Error(
      'Telemetry is not started: make `import "tpi/register"` the entry point\'s first line.',
    );
  }
  const server: Server = createServer(requestListener(app)).listen(config.PORT, config.HOST);
  // Long enough for a burnt toastie queued behind others; shorter than a load balancer's idle timeout.
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 5_000;
  server.on("clientError", answerClientError);
  await new Promise((resolve, reject) => server.once("listening", resolve).once("error", reject));
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.HOST.includes(":") ? `[${config.HOST}]` : config.HOST}:${port}`;
  logger.info({ url }, "listening");

  let inFlight = 0;
  server.on("request", (_req, res) => {
    inFlight += 1;
    res.on("close", () => (inFlight -= 1));
  });
  const resources = [...(opts.resources ?? []), { name: "telemetry", close: shutdownTelemetry }];

  async function drainAndClose(reason: string): Promise<number> {
    lifecycle.beginShutdown();
    logger.info({ reason, in_flight: inFlight }, "shutting down");
    let stage = "pre-stop delay";
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<number>((resolve) => {
      timer = setTimeout(() => {
        const fields = { stage, in_flight: inFlight, timeout_ms: config.SHUTDOWN_TIMEOUT_MS };
        const msg = `shutdown deadline passed while ${stage} (${inFlight} requests still open)`;
        logger.error(fields, msg);
        resolve(1);
      }, config.SHUTDOWN_TIMEOUT_MS).unref();
    });
    const work = async () => {
      await new Promise((r) => setTimeout(r, config.SHUTDOWN_DELAY_MS));
      stage = "draining in-flight requests";
      await closeServer(server);
      for (const resource of resources) {
        stage = `closing ${resource.name}`;
        await resource.close();
      }
      logger.info("shutdown complete");
      clearTimeout(timer);
      return 0;
    };
    return Promise.race([work(), deadline]);
  }
  let shutdownPromise: Promise<number> | undefined;
  const shutdown = (reason: string) => (shutdownPromise ??= drainAndClose(reason));

  if (signals) {
    let received = 0;
    const begin = (reason: string) => {
      received += 1;
      if (received > 1) return;
      // The deadline is absolute: whatever a resource or stdout does, the process is gone by
      // SHUTDOWN_TIMEOUT_MS + 1 s. Not unref'd: a hang with an empty event loop must exit 1, not 0.
      setTimeout(() => process.exit(1), config.SHUTDOWN_TIMEOUT_MS + 900);
      shutdown(reason).then(exit, (err) => {
        logger.error({ err }, "shutdown failed");
        exit(1);
      });
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (received === 0) return begin(signal);
      logger.warn({ signal }, "second signal: exiting now");
      exit(130);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    // Spawned with an IPC channel by a supervisor (the stall, a test harness): when it dies, even
    // by SIGKILL, the channel closes, and this process must not live on holding its port.
    if (process.send && process.connected) {
      process.once("disconnect", () => begin("supervisor gone (IPC channel closed)"));
    }
  }
  return { server, url, shutdown };
}

/** Stops accepting and resolves once the last connection is gone, closing keep-alive ones as they idle. */
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
