import { once } from "node:events";
import { readFileSync, type Stats } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { pathToFileURL } from "node:url";
import type { Logger } from "tpi";
import { type ClientFeaturesResponse, InMemStorageProvider, Unleash } from "unleash-client";

/**
 * Feature flags through unleash-client's public API only. Without UNLEASH_URL the flag file (in
 * Unleash's client-features format) is the whole truth, evaluated locally and reloaded when it is
 * edited; with it, a polled Unleash server is, after a bounded start-up wait during which (and
 * until Unleash first answers) the flag file's flags apply. Once Unleash has answered, its last
 * known flags stay in use while it is unreachable.
 */

/** The flag client for callers that may ask about the flags in `Flag` (jafflr: src/flags.ts). */
export interface Features<Flag extends string> {
  /** "file": the flag file evaluated locally; "unleash": a polled Unleash server. */
  readonly source: "file" | "unleash";
  /** Whether `flag` is on for this customer (Unleash's `userId`). */
  isEnabled(flag: Flag, customer: string): boolean;
  /** Stops polling/watching; safe to call while a fetch is in flight, and twice. */
  close(): Promise<void>;
}

export interface FeaturesOptions<Flags extends readonly string[]> {
  /**
   * Every flag the caller may ask about: the only names `isEnabled` accepts, and the ones the
   * flag source is checked for at start. A parameter, not an import, so the client does not
   * depend on which flags the product declares today (tests give it their own).
   */
  flags: Flags;
  logger: Logger;
  /** The flags in Unleash client-features format: the whole truth without Unleash, its fallback with it. */
  flagsFile: string;
  appName: string;
  /** Longest start-up wait for the first answer from Unleash; then the flag file's flags are used. */
  waitMs: number;
  /** How often the flag file is checked for edits (file mode). */
  filePollMs?: number;
  unleash?: { url: string; token?: string; refreshMs: number };
}

type Feature = ClientFeaturesResponse["features"][number];

/** A poll's worst case: the client's request timeout (at most 10 s here) on each of its 3 tries. */
const LONGEST_POLL_MS = 3 * 10_000 + 1_000;

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
    const feature = f as Partial<Feature> | null;
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

function readFlagFile(file: string): ClientFeaturesResponse {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    throw new Error(
      missing
        ? `flag file ${file} does not exist (set FLAGS_FILE, or UNLEASH_URL to use Unleash)`
        : `flag file ${file} cannot be read: ${(err as Error).message}`,
    );
  }
  return parseFlagFile(text, file);
}

/**
 * An Unleash client that never touches the network: its flags come from `doc` as bootstrap data,
 * and a refresh interval of 0 turns polling off. The same evaluation code as with a server.
 */
async function localClient(appName: string, file: string, doc: ClientFeaturesResponse) {
  const client = new Unleash({
    appName,
    url: pathToFileURL(file).href, // required by the client; never fetched with polling off
    refreshInterval: 0,
    disableMetrics: true,
    storageProvider: new InMemStorageProvider(),
    bootstrap: { data: doc.features, segments: doc.segments },
    disableAutoStart: true,
    skipInstanceCountWarning: true,
  });
  client.on("error", () => {}); // it has no source that could fail; keep a listener regardless
  // The client answers from its flags once it has said `ready`; a file without flags never does
  // (every flag is then off, which is what it says).
  const ready = doc.features.length > 0 ? once(client, "ready") : undefined;
  await client.start();
  await ready;
  return client;
}

/**
 * The flag file, watched: an edit swaps in a new local client. Our own stat polling against the
 * stat taken *before* the read, rather than fs.watchFile's baseline (taken later, asynchronously,
 * so an edit right after start could be missed); it also sees atomic rename-over writes and works
 * on every filesystem. A bad edit keeps the last good flags, logged once per distinct problem.
 */
class WatchedFlagFile {
  private signature = "";
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reloading = false;

  private constructor(
    private client: Unleash,
    private readonly opts: { file: string; appName: string; pollMs: number; logger: Logger },
  ) {}

  /** Throws when the file is missing or invalid at start-up: a broken flag file must not ship. */
  static async open(opts: { file: string; appName: string; pollMs: number; logger: Logger }) {
    const signature = signatureOf(await stat(opts.file).catch(() => undefined));
    const watched = new WatchedFlagFile(
      await localClient(opts.appName, opts.file, readFlagFile(opts.file)),
      opts,
    );
    watched.signature = signature;
    watched.timer = setInterval(() => void watched.poll(), opts.pollMs).unref();
    return watched;
  }

  isEnabled(flag: string, customer: string): boolean {
    return this.client.isEnabled(flag, { userId: customer }, false);
  }

  has(flag: string): boolean {
    return this.client.getFeatureToggleDefinition(flag) !== undefined;
  }

  close() {
    clearInterval(this.timer);
    this.client.destroy();
  }

  private async poll() {
    if (this.reloading) return;
    const current = signatureOf(await stat(this.opts.file).catch(() => undefined));
    if (current === this.signature) return;
    this.signature = current;
    this.reloading = true;
    try {
      const next = await localClient(
        this.opts.appName,
        this.opts.file,
        readFlagFile(this.opts.file),
      );
      if (this.timer === undefined) {
        next.destroy(); // closed while reloading
        return;
      }
      const previous = this.client;
      this.client = next;
      previous.destroy();
      this.lastError = undefined;
      this.opts.logger.info({ flagsFile: this.opts.file }, "flag file changed; flags reloaded");
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.lastError) {
        this.lastError = message;
        this.opts.logger.error(
          { flagsFile: this.opts.file, err: message },
          "flag file unreadable; keeping the previous flags",
        );
      }
    } finally {
      this.reloading = false;
    }
  }
}

function signatureOf(st: Stats | undefined): string {
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : "missing";
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
 * Starts the flag client; with Unleash, waits at most `waitMs` for it and never throws because it
 * is down. `const`: a literal list of flags is taken as its names, not widened to `string`.
 */
export async function startFeatures<const Flags extends readonly string[]>(
  opts: FeaturesOptions<Flags>,
): Promise<Features<Flags[number]>> {
  if (!opts.unleash) return fileFeatures(opts);
  return unleashFeatures(opts, opts.unleash);
}

async function fileFeatures<Flags extends readonly string[]>(
  opts: FeaturesOptions<Flags>,
): Promise<Features<Flags[number]>> {
  const file = await WatchedFlagFile.open({
    file: opts.flagsFile,
    appName: opts.appName,
    pollMs: opts.filePollMs ?? 500,
    logger: opts.logger,
  });
  opts.logger.info(
    { flagsFile: opts.flagsFile },
    "feature flags from the flag file (no Unleash server)",
  );
  warnMissingFlags(opts.flags, (flag) => file.has(flag), opts.logger);
  let closed = false;
  return {
    source: "file",
    isEnabled: guardUnknown(opts.flags, opts.logger, (flag, customer) =>
      file.isEnabled(flag, customer),
    ),
    async close() {
      if (closed) return;
      closed = true;
      file.close();
    },
  };
}

async function unleashFeatures<Flags extends readonly string[]>(
  opts: FeaturesOptions<Flags>,
  server: NonNullable<FeaturesOptions<Flags>["unleash"]>,
): Promise<Features<Flags[number]>> {
  const { logger } = opts;
  const onError = rateLimitedErrorLog(logger);
  if (!server.token) {
    logger.warn(
      "UNLEASH_URL is set without UNLEASH_API_TOKEN; Unleash will likely refuse the client",
    );
  }
  // The flag file's flags apply until Unleash first answers (an unreadable file: all flags off).
  let fallback: Unleash | undefined;
  try {
    fallback = await localClient(opts.appName, opts.flagsFile, readFlagFile(opts.flagsFile));
  } catch (err) {
    logger.warn({ err: (err as Error).message }, "no fallback flags until Unleash answers");
  }

  // Whether a poll of the flags is on the wire, seen through the agent the client asks for: the
  // client must not be destroyed mid-poll (see close()).
  let polling = false;
  const agents = {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true }),
  };
  let closed = false;
  let destroyed = false;
  const unleash = new Unleash({
    appName: opts.appName,
    url: server.url,
    refreshInterval: server.refreshMs,
    timeout: Math.min(Math.max(server.refreshMs, 1000), 10_000),
    customHeaders: server.token ? { Authorization: server.token } : undefined,
    // No backup file: a restart with Unleash down starts from the flag file, not a stale temp file.
    storageProvider: new InMemStorageProvider(),
    httpOptions: {
      agent: (url) => {
        if (/\/client\/features/.test(url.pathname)) polling = true;
        return url.protocol === "https:" ? agents.https : agents.http;
      },
    },
    disableAutoStart: true,
    skipInstanceCountWarning: true,
  });
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    unleash.destroy();
    agents.http.destroy();
    agents.https.destroy();
  };
  /** A poll ended (answer or failure): the moment a pending close() can destroy the client. */
  const pollEnded = () => {
    polling = false;
    if (closed) destroy();
  };
  unleash.on("changed", pollEnded);
  unleash.on("unchanged", pollEnded);
  unleash.on("error", (err: Error) => {
    pollEnded();
    if (!closed) onError(err);
  });
  unleash.on("warn", (msg: unknown) => {
    pollEnded();
    if (!closed) logger.debug({ warning: String(msg) }, "unleash warning");
  });

  // Our own flag, set by the event: isSynchronized() turns true a tick before the client answers.
  let fromServer = false;
  unleash.once("synchronized", () => {
    fromServer = true;
  });
  // `synchronized` fires once, when the server first answers with flags (there is no bootstrap
  // to fire it earlier).
  const answered = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), opts.waitMs);
    unleash.once("synchronized", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  unleash.start().catch(onError);
  if (await answered) {
    logger.info({ unleashUrl: server.url }, "feature flags from Unleash");
  } else {
    logger.warn(
      { unleashUrl: server.url, waitMs: opts.waitMs, flagsFile: opts.flagsFile },
      "Unleash did not answer in time; starting with the flag file's flags and polling on",
    );
    // Said once when it finally answers, so the log shows when the real flags took over.
    unleash.once("synchronized", () => {
      if (!closed) logger.info({ unleashUrl: server.url }, "feature flags now from Unleash");
    });
  }

  const current = () => (fromServer ? unleash : fallback);
  warnMissingFlags(
    opts.flags,
    (flag) => current()?.getFeatureToggleDefinition(flag) !== undefined,
    logger,
  );

  return {
    source: "unleash",
    isEnabled: guardUnknown(
      opts.flags,
      logger,
      (flag, customer) => current()?.isEnabled(flag, { userId: customer }, false) ?? false,
    ),
    async close() {
      if (closed) return;
      closed = true;
      fallback?.destroy();
      // destroy() drops the client's internal listeners; a poll still in flight would then
      // report its failure to nobody and crash the process during shutdown. So a poll on the
      // wire is let finish (its end destroys the client) within the client's own time limits;
      // otherwise the client goes now.
      if (!polling) destroy();
      else setTimeout(destroy, LONGEST_POLL_MS).unref();
    },
  };
}

/** Off, and said once, for a flag the code does not declare (only reachable through a cast). */
function guardUnknown<Flag extends string>(
  flags: readonly Flag[],
  logger: Logger,
  evaluate: (flag: Flag, customer: string) => boolean,
): Features<Flag>["isEnabled"] {
  const declared = new Set<string>(flags);
  const warned = new Set<string>();
  return (flag, customer) => {
    if (declared.has(flag)) return evaluate(flag, customer);
    if (!warned.has(flag)) {
      warned.add(flag);
      logger.error({ flag }, "asked for a flag the code does not declare; treating it as off");
    }
    return false;
  };
}

function warnMissingFlags(
  flags: readonly string[],
  defined: (flag: string) => boolean,
  logger: Logger,
) {
  const missing = flags.filter((name) => !defined(name));
  if (missing.length > 0) {
    logger.warn(
      { missing },
      "flags the code uses are not defined in the flag source; they are off",
    );
  }
}
