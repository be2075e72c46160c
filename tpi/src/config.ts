import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";

/** An integer environment variable within [min, max]. */
export function envInt(def: number, min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+$/, `expected an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .default(def);
}

/** A non-negative decimal number (e.g. a time scale). */
export function envNumber(def: number, min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, `expected a number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min).max(max))
    .default(def);
}

/** A boolean: true/false/1/0/yes/no (case-insensitive). */
export function envBool(def: boolean) {
  return z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(["true", "false", "1", "0", "yes", "no"], { error: "expected true or false" }))
    .transform((v) => v === "true" || v === "1" || v === "yes")
    .default(def);
}

/** An http(s) or postgres URL; optional when no default is given. */
export function envUrl(): z.ZodOptional<z.ZodString>;
export function envUrl(def: string): z.ZodDefault<z.ZodString>;
export function envUrl(def?: string) {
  const url = z.string().trim().url({ error: "expected a URL" });
  return def === undefined ? url.optional() : url.default(def);
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** The settings every service shares. `dir`'s package.json gives the default VERSION. */
export function baseEnv(opts: { port: number; dir: string }) {
  return {
    HOST: z.string().trim().min(1).default("127.0.0.1"),
    PORT: envInt(opts.port, 0, 65535),
    // A function: git runs only when VERSION is unset (never in an image).
    VERSION: z
      .string()
      .trim()
      .min(1)
      .default(() => defaultVersion(opts.dir)),
    LOG_LEVEL: z
      .enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(", ")}` })
      .default("info"),
    SHUTDOWN_TIMEOUT_MS: envInt(25_000, 100, 600_000),
    SHUTDOWN_DELAY_MS: envInt(0, 0, 120_000),
  };
}

export function findUp(dir: string, name: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, name))) return join(d, name);
    if (dirname(d) === d) return undefined;
  }
}

const versions = new Map<string, string>();

/** Package version + git commit when known; asked once per package (config and telemetry share it). */
export function defaultVersion(dir: string): string {
  const pkg = findUp(dir, "package.json");
  const key = pkg ?? dir;
  let version = versions.get(key);
  if (version !== undefined) return version;
  version = pkg ? (JSON.parse(readFileSync(pkg, "utf8")).version ?? "0.0.0") : "0.0.0";
  try {
    const cwd = pkg ? dirname(pkg) : dir;
    const git = ["rev-parse", "--short=12", "HEAD"];
    const commit = execFileSync("git", git, {
      cwd,
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 2000,
    });
    version = `${version}+${commit.toString().trim()}`;
  } catch {
    // no git in a container image: VERSION comes from the build instead
  }
  versions.set(key, version as string);
  return version as string;
}

/** Echo a bad value so it can be fixed, but never a secret or a URL's password. */
function shown(name: string, value: string | undefined): string {
  if (value === undefined) return "it is not set";
  if (/TOKEN|SECRET|PASSWORD|KEY/i.test(name)) return `got a value of ${value.length} characters`;
  const masked = value.replace(/\/\/([^:/@\s]*):[^@\s]*@/, "//$1:***@");
  return `got ${JSON.stringify(masked.length > 80 ? `${masked.slice(0, 80)}…` : masked)}`;
}

/** Reads and validates the environment once; throws one line naming every bad variable. */
export function loadConfig<S extends z.ZodObject>(schema: S, env = process.env): z.infer<S> {
  // Empty strings count as unset, so `PORT= npm start` falls back to the default.
  const input = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join(".");
    const got = input[name];
    const expected = issue.code === "invalid_type" && got === undefined ? "a value" : issue.message;
    return `${name}: ${expected.replace(/^Invalid input: /, "")}, ${shown(name, got)}`;
  });
  throw new Error(`Invalid configuration: ${problems.join("; ")}`);
}

/** loadConfig for entry points: one clear line on stderr and exit 1 instead of a stack trace. */
export function loadConfigOrExit<S extends z.ZodObject>(schema: S, env = process.env): z.infer<S> {
  try {
    return loadConfig(schema, env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
