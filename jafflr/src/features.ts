import { once } from "node:events";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "tpi";
import { type ClientFeaturesResponse, InMemStorageProvider, Unleash } from "unleash-client";
import type { Config } from "./config";

/**
 * Feature flags through unleash-client's public API. Without UNLEASH_URL the flag file (Unleash's
 * client-features format) is the whole truth, re-read while it changes. With it, a polled Unleash
 * server is, bootstrapped with the file's flags until it first answers; its last known flags stay
 * in use while it is unreachable.
 */
export type Features<F extends string> = Awaited<ReturnType<typeof startFeatures<readonly F[]>>>;
type Options = Pick<Config, (`FLAGS_${string}` | `UNLEASH_${string}`) & keyof Config>;
type Source = [current: () => Unleash, close: () => void];

/** The file's flags and its text. Throws naming what is wrong: a broken flag file must not ship. */
function readFlagFile(file: string): [ClientFeaturesResponse, string] {
  let text: string, doc: ClientFeaturesResponse;
  try {
    text = readFileSync(file, "utf8");
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`flag file ${file} cannot be read (set FLAGS_FILE or UNLEASH_URL): ${err}`);
  }
  const valid = (f: { name?: unknown; enabled?: unknown }) =>
    typeof f?.name === "string" && typeof f.enabled === "boolean";
  if (!Array.isArray(doc?.features) || !doc.features.every(valid)) {
    throw new Error(`flag file ${file} is not in Unleash client-features format`);
  }
  return [doc, text];
}

/** A client with `doc`'s flags; `server` makes it poll an Unleash server too. */
function client(appName: string, doc?: ClientFeaturesResponse, server: object = {}) {
  return new Unleash({
    appName,
    url: "http://127.0.0.1/", // required; never fetched with refreshInterval 0
    refreshInterval: 0,
    disableMetrics: true,
    // No backup file: a restart with Unleash down starts from the flag file, not a stale copy.
    storageProvider: new InMemStorageProvider(),
    bootstrap: doc && { data: doc.features, segments: doc.segments },
    disableAutoStart: true,
    skipInstanceCountWarning: true,
    ...server,
  });
}

/** `flags`: the only names `isEnabled` accepts (jafflr: src/flags.ts), checked against the source. */
export async function startFeatures<const Flags extends readonly string[]>(
  flags: Flags,
  config: Options,
  logger: Logger,
) {
  const [current, close] = config.UNLEASH_URL
    ? await fromUnleash(config, config.UNLEASH_URL, logger)
    : await fromFile(config, logger);
  const missing = flags.filter((flag) => !current().getFeatureToggleDefinition(flag));
  const msg = "flags the code uses are not defined in the flag source; they are off";
  if (missing.length > 0) logger.warn({ missing }, msg);
  // The answer each customer last had: a customer's first answer, and each change, get a line.
  const answers = new Map<string, boolean>();
  return {
    /** Whether `flag` is on for this customer (Unleash's `userId`); asked per order, a flip
     *  applies to the very next one. */
    isEnabled: (flag: Flags[number], customer: string) => {
      const on = current().isEnabled(flag, { userId: customer }, false);
      const key = `${flag} ${customer}`;
      const was = answers.get(key);
      if (was === on) return on;
      if (answers.size >= 10_000) answers.clear(); // bounded: any number of customers may come
      answers.set(key, on);
      const now = `flag ${flag} is ${was === undefined ? "" : "now "}${on ? "on" : "off"}`;
      logger.info({ flag, customer, on }, `${now} for customer ${JSON.stringify(customer)}`);
      return on;
    },
    close: async () => close(),
  };
}

/** A client with `doc`'s flags, ready once they are in (a file without flags never is: all off). */
async function fileClient(appName: string, doc: ClientFeaturesResponse) {
  const next = client(appName, doc);
  await Promise.all([next.start(), doc.features.length > 0 && once(next, "ready")]);
  return next;
}

/** The file is re-read every poll; a changed text re-bootstraps a new client, a bad one is logged. */
async function fromFile(config: Options, logger: Logger): Promise<Source> {
  const { FLAGS_FILE: file, UNLEASH_APP_NAME: appName } = config;
  let [doc, text] = readFlagFile(file);
  let current = await fileClient(appName, doc);
  logger.info({ flagsFile: file }, "feature flags from the flag file (no Unleash server)");
  let failed: string | undefined;
  const timer = setInterval(async () => {
    try {
      const [doc, read] = readFlagFile(file);
      failed = undefined;
      if (read === text) return;
      const previous = current;
      [current, text] = [await fileClient(appName, doc), read];
      previous.destroy();
      logger.info({ flagsFile: file }, "flag file changed; flags reloaded");
    } catch (err) {
      const msg = "flag file unreadable; keeping the previous flags";
      if (failed !== String(err)) logger.error({ flagsFile: file, err: String(err) }, msg);
      failed = String(err);
    }
  }, config.FLAGS_POLL_MS).unref();
  return [() => current, () => [clearInterval(timer), current.destroy()]];
}

/** The file's flags until Unleash first answers, then Unleash's, the last known while it is down. */
async function fromUnleash(config: Options, url: string, logger: Logger): Promise<Source> {
  const { UNLEASH_API_TOKEN: token, UNLEASH_REFRESH_MS: refreshMs, FLAGS_WAIT_MS: waitMs } = config;
  if (!token) logger.warn("UNLEASH_URL is set without UNLEASH_API_TOKEN; likely refused");
  const { UNLEASH_APP_NAME: appName, FLAGS_FILE: file } = config;
  const fallback = await (async () => fileClient(appName, readFlagFile(file)[0]))().catch((err) =>
    logger.warn({ err: err.message }, "no fallback flags until Unleash answers"),
  );
  // destroy() drops the client's own listeners, so a poll still on the wire would then report its
  // failure to nobody and crash the process: one that started (its headers asked for) is let finish.
  let [polling, closed] = [false, false];
  const unleash = client(appName, undefined, {
    url,
    refreshInterval: refreshMs,
    disableMetrics: false,
    timeout: Math.min(Math.max(refreshMs, 1000), 10_000),
    customHeadersFunction: async () => {
      polling = true; // a metrics post too: close() then waits for the next poll's end
      return token ? { Authorization: token } : {};
    },
  });
  const destroy = () => [unleash, fallback].forEach((d) => void d?.destroy());
  const pollEnded = () => {
    polling = false;
    if (closed) destroy();
  };
  for (const answer of ["changed", "unchanged"]) unleash.on(answer, pollEnded);
  let [lastError, suppressed] = [Number.NEGATIVE_INFINITY, 0];
  unleash.on("error", (err: Error) => {
    pollEnded();
    // A dead Unleash fails every poll: the first of a burst, then a line a minute with a count.
    if (closed || Date.now() - lastError < 60_000) return void suppressed++;
    const msg = "feature flag source error; using the last known flags";
    logger.warn({ err: err.message, suppressed }, msg);
    [lastError, suppressed] = [Date.now(), 0];
  });
  const answered = new Promise<true>((resolve) =>
    unleash.once("synchronized", () => resolve(true)),
  );
  unleash.start().catch((err: Error) => unleash.emit("error", err));
  if (await Promise.race([answered, sleep(waitMs, false, { ref: false })])) {
    logger.info({ unleashUrl: url }, "feature flags from Unleash");
  } else {
    const msg =
      "Unleash did not answer in time; starting with the flag file's flags and polling on";
    logger.warn({ unleashUrl: url, waitMs, flagsFile: file }, msg);
    answered.then(() => closed || logger.info("feature flags now from Unleash"));
  }
  const close = () => {
    closed = true;
    if (!polling) destroy();
    else setTimeout(destroy, 31_000).unref(); // a poll's worst case: 3 tries of at most 10 s
  };
  return [() => (fallback && !unleash.isSynchronized() ? fallback : unleash), close];
}
