/**
 * Which node binary the bench runs the services on (`--node`). Production runs the Dockerfile's
 * image (node:24), and the services' CPU per request differs 2–4× between Node majors, so by
 * default the services run on the image's major, not on whatever node this machine has.
 *
 * Official Node binaries are on the npm registry as `node-<platform>-<arch>` packages (their
 * tarball holds package/bin/node); one is fetched with npm once and kept in
 * bench/.cache/node/<version>/, so later runs need no network.
 */
import { execFileSync } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";

export interface ServiceNode {
  /** The executable. */
  path: string;
  /** As `node --version` prints it, e.g. "v24.22.3". */
  version: string;
  /** Where it came from, for the log and the report. */
  source: string;
}

const VERSION_SPEC = /^\d+(\.\d+){0,2}$/;

/**
 * `spec`: "image" (the Dockerfile's `FROM node:<major>`), "current" (this process's node), a
 * major or version ("24", "24.22.3"), or an absolute path to a node executable.
 */
export function resolveServiceNode(spec: string, repoRoot: string): ServiceNode {
  if (spec === "current") {
    return { path: process.execPath, version: process.version, source: "this machine's node" };
  }
  if (spec === "image") {
    const major = imageMajor(repoRoot);
    const node = fromRegistry(major, repoRoot);
    return { ...node, source: `${node.source}, the Dockerfile's node:${major}` };
  }
  if (VERSION_SPEC.test(spec)) return fromRegistry(spec, repoRoot);
  if (path.isAbsolute(spec)) {
    try {
      accessSync(spec, constants.X_OK);
    } catch {
      throw new Error(`--node ${spec}: not an executable file`);
    }
    return { path: spec, version: versionOf(spec), source: spec };
  }
  throw new Error(
    `--node expects image, current, a major or version (24, 24.22.3) or an absolute path; got ${JSON.stringify(spec)}`,
  );
}

/** The major of the Dockerfile's first `FROM node:<major>…`. */
function imageMajor(repoRoot: string): string {
  const file = path.join(repoRoot, "Dockerfile");
  const text = readFileSync(file, "utf8");
  const major = /^FROM\s+(?:--\S+\s+)*node:(\d+)/im.exec(text)?.[1];
  if (!major) {
    throw new Error(
      `--node image: no \`FROM node:<major>\` line in ${file}; pass --node MAJOR, a path, or current`,
    );
  }
  return major;
}

/** A cached or freshly fetched `node-<platform>-<arch>@<spec>`. */
function fromRegistry(spec: string, repoRoot: string): ServiceNode {
  const pkg = `node-${process.platform}-${process.arch}`;
  const cacheDir = path.join(repoRoot, "bench", ".cache", "node");
  const binary = (version: string) => path.join(cacheDir, version, "package", "bin", "node");
  const found = (version: string): ServiceNode => {
    const file = binary(version);
    const actual = versionOf(file);
    if (actual !== `v${version}`) throw new Error(`${file} says ${actual}, expected v${version}`);
    return { path: file, version: actual, source: `${pkg} from the npm registry` };
  };

  const cached = newest(
    (existsSync(cacheDir) ? readdirSync(cacheDir) : []).filter(
      (v) => matches(v, spec) && existsSync(binary(v)),
    ),
  );
  if (cached) return found(cached);

  const fail = (what: string, err: unknown): never => {
    const detail = err instanceof Error ? err.message.trim().split("\n").slice(0, 3).join(" ") : "";
    throw new Error(
      `could not ${what} ${pkg}@${spec} from the npm registry (${detail}); run with --node current to measure on this machine's node (${process.version}) instead`,
    );
  };
  let version: string | undefined;
  try {
    const out = execFileSync("npm", ["view", `${pkg}@${spec}`, "version", "--json"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    const parsed = JSON.parse(out) as string | string[];
    version = newest((Array.isArray(parsed) ? parsed : [parsed]).filter((v) => matches(v, spec)));
  } catch (err) {
    fail("look up", err);
  }
  if (!version) return fail("find", new Error("no matching version"));

  process.stderr.write(
    `fetching ${pkg}@${version} from the npm registry into bench/.cache/node/…\n`,
  );
  const tmp = mkdtempSync(path.join(os.tmpdir(), "bench-node-"));
  // Extracted beside the cache entry, then renamed: an interrupted download leaves no half binary.
  const partial = path.join(cacheDir, `.partial-${version}-${process.pid}`);
  try {
    execFileSync("npm", ["pack", `${pkg}@${version}`, "--pack-destination", tmp], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const tarball = readdirSync(tmp).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error(`npm pack left no tarball in ${tmp}`);
    mkdirSync(partial, { recursive: true });
    execFileSync("tar", ["xzf", path.join(tmp, tarball), "-C", partial]);
    renameSync(partial, path.join(cacheDir, version));
  } catch (err) {
    // Another bench run may have fetched the same version meanwhile.
    if (!existsSync(binary(version))) fail("download", err);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(partial, { recursive: true, force: true });
  }
  return found(version);
}

function versionOf(file: string): string {
  return execFileSync(file, ["--version"], { encoding: "utf8" }).trim();
}

/** "24" matches 24.x.y, "24.22" 24.22.y, "24.22.3" only itself. */
function matches(version: string, spec: string): boolean {
  return /^\d+\.\d+\.\d+$/.test(version) && `${version}.`.startsWith(`${spec}.`);
}

function newest(versions: string[]): string | undefined {
  const parts = (v: string) => v.split(".").map(Number);
  return [...versions]
    .sort((a, b) => {
      const [x, y] = [parts(a), parts(b)];
      return (x[0] ?? 0) - (y[0] ?? 0) || (x[1] ?? 0) - (y[1] ?? 0) || (x[2] ?? 0) - (y[2] ?? 0);
    })
    .at(-1);
}
