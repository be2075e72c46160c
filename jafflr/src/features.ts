import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import type { Logger } from "tpi";
import { type ClientFeaturesResponse, InMemStorageProvider, Unleash } from "unleash-client";

/**
 * Feature flags through unleash-client's public API. Without UNLEASH_URL the flag file (Unleash's
 * client-features format) is the whole truth, evaluated locally and re-read when it changes. With
 * it, a polled Unleash server is, bootstrapped with the flag file's flags until it first answers;
 * its last known flags stay in use while it is unreachable.
 */
export interface Features<Flag extends string> {
  readonly source: "file" | "unleash";
  /** Whether `flag` is on for this customer (Unleash's `userId`). */
  isEnabled(flag: Flag, customer: string): boolean;
  close(): Promise<void>;
}

export interface FeaturesOptions<Flags extends readonly string[]> {
  /** The only names `isEnabled` accepts (jafflr: src/flags.ts), checked against the source at start. */
  flags: Flags;
  logger: Logger;
  flagsFile: string;
  appName: string;
  /** Longest start-up wait for Unleash's first answer. */
  waitMs: number;
  /** How often the flag file is re-read (file mode). */
  filePollMs?: number;
  unleash?: { url: string; token?: string; refreshMs: number };
}

/** A poll's worst case: the client's request timeout (at most 10 s here) on each of its 3 tries. */
const LONGEST_POLL_MS = 3 * 10_000 + 1_000;

/** Parses a client-features document; throws naming what is wrong, so a broken file never ships. */
export function parseFlagFile(text: string, file: string): ClientFeaturesResponse {
  let doc: { features?: { name?: unknown; enabled?: unknown }[] };
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`flag file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const ok = (f: { name?: unknown; enabled?: unknown } | null) =>
    typeof f?.name === "string" && typeof f.enabled === "boolean";
  if (!Array.isArray(doc?.features) || !doc.features.every(ok)) {
    throw new Error(
      `flag file ${file} is not in Unleash client-features format: a "features" array of {name, enabled, strategies}`,
    );
  }
  return doc as ClientFeaturesResponse;
}

function readFlagFile(file: string): ClientFeaturesResponse {
  return parseFlagFile(readText(file), file);
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`flag file ${file} cannot be read (set FLAGS_FILE, or UNLEASH_URL): ${err}`);
  }
}

function client(appName: string, doc?: ClientFeaturesResponse, extra: object = {}) {
  return new Unleash({
    appName,
    url: pathToFileURL(appName).href, // required; never fetched while refreshInterval is 0
    refreshInterval: 0,
    disableMetrics: true,
    // No backup file: a restart with Unleash down starts from the flag file, not a stale temp file.
    storageProvider: new InMemStorageProvider(),
    bootstrap: doc ? { data: doc.features, segments: doc.segments } : undefined,
    disableAutoStart: true,
    skipInstanceCountWarning: true,
    ...extra,
  });
}

/** A client on the file's flags alone; it answers once `ready` (never, for a file without flags: all off). */
async function localClient(appName: string, doc: ClientFeaturesResponse) {
  const local = client(appName, doc);
  local.on("error", () => {}); // no source that could fail; the listener keeps emit() from throwing
  const ready = doc.features.length > 0 ? once(local, "ready") : undefined;
  await local.start();
  await ready;
  return local;
}

export async function startFeatures<const Flags extends readonly string[]>(
  opts: FeaturesOptions<Flags>,
): Promise<Features<Flags[number]>> {
  const { features, defined } = opts.unleash
    ? await unleashFeatures(opts, opts.unleash)
    : await fileFeatures(opts);
  const missing = opts.flags.filter((flag) => !defined(flag));
  if (missing.length > 0) {
    opts.logger.warn(
      { missing },
      "flags the code uses are not defined in the flag source; they are off",
    );
  }
  return features;
}

/** The flag file, re-read every poll: a changed text re-bootstraps a new client; a bad edit keeps the last good flags. */
async function fileFeatures<Flags extends readonly string[]>(opts: FeaturesOptions<Flags>) {
  const { flagsFile: file, logger } = opts;
  let text = readText(file);
  let current = await localClient(opts.appName, parseFlagFile(text, file));
  let closed = false;
  const timer = setInterval(async () => {
    let next: Unleash;
    try {
      const now = readText(file);
      if (now === text) return;
      text = now;
      next = await localClient(opts.appName, parseFlagFile(now, file));
    } catch (err) {
      const msg = (err as Error).message;
      logger.error(
        { flagsFile: file, err: msg },
        "flag file unreadable; keeping the previous flags",
      );
      return;
    }
    if (closed) return next.destroy();
    current.destroy();
    current = next;
    logger.info({ flagsFile: file }, "flag file changed; flags reloaded");
  }, opts.filePollMs ?? 500).unref();
  logger.info({ flagsFile: file }, "feature flags from the flag file (no Unleash server)");
  const features: Features<Flags[number]> = {
    source: "file",
    isEnabled: (flag, customer) => current.isEnabled(flag, { userId: customer }, false),
    async close() {
      closed = true;
      clearInterval(timer);
      current.destroy();
    },
  };
  return { features, defined: (f: string) => !!current.getFeatureToggleDefinition(f) };
}

async function unleashFeatures<Flags extends readonly string[]>(
  opts: FeaturesOptions<Flags>,
  server: NonNullable<FeaturesOptions<Flags>["unleash"]>,
) {
  const { logger } = opts;
  if (!server.token)
    logger.warn(
      "UNLEASH_URL is set without UNLEASH_API_TOKEN; Unleash will likely refuse the client",
    );
  let doc: ClientFeaturesResponse | undefined;
  try {
    doc = readFlagFile(opts.flagsFile);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, "no fallback flags until Unleash answers");
  }
  // Whether a poll is on the wire, seen through the agent the client asks for: destroy() mid-poll
  // drops the client's internal listeners, and the poll's late failure would then crash the process.
  let polling = false;
  let closed = false;
  const agents = {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true }),
  };
  const unleash = client(opts.appName, doc, {
    url: server.url,
    refreshInterval: server.refreshMs,
    disableMetrics: false,
    timeout: Math.min(Math.max(server.refreshMs, 1000), 10_000),
    customHeaders: server.token ? { Authorization: server.token } : undefined,
    httpOptions: {
      agent: (url: URL) => {
        if (/\/client\/features/.test(url.pathname)) polling = true;
        return url.protocol === "https:" ? agents.https : agents.http;
      },
    },
  });
  const destroy = () => {
    unleash.destroy();
    agents.http.destroy();
    agents.https.destroy();
  };
  const pollEnded = () => {
    polling = false;
    if (closed) destroy();
  };
  let lastErrorAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  unleash.on("error", (err: Error) => {
    pollEnded();
    if (closed) return;
    // A dead Unleash fails every poll: the first of a burst, then one line a minute with a count.
    if (Date.now() - lastErrorAt < 60_000) return void suppressed++;
    logger.warn(
      { err: err.message, suppressed },
      "feature flag source error; using the last known flags",
    );
    lastErrorAt = Date.now();
    suppressed = 0;
  });
  unleash.on("warn", (msg: unknown) => {
    if (!closed) logger.debug({ warning: String(msg) }, "unleash warning");
  });
  let ready = false;
  unleash.on("ready", () => {
    ready = true;
  });
  // The bootstrap's own `changed` comes first (no network); any later one, or `unchanged`, is Unleash.
  let bootstrapChange = (doc?.features.length ?? 0) > 0;
  let fromServer = false;
  const answered = new Promise<boolean>((resolve) => {
    const onAnswer = () => {
      pollEnded();
      if (fromServer) return;
      fromServer = true;
      resolve(true);
    };
    unleash.on("changed", () => {
      if (bootstrapChange) bootstrapChange = false;
      else onAnswer();
    });
    unleash.on("unchanged", onAnswer);
  });
  unleash
    .start()
    .catch((err: Error) =>
      logger.warn({ err: err.message }, "feature flag source error; using the last known flags"),
    );
  if (await Promise.race([answered, sleep(opts.waitMs, false, { ref: false })])) {
    logger.info({ unleashUrl: server.url }, "feature flags from Unleash");
  } else {
    logger.warn(
      { unleashUrl: server.url, waitMs: opts.waitMs, flagsFile: opts.flagsFile },
      "Unleash did not answer in time; starting with the flag file's flags and polling on",
    );
    void answered.then(
      () => !closed && logger.info({ unleashUrl: server.url }, "feature flags now from Unleash"),
    );
  }
  const features: Features<Flags[number]> = {
    source: "unleash",
    isEnabled: (flag, customer) => ready && unleash.isEnabled(flag, { userId: customer }, false),
    async close() {
      if (closed) return;
      closed = true;
      if (!polling) destroy();
      else setTimeout(destroy, LONGEST_POLL_MS).unref();
    },
  };
  return { features, defined: (f: string) => !!unleash.getFeatureToggleDefinition(f) };
}
