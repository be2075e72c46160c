import { listDirs, type Repo, showFile } from "./git";

/** One npm workspace as recorded in a given commit. */
export interface Workspace {
  name: string;
  /** Folder relative to the repository root, e.g. "jafflr". */
  dir: string;
  /** Other workspaces it needs at run time: dependencies, optionalDependencies, peerDependencies. */
  deps: string[];
  /** Other workspaces in its devDependencies: build or test inputs. */
  devDeps: string[];
  /** Has a `start` script: something that runs as a process, i.e. a deployable service. */
  runnable: boolean;
}

export interface WorkspaceGraph {
  rev: string;
  workspaces: Map<string, Workspace>;
}

interface PackageJson {
  name?: string;
  workspaces?: string[] | { packages?: string[] };
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const RUNTIME_FIELDS = ["dependencies", "optionalDependencies", "peerDependencies"] as const;

function parsePackageJson(text: string, where: string): PackageJson {
  try {
    return JSON.parse(text) as PackageJson;
  } catch (error) {
    throw new Error(`${where} is not valid JSON: ${(error as Error).message}`);
  }
}

function workspacePatterns(root: PackageJson): string[] {
  const field = root.workspaces;
  if (Array.isArray(field)) return field;
  return field?.packages ?? [];
}

/** Expands npm workspace patterns ("tpi", "packages/*") into folders that exist at `rev`. */
function expandPatterns(repo: Repo, rev: string, patterns: string[]): string[] {
  const dirs = new Set<string>();
  for (const raw of patterns) {
    const pattern = raw.replace(/^\.\//, "").replace(/\/+$/, "");
    if (!pattern.includes("*")) {
      dirs.add(pattern);
      continue;
    }
    // Expand segment by segment so "apps/*" and "*/svc" both work; "**" is not used by npm here.
    let candidates = [""];
    for (const segment of pattern.split("/")) {
      const next: string[] = [];
      for (const base of candidates) {
        if (!segment.includes("*")) {
          next.push(base === "" ? segment : `${base}/${segment}`);
          continue;
        }
        const re = new RegExp(`^${segment.split("*").map(escapeRegExp).join("[^/]*")}$`);
        for (const child of listDirs(repo, rev, base)) {
          if (re.test(child)) next.push(base === "" ? child : `${base}/${child}`);
        }
      }
      candidates = next;
    }
    for (const dir of candidates) dirs.add(dir);
  }
  return [...dirs].sort();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Reads the workspace graph as it was committed at `rev` (never the working tree). */
export function readWorkspaceGraph(repo: Repo, rev: string): WorkspaceGraph {
  const rootText = showFile(repo, rev, "package.json");
  if (rootText === undefined) throw new Error(`no package.json at the repository root in ${rev}`);
  const root = parsePackageJson(rootText, `package.json@${rev}`);

  const manifests: { dir: string; pkg: PackageJson }[] = [];
  for (const dir of expandPatterns(repo, rev, workspacePatterns(root))) {
    const text = showFile(repo, rev, `${dir}/package.json`);
    if (text === undefined) continue; // a pattern may name a folder not created yet
    manifests.push({ dir, pkg: parsePackageJson(text, `${dir}/package.json@${rev}`) });
  }

  const names = new Set(manifests.map(({ dir, pkg }) => pkg.name ?? dir));
  const workspaces = new Map<string, Workspace>();
  for (const { dir, pkg } of manifests) {
    const name = pkg.name ?? dir;
    const workspaceDeps = (fields: readonly (keyof PackageJson)[]) => {
      const deps = new Set<string>();
      for (const field of fields) {
        for (const dep of Object.keys((pkg[field] as Record<string, string>) ?? {})) {
          if (names.has(dep) && dep !== name) deps.add(dep);
        }
      }
      return [...deps].sort();
    };
    workspaces.set(name, {
      name,
      dir,
      deps: workspaceDeps(RUNTIME_FIELDS),
      devDeps: workspaceDeps(["devDependencies"]),
      runnable: typeof pkg.scripts?.start === "string",
    });
  }
  return { rev, workspaces };
}

/**
 * The workspace plus every workspace it needs at run time, transitively (cycles tolerated): its
 * runtime dependencies only. devDependencies are test-time relations (the test kit, the local-dev
 * database, another service a test starts): the image never contains them, so a change to a test
 * helper must not re-version an unchanged image.
 */
export function dependencyClosure(graph: WorkspaceGraph, name: string): Workspace[] {
  const seen = new Map<string, Workspace>();
  const visit = (current: string) => {
    const ws = graph.workspaces.get(current);
    if (ws === undefined || seen.has(current)) return;
    seen.set(current, ws);
    for (const dep of ws.deps) visit(dep);
  };
  visit(name);
  return [...seen.values()];
}

/**
 * Services are the deployable workspaces: those with a `start` script. Libraries (tpi), test
 * suites (integration-tests) and tooling (scripts) have none.
 */
export function serviceNames(graph: WorkspaceGraph): string[] {
  return [...graph.workspaces.values()]
    .filter((ws) => ws.runnable)
    .map((ws) => ws.name)
    .sort();
}
