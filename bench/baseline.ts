/**
 * "Today's" chillybin, for issue 13 target 3 (GET / and /health at least 2× today's): the
 * chillybin and tpi of a fixed commit, built once into bench/.cache/baseline/<sha>/ and run
 * beside this tree's chillybin in the same rounds, so both sides meet the same neighbours on
 * this shared machine. The previous results.md has no chillybin GET / or /health figures to
 * compare with, and figures from another day would measure the machine, not the change.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { run } from "./load";

/** main when issue 13 was taken on (its results.md is "today's" figures). */
export const BASELINE_COMMIT = "9ea0da4";
/** The workspaces the baseline needs from its own commit; everything else is linked. */
const OWN = ["tpi", "chillybin"];

/** Builds the baseline once; returns its chillybin entry point. */
export async function baselineChillybin(opts: {
  repoRoot: string;
  commit: string;
  log: (line: string) => void;
}): Promise<{ entry: string; sha: string }> {
  const git = (args: string[]) => run("git", ["-C", opts.repoRoot, ...args]);
  const parsed = await git(["rev-parse", "--verify", `${opts.commit}^{commit}`]);
  const sha = parsed.stdout.trim();
  if (parsed.code !== 0 || !sha) throw new Error(`unknown baseline commit ${opts.commit}`);
  const dir = path.join(opts.repoRoot, "bench", ".cache", "baseline", sha.slice(0, 12));
  const entry = path.join(dir, "chillybin", "dist", "index.js");
  const done = path.join(dir, ".built");
  if (existsSync(done)) return { entry, sha };

  opts.log(
    `building the baseline chillybin (${sha.slice(0, 9)}) into ${path.relative(opts.repoRoot, dir)}…`,
  );
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = path.join(dir, "src.tar");
  const archived = await git(["archive", "-o", archive, sha, ...OWN, "tsconfig.base.json"]);
  if (archived.code !== 0) throw new Error(`git archive failed: ${archived.stderr}`);
  const untar = await run("tar", ["-xf", archive, "-C", dir]);
  if (untar.code !== 0) throw new Error(`tar failed: ${untar.stderr}`);
  rmSync(archive);

  // Third-party packages from this checkout (symlinked: nothing is copied); the workspaces the
  // baseline is made of resolve to its own copies.
  const modules = path.join(dir, "node_modules");
  mkdirSync(modules);
  const shared = path.join(opts.repoRoot, "node_modules");
  for (const name of readdirSync(shared)) {
    if (OWN.includes(name)) continue;
    if (name.startsWith("@")) {
      // A real scope folder, so a package installed for the baseline below lands in it and
      // not, through a linked scope, in this checkout's node_modules.
      mkdirSync(path.join(modules, name));
      for (const pkg of readdirSync(path.join(shared, name))) {
        symlinkSync(path.join(shared, name, pkg), path.join(modules, name, pkg));
      }
      continue;
    }
    symlinkSync(path.join(shared, name), path.join(modules, name));
  }
  for (const name of OWN) symlinkSync(path.join("..", name), path.join(modules, name));

  // Dependencies the baseline had and this checkout has since dropped (tpi's old express and
  // http instrumentations), at the versions its lockfile pinned, from npm's cache when it can.
  const missing = await missingDependencies(opts.repoRoot, sha, dir);
  if (missing.length > 0) {
    opts.log(
      `  installing what the baseline needs and this checkout dropped: ${missing.join(" ")}`,
    );
    const extra = path.join(dir, "extra");
    mkdirSync(extra);
    writeFileSync(path.join(extra, "package.json"), '{"name":"baseline-extra","private":true}\n');
    const installed = await run(
      "npm",
      [
        "install",
        "--no-save",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        ...missing,
      ],
      process.env,
      extra,
    );
    if (installed.code !== 0)
      throw new Error(`npm install for the baseline failed:\n${installed.stderr}`);
    for (const spec of missing) {
      const name = spec.slice(0, spec.lastIndexOf("@"));
      const link = path.join(modules, name);
      rmSync(link, { recursive: true, force: true });
      mkdirSync(path.dirname(link), { recursive: true });
      symlinkSync(path.join(extra, "node_modules", name), link);
    }
  }

  const tsc = path.join(shared, ".bin", "tsc");
  for (const name of OWN) {
    const built = await run(tsc, ["-p", path.join(dir, name, "tsconfig.build.json")]);
    if (built.code !== 0) {
      throw new Error(`building the baseline ${name} failed:\n${built.stdout}${built.stderr}`);
    }
  }
  writeFileSync(done, `${sha}\n`);
  return { entry, sha };
}

/** `name@version` of each direct dependency of the baseline's workspaces this checkout lacks. */
async function missingDependencies(repoRoot: string, sha: string, dir: string): Promise<string[]> {
  const lock = await run("git", ["-C", repoRoot, "show", `${sha}:package-lock.json`]);
  if (lock.code !== 0) throw new Error(`no package-lock.json at ${sha}`);
  const packages = (JSON.parse(lock.stdout) as { packages: Record<string, { version?: string }> })
    .packages;
  const wanted = new Set<string>();
  for (const name of OWN) {
    const manifest = JSON.parse(readFileSync(path.join(dir, name, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      if (!OWN.includes(dep)) wanted.add(dep);
    }
  }
  const missing: string[] = [];
  for (const dep of [...wanted].sort()) {
    const version = packages[`node_modules/${dep}`]?.version;
    const present = path.join(repoRoot, "node_modules", dep, "package.json");
    const have = existsSync(present)
      ? (JSON.parse(readFileSync(present, "utf8")) as { version?: string }).version
      : undefined;
    if (version && have !== version) missing.push(`${dep}@${version}`);
  }
  return missing;
}
