// A service's version is the newest commit that touched anything its image or its rollout is made
// of. Two commits with the same version build the same image, so the version doubles as the image
// tag, and "what changed" is simply "whose version changed". Everything is read from git at the
// commit asked about, never from the working tree.
import { execFileSync } from "node:child_process";

/** Files that shape every image: the install, the build and the image recipe. */
export const SHARED_INPUTS = [
  "package.json",
  "package-lock.json",
  "turbo.json",
  "tsconfig.base.json",
  "Dockerfile",
  ".dockerignore",
];

/** A service is a workspace with a Kubernetes manifest of its own name. */
export const manifestOf = (service: string) => `deploy/k8s/${service}.yaml`;

export function git(cwd: string, args: string[]): string {
  try {
    return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`git ${args.join(" ")} failed${stderr ? `: ${stderr}` : ""}`);
  }
}

const exists = (cwd: string, rev: string, path: string) => {
  try {
    git(cwd, ["cat-file", "-e", `${rev}:${path}`]);
    return true;
  } catch {
    return false;
  }
};

const readJson = (cwd: string, rev: string, path: string) =>
  JSON.parse(git(cwd, ["show", `${rev}:${path}`])) as {
    name?: string;
    workspaces?: string[];
    dependencies?: Record<string, string>;
  };

/** The workspaces at `rev` (folders listed literally in the root package.json: no globs). */
interface Workspaces {
  dirs: Map<string, string>; // name -> folder
  deps: Map<string, string[]>; // name -> the workspaces in its `dependencies`
  services: string[];
}

function readWorkspaces(cwd: string, rev: string): Workspaces {
  const dirs = new Map<string, string>();
  const declared = new Map<string, string[]>();
  for (const dir of readJson(cwd, rev, "package.json").workspaces ?? []) {
    if (!exists(cwd, rev, `${dir}/package.json`)) continue;
    const pkg = readJson(cwd, rev, `${dir}/package.json`);
    const name = pkg.name ?? dir;
    dirs.set(name, dir);
    declared.set(name, Object.keys(pkg.dependencies ?? {}));
  }
  // Only run-time dependencies ship in an image; devDependencies (the test kit) never do.
  const deps = new Map([...declared].map(([name, all]) => [name, all.filter((d) => dirs.has(d))]));
  const services = [...dirs.keys()].filter((name) => exists(cwd, rev, manifestOf(name))).sort();
  return { dirs, deps, services };
}

/** What `service` is made of at the commit `ws` was read from. */
export function inputsOf(ws: Workspaces, service: string): string[] {
  if (!ws.services.includes(service)) throw new Error(`unknown service: ${service}`);
  const closure = new Set<string>();
  const visit = (name: string) => {
    if (closure.has(name)) return;
    closure.add(name);
    for (const dep of ws.deps.get(name) ?? []) visit(dep);
  };
  visit(service);
  const dirs = [...closure].map((name) => ws.dirs.get(name) as string).sort();
  return [...dirs, manifestOf(service), ...SHARED_INPUTS];
}

/** The repository's top folder: pathspecs in `git log` are relative to the working directory. */
const topOf = (dir: string) => git(dir, ["rev-parse", "--show-toplevel"]).trim();

function resolve(cwd: string, rev: string): string {
  if (git(cwd, ["rev-parse", "--is-shallow-repository"]).trim() === "true") {
    throw new Error(
      "this is a shallow clone: versions need full history " +
        "(git fetch --unshallow, or actions/checkout with fetch-depth: 0)",
    );
  }
  try {
    return git(cwd, ["rev-parse", "--verify", "--quiet", `${rev}^{commit}`]).trim();
  } catch {
    throw new Error(`unknown revision: ${rev}`);
  }
}

const newestTouching = (cwd: string, rev: string, paths: string[]) =>
  git(cwd, ["log", "-1", "--format=%H", rev, "--", ...paths]).trim();

/** Every service at `rev` with its version, in name order. */
export function versions(dir: string, rev = "HEAD"): Map<string, string> {
  const cwd = topOf(dir);
  const commit = resolve(cwd, rev);
  const ws = readWorkspaces(cwd, commit);
  return new Map(ws.services.map((s) => [s, newestTouching(cwd, commit, inputsOf(ws, s))]));
}

/** The services whose version differs between `base` and `head` (all of them for git's null sha). */
export function affected(cwd: string, base: string, head: string): string[] {
  const after = versions(cwd, head);
  if (/^0{40}$/.test(base)) return [...after.keys()];
  const before = versions(cwd, base);
  return [...after].filter(([service, version]) => before.get(service) !== version).map(([s]) => s);
}

/** Exposed for tests: the workspace graph as git has it at `rev`. */
export const workspacesAt = (cwd: string, rev: string) => readWorkspaces(cwd, resolve(cwd, rev));
