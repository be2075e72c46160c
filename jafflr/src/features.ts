import { EventEmitter } from "node:events";
import { existsSync, readFileSync, type Stats, statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import type { Logger } from "tpi";
import { type ClientFeaturesResponse, InMemStorageProvider, Unleash } from "unleash-client";
import type { FeatureInterface } from "unleash-client/lib/feature";
import type { RepositoryInterface } from "unleash-client/lib/repository";
import type { Segment } from "unleash-client/lib/strategy/strategy";

/**
 * Every flag the code may ask about. Asking for any other name is a compile error (the original
 * panicked at runtime), and a unit test checks each of these exists in the flag file.
 */
export const FLAGS = ["pick.v2"] as const;
export type FlagName = (typeof FLAGS)[number];

/** What a flag is evaluated for: the Unleash context. `userId` is the customer. */
export interface FlagContext {
  userId: string;
}

export interface Features {
  /** "file": the flag file evaluated locally; "unleash": a polled Unleash server. */
  readonly source: "file" | "unleash";
  isEnabled(flag: FlagName, context: FlagContext): boolean;
  /** Stops polling/watching; safe to call while a fetch is in flight, and twice. */
  close(): Promise<void>;
}

export interface FeaturesOptions {
  logger: Logger;
  /** The flags in Unleash client-features format: the whole truth without Unleash, its bootstrap with it. */
  flagsFile: string;
  appName: string;
  /** Longest start-up wait for the first answer from Unleash; then the bootstrap flags are used. */
  waitMs: number;
  /** How often the flag file is checked for edits (file mode). */
  filePollMs?: number;
  unleash?: { url: string; token?: string; refreshMs: number };
}

export function isKnownFlag(name: string): name is FlagName {
  return (FLAGS as readonly string[]).includes(name);
}

/** Parses and checks a client-features document; throws with a message naming what is wrong. */
export function parseFlagFile(text: string, file: string): ClientFeaturesResponse {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`flag file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const features = (doc as { features?: unknown })?.features;
  if (!Array.isArray(features)) {
    throw new Error(`flag file ${file} has no "features" array (Unleash client-features format)`);
  }
  for (const [i, f] of features.entries()) {
    const feature = f as Partial<FeatureInterface> | null;
    if (typeof feature?.name !== "string" || typeof feature.enabled !== "boolean") {
      throw new Error(
        `flag file ${file}: features[${i}] needs a string "name" and a boolean "enabled"`,
      );
    }
    if (feature.strategies !== undefined && !Array.isArray(feature.strategies)) {
      throw new Error(`flag file ${file}: features[${i}].strategies must be an array`);
    }
  }
  return doc as ClientFeaturesResponse;
}

/**
 * A repository for the Unleash client that reads the flag file instead of a server: the same
 * evaluation code as with Unleash, with no network at all. Edits are picked up while running.
 */
class FileRepository extends EventEmitter implements RepositoryInterface {
  private features = new Map<string, FeatureInterface>();
  private segments = new Map<number, Segment>();
  private lastError: string | undefined;
  /** The file's stat as of the last read; a poll that sees another one reloads. */
  private signature = "";
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string,
    private readonly pollMs: number,
    private readonly logger: Logger,
  ) {
    super();
  }

  /** Throws when the file is missing or invalid at start-up: a broken flag file must not ship. */
  async start(): Promise<void> {
    this.signature = signatureOf(statSync(this.file));
    this.apply(parseFlagFile(readFileSync(this.file, "utf8"), this.file));
    this.emit("ready");
    // Our own stat polling against the stat taken *before* the read, rather than fs.watchFile's
    // baseline (taken later, asynchronously, so an edit right after start could be missed); it
    // also sees atomic rename-over writes and works on every filesystem.
    this.timer ??= setInterval(() => void this.poll(), this.pollMs).unref();
  }

  private async poll(): Promise<void> {
    let current: string;
    try {
      current = signatureOf(await stat(this.file));
    } catch {
      current = "missing";
    }
    if (current !== this.signature) {
      this.signature = current;
      this.reload();
    }
  }

  /** A bad edit keeps the last good flags (logged once per distinct problem). */
  reload(): void {
    try {
      this.apply(parseFlagFile(readFileSync(this.file, "utf8"), this.file));
      this.lastError = undefined;
      this.logger.info({ flagsFile: this.file }, "flag file changed; flags reloaded");
      this.emit("changed", this.getToggles());
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.lastError) {
        this.lastError = message;
        this.logger.error(
          { flagsFile: this.file, err: message },
          "flag file unreadable; keeping the previous flags",
        );
      }
    }
  }

  private apply(doc: ClientFeaturesResponse) {
    this.features = new Map(doc.features.map((f) => [f.name, f]));
    this.segments = new Map((doc.segments ?? []).map((s) => [s.id, s]));
  }

  getToggle(name: string) {
    return this.features.get(name);
  }
  getToggles() {
    return [...this.features.values()];
  }
  getTogglesWithSegmentData() {
    return this.getToggles().map((f) => ({
      ...f,
      strategies: f.strategies?.map(({ segments, ...s }) => ({
        ...s,
        segments: segments?.map((id) => this.segments.get(id)),
      })),
    }));
  }
  getSegment(id: number) {
    return this.segments.get(id);
  }
  stop() {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

function signatureOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** Logs the first error of a burst, then at most one line per interval with a count (a dead Unleash fails every poll). */
export function rateLimitedErrorLog(
  logger: Logger,
  intervalMs = 60_000,
  now: () => number = Date.now,
) {
  let last: number | undefined;
  let suppressed = 0;
  return (err: Error) => {
    const t = now();
    if (last !== undefined && t - last < intervalMs) {
      suppressed++;
      return;
    }
    logger.warn(
      { err: err.message, suppressed },
      "feature flag source error; using the last known flags",
    );
    last = t;
    suppressed = 0;
  };
}

/**
 * Whether the client has had an answer from the Unleash server. Its `synchronized` event does
 * not tell: it also fires when the bootstrap file loads. The repository's `connected` does.
 */
function connectedToServer(unleash: Unleash): boolean {
  return (
    (unleash as unknown as { repository?: { connected?: boolean } }).repository?.connected === true
  );
}

/** Calls `then` once the server has answered; returns a function that stops listening. */
function onServerAnswer(unleash: Unleash, then: () => void): () => void {
  const stop = () => {
    unleash.off("changed", check);
    unleash.off("unchanged", check);
  };
  const check = () => {
    if (!connectedToServer(unleash)) return;
    stop();
    then();
  };
  unleash.on("changed", check);
  unleash.on("unchanged", check);
  return stop;
}

/** Resolves true once the server has answered, false after `ms`. */
function waitForServer(unleash: Unleash, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stop();
      resolve(false);
    }, ms);
    const stop = onServerAnswer(unleash, () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Starts the flag client; with Unleash, waits at most `waitMs` for it and never throws because it is down. */
export async function startFeatures(opts: FeaturesOptions): Promise<Features> {
  const { logger } = opts;
  const onError = rateLimitedErrorLog(logger);
  let closed = false;

  let unleash: Unleash;
  let source: Features["source"];
  if (opts.unleash) {
    source = "unleash";
    if (!opts.unleash.token) {
      logger.warn(
        "UNLEASH_URL is set without UNLEASH_API_TOKEN; Unleash will likely refuse the client",
      );
    }
    unleash = new Unleash({
      appName: opts.appName,
      url: opts.unleash.url,
      refreshInterval: opts.unleash.refreshMs,
      timeout: Math.min(Math.max(opts.unleash.refreshMs, 1000), 10_000),
      customHeaders: opts.unleash.token ? { Authorization: opts.unleash.token } : undefined,
      // No backup file in the temp dir: a restart with Unleash down falls back to the bootstrap file.
      storageProvider: new InMemStorageProvider(),
      bootstrap: { filePath: opts.flagsFile },
      disableAutoStart: true,
      skipInstanceCountWarning: true,
    });
  } else {
    source = "file";
    unleash = new Unleash({
      appName: opts.appName,
      url: pathToFileURL(opts.flagsFile).href, // required by the client; never fetched
      repository: new FileRepository(opts.flagsFile, opts.filePollMs ?? 500, logger),
      disableMetrics: true,
      metricsInterval: 0,
      disableAutoStart: true,
      skipInstanceCountWarning: true,
    });
  }
  unleash.on("error", (err: Error) => {
    if (!closed) onError(err);
  });
  unleash.on("warn", (msg: unknown) => {
    if (!closed) logger.debug({ warning: String(msg) }, "unleash warning");
  });

  if (source === "file") {
    if (!existsSync(opts.flagsFile)) {
      throw new Error(
        `flag file ${opts.flagsFile} does not exist (set FLAGS_FILE, or UNLEASH_URL to use Unleash)`,
      );
    }
    await unleash.start();
    logger.info(
      { flagsFile: opts.flagsFile },
      "feature flags from the flag file (no Unleash server)",
    );
  } else {
    const answered = waitForServer(unleash, opts.waitMs);
    unleash.start().catch(onError);
    if (await answered) {
      logger.info({ unleashUrl: opts.unleash?.url }, "feature flags from Unleash");
    } else {
      logger.warn(
        { unleashUrl: opts.unleash?.url, waitMs: opts.waitMs, flagsFile: opts.flagsFile },
        "Unleash did not answer in time; starting with the bootstrap flags and polling on",
      );
      // Said once when it finally answers, so the log shows when the real flags took over.
      onServerAnswer(unleash, () => {
        if (!closed)
          logger.info({ unleashUrl: opts.unleash?.url }, "feature flags now from Unleash");
      });
    }
  }
  warnMissingFlags(unleash, logger);

  const warnedUnknown = new Set<string>();
  return {
    source,
    isEnabled(flag, context) {
      if (!isKnownFlag(flag)) {
        // Only reachable through a cast: the type forbids it. Off, and said once, rather than a panic.
        if (!warnedUnknown.has(flag)) {
          warnedUnknown.add(flag);
          logger.error({ flag }, "asked for a flag the code does not declare; treating it as off");
        }
        return false;
      }
      return unleash.isEnabled(flag, { userId: context.userId }, false);
    },
    async close() {
      if (closed) return;
      closed = true;
      unleash.destroy();
      // destroy() drops the repository's listeners; a poll still in flight would then emit an
      // 'error' nobody hears and crash the process during shutdown. Keep a sink attached.
      const repository = (unleash as unknown as { repository?: EventEmitter }).repository;
      repository?.on("error", () => {});
    },
  };
}

function warnMissingFlags(unleash: Unleash, logger: Logger) {
  const missing = FLAGS.filter((name) => !unleash.getFeatureToggleDefinition(name));
  if (missing.length > 0) {
    logger.warn(
      { missing },
      "flags the code uses are not defined in the flag source; they are off",
    );
  }
}
