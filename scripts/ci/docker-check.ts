/**
 * `npm run docker:check [-- jafflr]`: the Dockerfile's recipe without a Docker engine. Per service,
 * in a temp folder: build context (.gitignore, .dockerignore) → `turbo prune --docker` twice (as is,
 * then without devDependencies) → npm ci → turbo build → payload → `npm ci --omit=dev`; then no dev
 * package or source may be in the runtime, and the service, started from it with plain node, must
 * answer /health with its VERSION and exit 0 on SIGTERM. Under with-db, for chillybin's database.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import dockerignore from "@balena/dockerignore";
import { freePort } from "testkit/net";
import { launchService } from "testkit/service-process";

const REPO_ROOT = resolve(__dirname, "..", "..");
const json = (file: string) => JSON.parse(fs.readFileSync(file, "utf8"));
const UNDER_DB = "DOCKER_CHECK_UNDER_WITH_DB";
const log = (message: string) => console.log(`docker-check: ${message}`);

/** Runs a command (a string is split at spaces) to completion; on failure throws with its output. */
function run(cwd: string, command: string | string[]): string {
  const [file = "", ...args] = typeof command === "string" ? command.split(" ") : command;
  const env = { ...process.env, TURBO_TELEMETRY_DISABLED: "1" };
  const result = spawnSync(file, args, { cwd, encoding: "utf8", env, maxBuffer: 1 << 28 });
  if (result.status === 0) return result.stdout;
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-40);
  throw new Error(
    `\`${file} ${args.join(" ")}\` failed in ${cwd} (${result.error?.message ?? `exit ${result.status}`}):\n${output.join("\n")}`,
  );
}

const filesUnder = (dir: string) =>
  fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((path) => fs.statSync(join(dir, path)).isFile());

/** Everything the runtime must not carry (dev packages, sources, tests), and what it must. */
function runtimeProblems(
  runtime: string,
  service: string,
  prunedLock: { packages: Record<string, { dev?: boolean; link?: boolean; version?: string }> },
) {
  const problems: string[] = [];
  const packages = Object.entries(prunedLock.packages).filter(
    ([path, entry]) => path.includes("node_modules/") && !entry.link,
  );
  if (!packages.some(([path, entry]) => path === "node_modules/typescript" && entry.dev)) {
    problems.push(
      "the pruned lockfile lists no dev packages at all: the check would prove nothing",
    );
  }
  for (const [path, entry] of packages) {
    const manifest = join(runtime, path, "package.json");
    if (!fs.existsSync(manifest)) continue;
    if (entry.dev) problems.push(`dev dependency installed: ${path}`);
    else if (json(manifest).version !== entry.version)
      problems.push(`${path} is ${json(manifest).version}, locked ${entry.version}`);
  }
  const workspaces: string[] = json(join(runtime, "package.json")).workspaces;
  for (const ws of workspaces) {
    for (const path of filesUnder(join(runtime, ws)).filter(
      (p) => !p.startsWith("node_modules/"),
    )) {
      const source =
        /(^|\/)(src|test)\//.test(path) || (/\.tsx?$/.test(path) && !path.endsWith(".d.ts"));
      if (source || /^tsconfig.*\.json$/.test(path))
        problems.push(`source file shipped: ${ws}/${path}`);
    }
    // Files the services read at run time ship exactly as in the repository.
    for (const part of ["migrations", "flags"]) {
      if (!fs.existsSync(join(REPO_ROOT, ws, part))) continue;
      const list = (dir: string) => (fs.existsSync(dir) ? filesUnder(dir).sort().join() : "");
      if (list(join(runtime, ws, part)) !== list(join(REPO_ROOT, ws, part)))
        problems.push(`${ws}/${part} not shipped intact`);
    }
  }
  if (!fs.existsSync(join(runtime, service, "dist", "index.js")))
    problems.push(`${service}/dist/index.js is missing`);
  return problems;
}

/** Started from the runtime folder with plain node, as the image's CMD does; /health, SIGTERM. */
async function startAndProbe(runtime: string, service: string, port: number, databaseUrl?: string) {
  const version = `docker-check-${service}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    VERSION: version,
  };
  if (service === "chillybin") {
    // As in Kubernetes: migrations run first (the init container), the service does not.
    const migrate = spawnSync(process.execPath, [join(runtime, service, "dist", "migrate.js")], {
      env: { ...env, DATABASE_URL: databaseUrl },
      encoding: "utf8",
    });
    if (migrate.status !== 0)
      throw new Error(
        `node dist/migrate.js exited ${migrate.status}:\n${migrate.stdout}${migrate.stderr}`,
      );
    log(`${service}: node dist/migrate.js applied the shipped migrations`);
    Object.assign(env, { DATABASE_URL: databaseUrl, MIGRATE_ON_START: "false" });
  } else {
    env.CHILLYBIN_URL = "http://127.0.0.1:9"; // /health must not depend on chillybin: nothing listens there
  }
  const lines: string[] = [];
  const started = await launchService({
    name: service,
    entry: join(runtime, service, "dist", "index.js"),
    env,
    onLine: (line) => lines.push(line),
    waitForReady: service === "chillybin",
  });
  const health = await (await fetch(`${started.url}/health`)).text();
  started.child.kill("SIGTERM");
  const exit = await started.exited;
  if (!health.includes(version)) throw new Error(`/health does not report VERSION: ${health}`);
  log(
    `${service}: GET /health -> ${health.trim()}${service === "chillybin" ? ", /ready -> 200" : ""}`,
  );
  if (exit.code !== 0)
    throw new Error(
      `${service} exited ${exit.code ?? exit.signal} after SIGTERM:\n${lines.slice(-30).join("\n")}`,
    );
  log(`${service}: SIGTERM -> clean exit 0`);
}

async function checkService(service: string, work: string, port: number, databaseUrl?: string) {
  const [context, build, runtime, payload] = ["context", "build", "runtime", "payload"].map((d) =>
    join(work, d),
  ) as [string, string, string, string];
  const rules = dockerignore().add(fs.readFileSync(join(REPO_ROOT, ".dockerignore"), "utf8"));
  const files = run(REPO_ROOT, "git ls-files -z --cached --others --exclude-standard")
    .split("\0")
    .filter((path) => path && !rules.ignores(path) && fs.existsSync(join(REPO_ROOT, path)));
  for (const path of files)
    fs.cpSync(join(REPO_ROOT, path), join(context, path), { recursive: true });
  log(`${service}: build context of ${files.length} files (.gitignore and .dockerignore applied)`);
  const prune = (out: string) => [
    join(REPO_ROOT, "node_modules", ".bin", "turbo"),
    "prune",
    service,
    "--docker",
    "--out-dir",
    out,
  ];
  run(context, prune("build"));
  run(context, "npm pkg delete devDependencies --workspaces --include-workspace-root");
  run(context, prune("runtime"));
  const pruned = join(context, "runtime", "json");
  const closure = filesUnder(pruned)
    .filter((p) => p.endsWith("/package.json"))
    .map((p) => p.slice(0, -13));
  log(`${service}: turbo prune ${service} --docker, runtime closure ${closure.join(" + ")}`);

  fs.cpSync(join(context, "build", "json"), build, { recursive: true });
  run(build, "npm ci --ignore-scripts --no-audit --no-fund --prefer-offline");
  fs.cpSync(join(context, "build", "full"), build, { recursive: true });
  fs.cpSync(join(context, "tsconfig.base.json"), join(build, "tsconfig.base.json"));
  run(build, `npx turbo run build --filter=${service} --output-logs=errors-only`);
  log(`${service}: npm ci + turbo run build --filter=${service} in the build stage`);
  for (const ws of closure) {
    for (const part of ["dist", "migrations", "flags"]) {
      if (fs.existsSync(join(build, ws, part)))
        fs.cpSync(join(build, ws, part), join(payload, ws, part), { recursive: true });
    }
  }

  fs.cpSync(pruned, runtime, { recursive: true });
  run(runtime, [
    "npm",
    ..."ci --omit=dev --ignore-scripts --no-audit --no-fund --cache".split(" "),
    join(work, ".npm"),
  ]);
  if (fs.existsSync(payload)) fs.cpSync(payload, runtime, { recursive: true });
  log(`${service}: npm ci --omit=dev + dist/migrations/flags in the runtime stage`);
  const problems = runtimeProblems(
    runtime,
    service,
    json(join(context, "build", "json", "package-lock.json")),
  );
  if (problems.length > 0) throw new Error(`the runtime is not clean:\n  ${problems.join("\n  ")}`);
  log(
    `${service}: runtime holds production dependencies at locked versions and compiled output only`,
  );
  await startAndProbe(runtime, service, port, databaseUrl);
}

async function main(): Promise<number> {
  const known = (json(join(REPO_ROOT, "package.json")).workspaces as string[])
    .map((dir) => join(REPO_ROOT, dir, "package.json"))
    .filter((file) => fs.existsSync(file) && json(file).scripts?.start)
    .map((file) => json(file).name as string)
    .sort();
  const services = process.argv.length > 2 ? process.argv.slice(2) : known;
  const unknown = services.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    console.error(
      `docker-check: unknown service ${unknown.join(", ")} (services: ${known.join(", ")})`,
    );
    return 2;
  }
  if (services.includes("chillybin") && !process.env[UNDER_DB]) {
    // The same check again, under with-db for chillybin's database.
    const withDb = [join(REPO_ROOT, "scripts", "dev", "with-db.ts"), process.execPath];
    const args = [...process.execArgv, ...withDb, ...process.execArgv, __filename, ...services];
    const child = spawn(process.execPath, args, {
      stdio: "inherit",
      env: { ...process.env, [UNDER_DB]: "1" },
    });
    for (const signal of ["SIGINT", "SIGTERM"] as const)
      process.on(signal, () => child.kill(signal));
    return new Promise((done) => child.once("exit", (code) => done(code ?? 1)));
  }
  let failed = 0;
  for (const service of services) {
    const work = fs.mkdtempSync(join(tmpdir(), `docker-check-${service}-`));
    const started = Date.now();
    try {
      await checkService(service, work, await freePort(), process.env.DATABASE_URL);
      log(`${service}: OK (${Math.round((Date.now() - started) / 1000)} s)`);
    } catch (error) {
      failed += 1;
      console.error(`docker-check: ${service}: FAILED: ${(error as Error).message}`);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
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
