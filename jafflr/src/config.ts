import { resolve } from "node:path";
import { baseEnv, envInt, envNumber, envUrl, z } from "tpi";

/** The flag file in the repo; `src/` and `dist/` both sit one level below the package. */
export const DEFAULT_FLAGS_FILE = resolve(__dirname, "..", "flags", "features.json");

export const configSchema = z.object({
  ...baseEnv({ port: 7000, dir: __dirname }),
  // envUrl's declared return type is a union, so narrow it: with a default it is never undefined.
  CHILLYBIN_URL: envUrl("http://127.0.0.1:7001") as z.ZodDefault<z.ZodString>,
  CHILLYBIN_CONNECT_TIMEOUT_MS: envInt(1_000, 1, 60_000),
  /** Per attempt: the longest wait for chillybin's headers, and again for its body. */
  CHILLYBIN_TIMEOUT_MS: envInt(3_000, 1, 120_000),
  /** Extra attempts for a v2 pick after a network error, timeout or 503. */
  CHILLYBIN_RETRIES: envInt(2, 0, 10),
  /** How often chillybin's /health is checked, so an outage is noticed and its end too. */
  CHILLYBIN_CHECK_MS: envInt(2_000, 100, 60_000),
  COOK_TIME_SCALE: envNumber(1, 0, 100),
  GRILL_SLOTS: envInt(4, 1, 1_000),
  GRILL_QUEUE: envInt(32, 0, 100_000),
  /** Open stall pages one jafflr streams to (as chillybin's EVENT_STREAMS_MAX); each holds a socket. */
  STALL_STREAMS_MAX: envInt(100, 1, 5_000),
  UNLEASH_URL: envUrl(),
  UNLEASH_API_TOKEN: z.string().trim().min(1).optional(),
  UNLEASH_REFRESH_MS: envInt(15_000, 100, 3_600_000),
  UNLEASH_APP_NAME: z.string().trim().min(1).default("jafflr"),
  FLAGS_FILE: z.string().trim().min(1).default(DEFAULT_FLAGS_FILE),
  /** Longest start-up wait for Unleash before carrying on with the flag file's flags. */
  FLAGS_WAIT_MS: envInt(2_000, 0, 60_000),
  /** How often the flag file is checked for edits when there is no Unleash server. */
  FLAGS_POLL_MS: envInt(500, 10, 60_000),
});

export type Config = z.infer<typeof configSchema>;
