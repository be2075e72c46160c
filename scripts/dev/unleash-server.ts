/**
 * A real Unleash server on demand: for the integration tests' flag flip, and for trying flags
 * locally.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/unleash tsx scripts/dev/unleash-server.ts [--port 4242]
 *
 * `unleash-server` is ~190 MB, so it is no dependency of any workspace (every forker's `npm ci`
 * would pay for it): the first use installs it into <repo>/.cache/unleash-server with npm, later
 * uses reuse that. It runs as a child process on its own database, without telemetry or version
 * checks, with an admin token (for the admin API) and a backend token (for jafflr) created at
 * start-up. 7.5.1 is the newest release that still runs on Node 20 (7.6+ need Node 22).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { userIdStrategy } from "testkit/flags";
import { REPO_ROOT } from "testkit/service-process";

export const UNLEASH_SERVER_VERSION = "7.5.1";
export const UNLEASH_CACHE_DIR = path.join(REPO_ROOT, ".cache", "unleash-server");
/** The environment jafflr's backend token reads; Unleash OSS creates it in the default project. */
export const UNLEASH_ENVIRONMENT = "development";
const PROJECT = "default";
const STARTER = "start-unleash.mjs";
const INSTALL_TIMEOUT_MS = 5 * 60_000;
const START_TIMEOUT_MS = 90_000;
const MAX_LOG_LINES = 2_000;

// ---------- install ----------

/** Whether the cache holds unleash-server at the pinned version. */
export function unleashServerInstalled(dir = UNLEASH_CACHE_DIR): boolean {
  const pkg = path.join(dir, "node_modules", "unleash-server", "package.json");
  if (!existsSync(pkg)) return false;
  try {
    return JSON.parse(readFileSync(pkg, "utf8")).version === UNLEASH_SERVER_VERSION;
  } catch {
    return false;
  }
}

/**
 * Installs unleash-server into the cache unless it is there. npm installs into a private temporary
 * folder that is then renamed into place, so a run that is interrupted (or two runs at once) never
 * leaves a half-installed cache behind. Throws a message saying what failed and how to retry.
 */
export async function ensureUnleashServerInstalled(
  options: { dir?: string; timeoutMs?: number; log?: (message: string) => void } = {},
): Promise<string> {
  const dir = options.dir ?? UNLEASH_CACHE_DIR;
  if (unleashServerInstalled(dir)) return dir;
  const { timeoutMs = INSTALL_TIMEOUT_MS, log = (m: string) => console.error(m) } = options;
  const spec = `unleash-server@${UNLEASH_SERVER_VERSION}`;
  const staging = `${dir}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  await fs.mkdir(staging, { recursive: true });
  log(`installing ${spec} into ${dir} (first use only; ~190 MB from the npm registry)`);
  const started = Date.now();
  try {
    const args = ["install", "--prefix", staging, spec];
    args.push("--no-save", "--no-audit", "--no-fund", "--loglevel=error");
    const result = await run("npm", args, { cwd: staging, env: npmEnv(), timeoutMs });
    if (result.timedOut || result.code !== 0 || !unleashServerInstalled(staging)) {
      const why = result.timedOut
        ? `npm did not finish within ${Math.round(timeoutMs / 1000)} s`
        : result.error
          ? `npm could not run: ${result.error}`
          : `npm exited with ${result.code}`;
      throw new Error(
        `Could not install ${spec} (${why}). The Unleash flag test needs it and the npm registry ` +
          `to fetch it once; retry with network access, or install it by hand: ` +
          `npm install --prefix ${dir} ${spec} --no-save\n--- npm output ---\n${result.output.slice(-4_000)}`,
      );
    }
    try {
      await fs.rename(staging, dir);
    } catch (error) {
      // Another run finished first (fine), or a broken/old cache is in the way (replace it).
      if (!unleashServerInstalled(dir)) {
        await fs.rm(dir, { recursive: true, force: true });
        await fs.rename(staging, dir).catch((e: Error) => {
          throw new Error(`Could not move ${staging} to ${dir}: ${e.message} (${String(error)})`);
        });
      }
    }
    log(`installed ${spec} in ${Math.round((Date.now() - started) / 1000)} s`);
    return dir;
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

/**
 * Settings an `npm test -w …` run exports that would turn this install into one of the repo
 * (workspace, prefixes, what to save or omit). Registry, proxy, CA and cache settings are kept.
 */
const NPM_LOCATION_SETTINGS =
  /^npm_config_(prefix|local_prefix|global_prefix|global|location|workspaces?|include_workspace_root|dry_run|omit|include|production|only|save.*|package_lock.*)$/i;

/** The caller's environment minus npm's per-run variables and location settings. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) =>
        !NPM_LOCATION_SETTINGS.test(key) &&
        !(key.toLowerCase().startsWith("npm_") && !key.toLowerCase().startsWith("npm_config_")),
    ),
  );
}

interface RunResult {
  code: number | null;
  output: string;
  timedOut: boolean;
  error?: string;
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<RunResult> {
  return new Promise((resolve) => {
    let output = "";
    let timedOut = false;
    // Own process group, so a timeout also ends the scripts npm started.
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: process.platform !== "win32",
    });
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-20_000);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const kill = () => {
      try {
        if (child.pid && process.platform !== "win32") process.kill(-child.pid, "SIGKILL");
        else child.kill("SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs);
    process.once("exit", kill);
    child.once("error", (error) => {
      clearTimeout(timer);
      process.off("exit", kill);
      resolve({ code: null, output, timedOut, error: error.message });
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      process.off("exit", kill);
      resolve({ code, output, timedOut });
    });
  });
}

// ---------- run ----------

export interface UnleashServer {
  /** e.g. http://127.0.0.1:43123: the UI, /health and the admin API. */
  url: string;
  /** `<url>/api`: what a client SDK (jafflr's UNLEASH_URL) points at. */
  apiUrl: string;
  /** A backend (client SDK) token for the development environment: jafflr's UNLEASH_API_TOKEN. */
  clientToken: string;
  adminToken: string;
  admin: UnleashAdmin;
  child: ChildProcess;
  /** What the server printed so far (warnings and errors; it runs at logLevel warn). */
  logs(): string;
  /** SIGTERM (Unleash shuts down gracefully) and wait; SIGKILL after timeoutMs. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface StartUnleashOptions {
  /** A database of its own: Unleash migrates it to its schema on first start (~5 s). */
  databaseUrl: string;
  /** 0 (default): a free port. */
  port?: number;
  host?: string;
  timeoutMs?: number;
  /** Install when missing (default true). */
  install?: boolean;
}

/**
 * The starter that runs in the cache folder (so `unleash-server` resolves from its node_modules).
 * It prints one JSON line with the port once Unleash listens, and exits when its parent goes away
 * (stdin closes), so a crashed test run leaves no Unleash behind.
 */
const STARTER_SOURCE = `// Written by scripts/dev/unleash-server.ts; options come from UNLEASH_STARTER_OPTIONS.
import { start } from "unleash-server";

const options = JSON.parse(process.env.UNLEASH_STARTER_OPTIONS);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
const unleash = await start(options);
console.log(JSON.stringify({ msg: "unleash listening", port: unleash.server.address().port }));
`;

export async function startUnleashServer(options: StartUnleashOptions): Promise<UnleashServer> {
  const dir = options.install === false ? UNLEASH_CACHE_DIR : await ensureUnleashServerInstalled();
  if (!unleashServerInstalled(dir)) {
    throw new Error(`unleash-server ${UNLEASH_SERVER_VERSION} is not installed in ${dir}`);
  }
  const starter = path.join(dir, STARTER);
  await writeIfChanged(starter, STARTER_SOURCE);

  const secret = randomBytes(12).toString("hex");
  const adminToken = `*:*.admin-${secret}`;
  const clientToken = `*:${UNLEASH_ENVIRONMENT}.jafflr-${secret}`;
  const host = options.host ?? "127.0.0.1";
  const starterOptions = {
    db: { connectionString: options.databaseUrl, ssl: false, pool: { min: 0, max: 4 } },
    server: { host, port: options.port ?? 0, enableRequestLogger: false },
    logLevel: "warn",
    versionCheck: { enable: false },
    authentication: {
      type: "open-source",
      enableApiToken: true,
      createAdminUser: false,
      initApiTokens: [
        {
          tokenName: "admin",
          type: "admin",
          environment: "*",
          projects: ["*"],
          secret: adminToken,
        },
        {
          tokenName: "jafflr",
          type: "backend",
          environment: UNLEASH_ENVIRONMENT,
          projects: ["*"],
          secret: clientToken,
        },
      ],
    },
  };
  // A clean environment: Unleash reads many variables (DATABASE_URL, PORT, LOG_LEVEL, UNLEASH_URL…)
  // that the test process may well have set for other purposes.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TZ: "UTC",
    NODE_ENV: "production",
    SEND_TELEMETRY: "false",
    CHECK_VERSION: "false",
    UNLEASH_STARTER_OPTIONS: JSON.stringify(starterOptions),
  };

  const lines: string[] = [];
  const logs = () => lines.join("\n");
  const child = spawn(process.execPath, [starter], {
    cwd: dir,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  void exited.then(() => process.off("exit", killOnExit));
  child.stdin?.on("error", () => {}); // EPIPE once the child is gone

  let reportPort: ((port: number) => void) | undefined;
  const listening = new Promise<number>((resolve) => {
    reportPort = resolve;
  });
  for (const stream of ["stdout", "stderr"] as const) {
    createInterface({ input: child[stream], crlfDelay: Number.POSITIVE_INFINITY }).on(
      "line",
      (line) => {
        lines.push(stream === "stderr" ? `[stderr] ${line}` : line);
        if (lines.length > MAX_LOG_LINES) lines.shift();
        const port = portOf(line);
        if (port) reportPort?.(port);
      },
    );
  }

  const timeoutMs = options.timeoutMs ?? START_TIMEOUT_MS;
  const failed = (why: string) =>
    new Error(
      `Unleash ${UNLEASH_SERVER_VERSION} did not start: ${why}\n--- unleash output ---\n${logs()}`,
    );
  let timer: NodeJS.Timeout | undefined;
  try {
    const port = await Promise.race([
      listening,
      exited.then((exit) => {
        throw failed(`it exited (${exit.signal ?? `code ${exit.code}`})`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(failed(`not listening within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    const url = `http://${host}:${port}`;
    await waitForHealth(url, Date.now() + 30_000, failed);
    const server: UnleashServer = {
      url,
      apiUrl: `${url}/api`,
      clientToken,
      adminToken,
      admin: new UnleashAdmin(url, adminToken),
      child,
      logs,
      async stop(stopTimeoutMs = 15_000) {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGTERM");
        const done = await Promise.race([exited, sleep(stopTimeoutMs).then(() => undefined)]);
        if (!done) {
          child.kill("SIGKILL");
          await exited;
        }
      },
    };
    return server;
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function portOf(line: string): number | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const record = JSON.parse(line) as { msg?: unknown; port?: unknown };
    return record.msg === "unleash listening" && typeof record.port === "number"
      ? record.port
      : undefined;
  } catch {
    return undefined;
  }
}

async function waitForHealth(url: string, deadline: number, failed: (why: string) => Error) {
  let last = "no answer yet";
  for (;;) {
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
      last = `${response.status} ${(await response.text()).slice(0, 200)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw failed(`${url}/health is not 200 (last: ${last})`);
    await sleep(200);
  }
}

async function writeIfChanged(file: string, content: string): Promise<void> {
  const current = await fs.readFile(file, "utf8").catch(() => undefined);
  if (current === content) return;
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, content);
  await fs.rename(temporary, file); // atomic: a concurrent start never runs half a file
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------- admin API ----------

export interface Strategy {
  id: string;
  name: string;
  parameters?: Record<string, string>;
  constraints?: { contextName: string; operator: string; values?: string[] }[];
}

/**
 * The few admin-API calls the flag tests need. Flags use `flexibleRollout` at 100% with a
 * `userId IN [...]` constraint, as jafflr's flag file does (7.x rejects the old `userWithId`).
 */
export class UnleashAdmin {
  constructor(
    readonly url: string,
    private readonly token: string,
    readonly environment = UNLEASH_ENVIRONMENT,
  ) {}

  /** Creates `name` (if new), gives it exactly one userId strategy, and enables it. */
  async enableForUsers(name: string, userIds: string[]): Promise<void> {
    const feature = `/api/admin/projects/${PROJECT}/features/${encodeURIComponent(name)}`;
    const existing = await this.call("GET", feature, undefined, [200, 404]);
    if (existing.status === 404) {
      await this.call("POST", `/api/admin/projects/${PROJECT}/features`, {
        name,
        type: "release",
        description: "Created by scripts/dev/unleash-server.ts",
      });
    }
    await this.setUserIds(name, userIds);
    await this.call("POST", `${this.envPath(name)}/on`);
  }

  /** Replaces the userId list of the flag's strategy (creating the strategy when there is none). */
  async setUserIds(name: string, userIds: string[]): Promise<void> {
    const body = userIdStrategy(name, userIds);
    const strategies = await this.strategies(name);
    const current = strategies.find((s) => s.name === "flexibleRollout");
    if (current) {
      await this.call("PUT", `${this.envPath(name)}/strategies/${current.id}`, body);
    } else {
      await this.call("POST", `${this.envPath(name)}/strategies`, body);
    }
    for (const other of strategies.filter((s) => s !== current)) {
      await this.call("DELETE", `${this.envPath(name)}/strategies/${other.id}`);
    }
  }

  async strategies(name: string): Promise<Strategy[]> {
    const answer = await this.call("GET", `${this.envPath(name)}/strategies`);
    return answer.body as Strategy[];
  }

  async disable(name: string): Promise<void> {
    await this.call("POST", `${this.envPath(name)}/off`);
  }

  private envPath(name: string): string {
    return `/api/admin/projects/${PROJECT}/features/${encodeURIComponent(name)}/environments/${this.environment}`;
  }

  private async call(
    method: string,
    pathname: string,
    body?: unknown,
    expected: number[] = [],
  ): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${this.url}${pathname}`, {
      method,
      headers: {
        authorization: this.token,
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok && !expected.includes(response.status)) {
      throw new Error(
        `Unleash admin API: ${method} ${pathname} → ${response.status} ${text.slice(0, 500)}`,
      );
    }
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON; keep the text
    }
    return { status: response.status, body: parsed };
  }
}

// ---------- command line ----------

async function main() {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error(
      "usage: DATABASE_URL=postgres://…/unleash tsx scripts/dev/unleash-server.ts [--port 4242]\n" +
        "(a database of its own: Unleash creates its tables in it)",
    );
    process.exit(2);
  }
  const portArg = process.argv.indexOf("--port");
  const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 4242;
  const unleash = await startUnleashServer({ databaseUrl, port });
  await unleash.admin.enableForUsers("pick.v2", ["gita"]);
  console.log(
    [
      `Unleash ${UNLEASH_SERVER_VERSION} is running at ${unleash.url} (pick.v2 on for gita).`,
      `Start jafflr with:  UNLEASH_URL=${unleash.apiUrl} UNLEASH_API_TOKEN='${unleash.clientToken}'`,
      `Admin API token:    ${unleash.adminToken}`,
      "Ctrl-C stops it.",
    ].join("\n"),
  );
  const stop = () => {
    unleash.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (require.main === module) {
  main().catch((error: Error) => {
    console.error(error.message);
    process.exit(1);
  });
}
