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
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }
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

export interface ServeOptions {
  config: { HOST: string; PORT: number; SHUTDOWN_TIMEOUT_MS: number; SHUTDOWN_DELAY_MS: number };
  logger: Logger;
  lifecycle: Lifecycle;
  /** Closed in order once in-flight requests are done (the DB pool, the flag client…). */
  resources?: { name: string; close: () => unknown }[];
  handleSignals?: boolean;
}

/** Waits up to a second for the last log lines to reach stdout; exit 1 if they could not. */
const exit = (code: number) => flushStdout(1000).then((ok) => process.exit(ok ? code : code || 1));

export async function serve(app: Express, { config, logger, lifecycle, ...opts }: ServeOptions) {
  const signals = opts.handleSignals !== false;
  if (signals && !telemetryStarted()) {
    throw new Error('Telemetry is not started: make `import "tpi/register"` the first line.');
  }
  const server: Server = createServer(requestListener(app)).listen(config.PORT, config.HOST);
  // Long enough for a burnt toastie queued behind others; shorter than a load balancer's idle timeout.
  Object.assign(server, { requestTimeout: 120_000, keepAliveTimeout: 5_000 });
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
  let stage = "pre-stop delay";
  const drain = async (reason: string) => {
    lifecycle.beginShutdown();
    logger.info({ reason, in_flight: inFlight }, "shutting down");
    await new Promise((r) => setTimeout(r, config.SHUTDOWN_DELAY_MS));
    stage = "draining in-flight requests";
    await closeServer(server);
    for (const resource of resources) {
      stage = `closing ${resource.name}`;
      await resource.close();
    }
    logger.info("shutdown complete");
    return 0;
  };
  const deadline = () =>
    new Promise<number>((resolve) => {
      setTimeout(() => {
        const msg = `shutdown deadline passed while ${stage} (${inFlight} requests still open)`;
        logger.error({ stage, in_flight: inFlight, timeout_ms: config.SHUTDOWN_TIMEOUT_MS }, msg);
        resolve(1);
      }, config.SHUTDOWN_TIMEOUT_MS).unref();
    });
  let shutdownPromise: Promise<number> | undefined;
  const shutdown = (reason: string) =>
    (shutdownPromise ??= Promise.race([drain(reason), deadline()]));
  let received = 0;
  const begin = (reason: string) => {
    if (++received > 1) return;
    // Absolute: whatever a resource or stdout does, the process is gone by SHUTDOWN_TIMEOUT_MS + 1 s.
    // Not unref'd: a hang with an empty event loop must end in exit 1, not a quiet 0.
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
  if (signals) process.on("SIGTERM", onSignal).on("SIGINT", onSignal);
  // Spawned with an IPC channel by a supervisor (the stall, a test harness): when it dies, even
  // by SIGKILL, the channel closes, and this process must not live on holding its port.
  if (signals && process.connected)
    process.once("disconnect", () => begin("supervisor gone (IPC channel closed)"));
  return { server, url, shutdown };
}

/** Stops accepting; resolves once the last connection is gone, closing keep-alive ones as they idle. */
const closeServer = (server: Server) =>
  new Promise((resolve) => {
    const sweeper = setInterval(() => server.closeIdleConnections(), 50);
    server.close(resolve).once("close", () => clearInterval(sweeper));
  });
