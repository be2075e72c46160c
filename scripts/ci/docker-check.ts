/**
 * `npm run docker:check [-- jafflr]`: the Dockerfile's recipe without a Docker engine. Per service,
 * in a temp folder: build context (.gitignore, .dockerignore) → `turbo prune --docker` twice (as is,
 * then without devDependencies) → npm ci → turbo build → payload → `npm ci --omit=dev`; then no dev
 * package or source may be in the runtime, and the service, started from it with plain node, must
 * answer /health with its VERSION and exit 0 on SIGTERM. The npm script runs it under with-db, for
 * chillybin's database.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import dockerignore from "@balena/dockerignore";
import { freePort } from "testkit/net";
import { get, launchService } from "testkit/service-process";

const ROOT = resolve(__dirname, "..", "..");
const TURBO = join(ROOT, "node_modules", ".bin", "turbo");
const json = (file: string) => JSON.parse(fs.readFileSync(file, "utf8"));
const log = (message: string) => console.log(`docker-check: ${message}`);
const filesUnder = (dir: string) =>
  fs.existsSync(dir)
    ? fs
        .readdirSync(dir, { recursive: true, encoding: "utf8" })
        .filter((path) => fs.statSync(join(dir, path)).isFile())
        .sort()
    : [];

/** Runs a command (a string is split at spaces) to completion; on failure throws with its output. */
function run(cwd: string, command: string | string[], env = process.env): string {
  const [file = "", ...args] = typeof command === "string" ? command.split(" ") : command;
  const r = spawnSync(file, args, { cwd, encoding: "utf8", env, maxBuffer: 1 << 28 });
  if (r.status === 0) return r.stdout;
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-40).join("\n");
  throw new Error(
    `\`${[file, ...args].join(" ")}\` failed in ${cwd} (${r.error?.message ?? `exit ${r.status}`}):\n${output}`,
  );
}

/** Everything the runtime must not carry (dev packages, sources, tests), and what it must. */
function runtimeProblems(runtime: string, service: string, lock: string): string[] {
  type Locked = { dev?: boolean; link?: boolean; version?: string };
  const packages = Object.entries<Locked>(json(lock).packages).filter(
    ([path, e]) => path.includes("node_modules/") && !e.link,
  );
  const problems = packages.some(([path, e]) => path === "node_modules/typescript" && e.dev)
    ? []
    : ["the pruned lockfile lists no dev packages at all: the check would prove nothing"];
  for (const [path, entry] of packages) {
    const manifest = join(runtime, path, "package.json");
    const version = fs.existsSync(manifest) && json(manifest).version;
    if (version && entry.dev) problems.push(`dev dependency installed: ${path}`);
    else if (version && version !== entry.version)
      problems.push(`${path} is ${version}, locked ${entry.version}`);
  }
  for (const ws of json(join(runtime, "package.json")).workspaces as string[]) {
    for (const path of filesUnder(join(runtime, ws)).filter((p) => !p.startsWith("node_modules/")))
      if (/(^|\/)(src|test)\/|^tsconfig.*\.json$/.test(path) || /(?<!\.d)\.tsx?$/.test(path))
        problems.push(`source file shipped: ${ws}/${path}`);
    // Files the services read at run time ship exactly as in the repository.
    for (const part of ["migrations", "flags"].filter((p) => fs.existsSync(join(ROOT, ws, p)))) {
      const list = (top: string) => filesUnder(join(top, ws, part)).join();
      if (list(runtime) !== list(ROOT)) problems.push(`${ws}/${part} not shipped intact`);
    }
  }
  if (!fs.existsSync(join(runtime, service, "dist", "index.js")))
    problems.push(`${service}/dist/index.js is missing`);
  return problems;
}

/** Started from the runtime folder with plain node, as the image's CMD does; /health, SIGTERM. */
async function startAndProbe(runtime: string, service: string) {
  const [version, dist] = [`docker-check-${service}`, join(runtime, service, "dist")];
  const { PATH, DATABASE_URL } = process.env;
  const env = { PATH, NODE_ENV: "production", HOST: "127.0.0.1", VERSION: version };
  if (service === "chillybin") {
    // As in Kubernetes: migrations run first (the init container), the service does not.
    run(runtime, [process.execPath, join(dist, "migrate.js")], { ...env, DATABASE_URL });
    log(`${service}: node dist/migrate.js applied the shipped migrations`);
    Object.assign(env, { DATABASE_URL, MIGRATE_ON_START: "false" });
  } else {
    Object.assign(env, { CHILLYBIN_URL: "http://127.0.0.1:9" }); // nothing listens: /health must not care
  }
  const lines: string[] = [];
  const started = await launchService({
    name: service,
    entry: join(dist, "index.js"),
    env: { ...env, PORT: String(await freePort()) },
    onLine: (line) => lines.push(line),
    waitForReady: service === "chillybin",
  });
  const { body: health } = await get(new URL("/health", started.url), 10_000);
  started.child.kill("SIGTERM");
  const exit = await started.exited;
  if (!health.includes(version)) throw new Error(`/health does not report VERSION: ${health}`);
  const ready = service === "chillybin" ? ", /ready -> 200" : "";
  log(`${service}: GET /health -> ${health.trim()}${ready}`);
  if (exit.code !== 0)
    throw new Error(
      `${service} exited ${exit.code ?? exit.signal} after SIGTERM:\n${lines.slice(-30).join("\n")}`,
    );
  log(`${service}: SIGTERM -> clean exit 0`);
}

async function checkService(service: string, work: string) {
  const [context, build, runtime, payload] = ["context", "build", "runtime", "payload"].map((d) =>
    join(work, d),
  ) as [string, string, string, string];
  const rules = dockerignore().add(fs.readFileSync(join(ROOT, ".dockerignore"), "utf8"));
  const files = run(ROOT, "git ls-files -z --cached --others --exclude-standard")
    .split("\0")
    .filter((path) => path && !rules.ignores(path) && fs.existsSync(join(ROOT, path)));
  for (const path of files) fs.cpSync(join(ROOT, path), join(context, path), { recursive: true });
  log(`${service}: build context of ${files.length} files (.gitignore and .dockerignore applied)`);
  const prune = (out: string) => [TURBO, "prune", service, "--docker", "--out-dir", out];
  run(context, prune("build"));
  run(context, "npm pkg delete devDependencies --workspaces --include-workspace-root");
  run(context, prune("runtime"));
  const pruned = join(context, "runtime", "json");
  const closure = filesUnder(pruned).flatMap((p) => /^(.+)\/package\.json$/.exec(p)?.[1] ?? []);
  log(`${service}: turbo prune ${service} --docker, runtime closure ${closure.join(" + ")}`);

  fs.cpSync(join(context, "build", "json"), build, { recursive: true });
  run(build, "npm ci --ignore-scripts --no-audit --no-fund --prefer-offline");
  fs.cpSync(join(context, "build", "full"), build, { recursive: true });
  fs.cpSync(join(context, "tsconfig.base.json"), join(build, "tsconfig.base.json"));
  run(build, `npx turbo run build --filter=${service} --output-logs=errors-only`);
  log(`${service}: npm ci + turbo run build --filter=${service} in the build stage`);
  for (const ws of closure)
    for (const part of ["dist", "migrations", "flags"].map((p) => join(ws, p)))
      if (fs.existsSync(join(build, part)))
        fs.cpSync(join(build, part), join(payload, part), { recursive: true });

  fs.cpSync(pruned, runtime, { recursive: true });
  run(runtime, "npm ci --omit=dev --ignore-scripts --no-audit --no-fund", {
    ...process.env,
    npm_config_cache: join(work, ".npm"),
  });
  if (fs.existsSync(payload)) fs.cpSync(payload, runtime, { recursive: true });
  log(`${service}: npm ci --omit=dev + dist/migrations/flags in the runtime stage`);
  const lock = join(context, "build", "json", "package-lock.json");
  const problems = runtimeProblems(runtime, service, lock);
  if (problems.length > 0) throw new Error(`the runtime is not clean:\n  ${problems.join("\n  ")}`);
  log(`${service}: the runtime holds locked production dependencies and compiled output only`);
  await startAndProbe(runtime, service);
}

async function main(): Promise<number> {
  process.env.TURBO_TELEMETRY_DISABLED = "1";
  const known = (json(join(ROOT, "package.json")).workspaces as string[])
    .map((dir) => join(ROOT, dir, "package.json"))
    .filter((file) => json(file).scripts?.start)
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
  let failed = 0;
  for (const service of services) {
    const work = fs.mkdtempSync(join(tmpdir(), `docker-check-${service}-`));
    const started = Date.now();
    try {
      await checkService(service, work);
      log(`${service}: OK (${Math.round((Date.now() - started) / 1000)} s)`);
    } catch (error) {
      failed += 1;
      console.error(`docker-check: ${service}: FAILED: ${(error as Error).message}`);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  const all = `${services.length} service(s)`;
  log(failed === 0 ? `all ${all} OK: ${services.join(", ")}` : `${failed} of ${all} FAILED`);
  return failed === 0 ? 0 : 1;
}

// Anything thrown outside a service's check is a crash: Node prints it and exits 1.
main().then((code) => {
  process.exitCode = code;
});
