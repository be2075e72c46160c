// A service's version is the newest commit that touched anything its image or its rollout is made
// of, so the version doubles as the image tag and "what changed" is "whose version changed". It
// is read from git at the commit asked about, never from the working tree. Behind
// scripts/delivery/last-commit and scripts/delivery/affected (see their usage).
import { execFileSync } from "node:child_process";

/** Files that shape every image: the install, the build and the image recipe. */
const SHARED =
  "package.json package-lock.json turbo.json tsconfig.base.json Dockerfile .dockerignore".split(
    " ",
  );
const manifestOf = (service: string) => `deploy/k8s/${service}.yaml`;
/** The delivery machinery: what deploys, proves and rehearses (a service's own manifest is its). */
const PIPELINE = [".github/workflows", "scripts/delivery", ":!scripts/delivery/test", "deploy/k8s"];

function git(cwd: string, args: string[], failure?: string): string {
  try {
    return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(failure ?? `git ${args.join(" ")} failed: ${stderr}`);
  }
}
type Package = { name?: string; workspaces?: string[]; dependencies?: object };
/** Those of `paths` that exist at `commit`, with their content: one git call for all. */
function read(cwd: string, commit: string, paths: string[]): Map<string, string> {
  const input = paths.map((path) => `${commit}:${path}\n`).join("");
  const out = execFileSync("git", ["cat-file", "--batch"], { cwd, input });
  const files = new Map<string, string>();
  let at = 0;
  for (const path of paths) {
    const eol = out.indexOf(10, at); // "<sha> blob <size>" then the content, or "<name> missing"
    const [, type, size] = out.subarray(at, eol).toString().split(" ");
    const end = type === "blob" ? eol + 1 + Number(size) : eol;
    if (type === "blob") files.set(path, out.subarray(eol + 1, end).toString());
    at = end + 1;
  }
  return files;
}

/**
 * Every service at `rev` with its version, in name order, then "pipeline". A service is a workspace
 * with a manifest of its name; it is made of its folder, the workspaces it depends on at run time
 * (transitively; devDependencies such as the test kit never ship), its manifest and the shared
 * files. The pipeline is PIPELINE without the services' manifests, versioned the same way.
 */
export function versions(dir: string, rev = "HEAD"): Map<string, string> {
  const cwd = git(dir, ["rev-parse", "--show-toplevel"]).trim(); // pathspecs are relative to it
  const asked = ["rev-parse", "--is-shallow-repository", "--verify", "--quiet", `${rev}^{commit}`];
  const [shallow, commit = ""] = git(cwd, asked, `unknown revision: ${rev}`).split("\n");
  if (shallow === "true")
    throw new Error(
      "this is a shallow clone: versions need full history (git fetch --unshallow, or actions/checkout with fetch-depth: 0)",
    );
  const dirs = new Map<string, string>();
  const deps = new Map<string, string[]>();
  const root: Package = JSON.parse(read(cwd, commit, ["package.json"]).get("package.json") ?? "{}");
  const folders = root.workspaces ?? [];
  for (const [path, text] of read(
    cwd,
    commit,
    folders.map((f) => `${f}/package.json`),
  )) {
    const [folder, pkg]: [string, Package] = [path.replace("/package.json", ""), JSON.parse(text)];
    dirs.set(pkg.name ?? folder, folder);
    deps.set(pkg.name ?? folder, Object.keys(pkg.dependencies ?? {}));
  }
  const closure = (name: string, seen = new Set<string>()): Set<string> => {
    if (!dirs.has(name) || seen.has(name)) return seen;
    seen.add(name);
    for (const dep of deps.get(name) ?? []) closure(dep, seen);
    return seen;
  };
  const manifests = read(cwd, commit, [...dirs.keys()].map(manifestOf));
  const services = [...dirs.keys()].filter((name) => manifests.has(manifestOf(name))).sort();
  const last = (inputs: string[]) =>
    git(cwd, ["log", "-1", "--format=%H", commit, "--", ...inputs]).trim();
  return new Map([
    ...services.map((service) => {
      const made = [...closure(service)].map((name) => dirs.get(name) ?? "");
      return [service, last([...made, manifestOf(service), ...SHARED])] as const;
    }),
    ["pipeline", last([...PIPELINE, ...services.map((s) => `:!${manifestOf(s)}`)])],
  ]);
}

/** The services whose version differs between `base` and `head` (all of them for git's null sha). */
export function affected(cwd: string, base: string, head: string): string[] {
  const after = versions(cwd, head);
  const before = /^0{40}$/.test(base) ? new Map() : versions(cwd, base);
  after.delete("pipeline");
  return [...after].filter(([service, version]) => before.get(service) !== version).map(([s]) => s);
}

// Run as a command (by last-commit, with tsx or Node's own type stripping), not imported.
if (process.argv[1]?.endsWith("versions.ts")) {
  const [command, first, second, ...rest] = process.argv.slice(2);
  const usage =
    command === "affected"
      ? "usage: affected <base> <head>   the services whose version differs, one per line"
      : "usage: last-commit <service|pipeline> [rev] | last-commit --all [rev]   a version, or all";
  try {
    if ([first, second].some((a) => a === "-h" || a === "--help")) console.log(usage);
    else if (!first || rest.length > 0 || (command === "affected" && !second)) {
      console.error(usage);
      process.exitCode = 2;
    } else if (command === "affected") {
      for (const service of affected(process.cwd(), first, second ?? "")) console.log(service);
    } else {
      // One answer for all: scripts/delivery/last-commit keeps it and picks the line asked for.
      for (const [name, version] of versions(process.cwd(), second))
        console.log(`${name} ${version}`);
    }
  } catch (error) {
    console.error(`${command}: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
