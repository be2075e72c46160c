import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";

const trimmed = () => z.string().trim();
const numeric = (def: number, pattern: RegExp, expected: string, number: z.ZodNumber) =>
  trimmed().regex(pattern, `expected ${expected}`).transform(Number).pipe(number).default(def);
export const envInt = (def: number, min: number, max: number) =>
  numeric(def, /^-?\d+$/, `an integer from ${min} to ${max}`, z.number().int().min(min).max(max));
export const envNumber = (def: number, min: number, max: number) =>
  numeric(def, /^\d+(\.\d+)?$/, `a number from ${min} to ${max}`, z.number().min(min).max(max));
const BOOL = { truthy: ["true", "1", "yes"], falsy: ["false", "0", "no"] };
export const envBool = (def: boolean) =>
  trimmed()
    .pipe(z.stringbool({ ...BOOL, error: "expected true or false" }))
    .default(def);
export function envUrl(): z.ZodOptional<z.ZodString>;
export function envUrl(def: string): z.ZodDefault<z.ZodString>;
export function envUrl(def?: string) {
  const url = trimmed().url({ error: "expected a URL" });
  return def === undefined ? url.optional() : url.default(def);
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const LEVELS = LOG_LEVELS.join(", ");
const version = (dir: string) => () => defaultVersion(dir);
/** The settings every service shares. `dir`'s package.json gives the default VERSION. */
export const baseEnv = (opts: { port: number; dir: string }) => ({
  HOST: trimmed().min(1).default("127.0.0.1"),
  PORT: envInt(opts.port, 0, 65535),
  VERSION: trimmed().min(1).default(version(opts.dir)), // git runs only when VERSION is unset
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `expected one of ${LEVELS}` }).default("info"),
  SHUTDOWN_TIMEOUT_MS: envInt(25_000, 100, 600_000),
  SHUTDOWN_DELAY_MS: envInt(0, 0, 120_000),
});
export function findUp(dir: string, name: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, name))) return join(d, name);
    if (dirname(d) === d) return undefined;
  }
}

const versions = new Map<string | undefined, string>();
/** Package version + git commit when known; git asked once per package. */
export function defaultVersion(dir: string): string {
  const pkg = findUp(dir, "package.json");
  const known = versions.get(pkg);
  if (known) return known;
  let version: string = pkg ? (JSON.parse(readFileSync(pkg, "utf8")).version ?? "0.0.0") : "0.0.0";
  try {
    const opts = { cwd: pkg ? dirname(pkg) : dir, stdio: "pipe", timeout: 2000 } as const;
    version += `+${execFileSync("git", ["rev-parse", "--short=12", "HEAD"], opts).toString().trim()}`;
  } catch {
    // no git in an image: VERSION comes from the build instead
  }
  versions.set(pkg, version);
  return version;
}

/** A bad value is echoed so it can be fixed, but never a secret or a URL's password. */
function shown(name: string, value: string | undefined): string {
  if (value === undefined) return "it is not set";
  if (/TOKEN|SECRET|PASSWORD|KEY/i.test(name)) return `got a value of ${value.length} characters`;
  const masked = value.replace(/\/\/([^:/@\s]*):[^@\s]*@/, "//$1:***@");
  return `got ${JSON.stringify(masked.length > 80 ? `${masked.slice(0, 80)}…` : masked)}`;
}

export function loadConfig<S extends z.ZodObject>(schema: S, env = process.env): z.infer<S> {
  // Empty counts as unset, so `PORT= npm start` falls back to the default.
  const result = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v)));
  if (result.success) return result.data;
  const problems = result.error.issues.map(({ path, code, message }) => {
    const [name, value] = [path.join("."), env[path.join(".")] || undefined];
    const expected = code === "invalid_type" && !value ? "a value" : message;
    return `${name}: ${expected.replace(/^Invalid input: /, "")}, ${shown(name, value)}`;
  });
  throw new Error(`Invalid configuration: ${problems.join("; ")}`);
}

/** loadConfig for entry points: one clear line on stderr and exit 1, not a stack trace. */
export function loadConfigOrExit<S extends z.ZodObject>(schema: S, env = process.env): z.infer<S> {
  try {
    return loadConfig(schema, env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
