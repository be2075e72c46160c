import { execFileSync } from "node:child_process";

/** A git repository addressed by its top-level directory; every path below is relative to it. */
export interface Repo {
  root: string;
}

export class GitError extends Error {}

/** Runs git and returns stdout; a non-zero exit becomes a GitError carrying git's own message. */
export function git(repo: Repo, args: string[]): string {
  try {
    return execFileSync("git", args, {
      cwd: repo.root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new GitError(`git ${args.join(" ")} failed${stderr ? `: ${stderr}` : ""}`);
  }
}

/** The repository containing `dir` (default: the current directory). */
export function openRepo(dir: string = process.cwd()): Repo {
  const root = git({ root: dir }, ["rev-parse", "--show-toplevel"]).trim();
  return { root };
}

/**
 * A shallow clone truncates history, so "the newest commit touching these paths" would silently
 * become the clone's boundary commit. Refuse instead of answering wrongly.
 */
export function assertFullHistory(repo: Repo): void {
  if (git(repo, ["rev-parse", "--is-shallow-repository"]).trim() === "true") {
    throw new GitError(
      "this is a shallow clone: the last relevant commit needs full history " +
        "(git fetch --unshallow, or actions/checkout with fetch-depth: 0)",
    );
  }
}

/** Resolves a revision to a full commit sha, or throws naming the revision. */
export function resolveCommit(repo: Repo, rev: string): string {
  try {
    return git(repo, ["rev-parse", "--verify", "--quiet", `${rev}^{commit}`]).trim();
  } catch {
    throw new GitError(`unknown revision: ${rev}`);
  }
}

/** The content of `path` at `rev`, or undefined when the file does not exist there. */
export function showFile(repo: Repo, rev: string, path: string): string | undefined {
  try {
    return git(repo, ["show", `${rev}:${path}`]);
  } catch {
    return undefined;
  }
}

/** Sub-directory names of `dir` (relative to the root, "" for the root) at `rev`. */
export function listDirs(repo: Repo, rev: string, dir: string): string[] {
  const prefix = dir === "" ? "" : `${dir.replace(/\/+$/, "")}/`;
  let out: string;
  try {
    out = git(repo, ["ls-tree", "-d", "--name-only", rev, prefix === "" ? "." : prefix]);
  } catch {
    return [];
  }
  return out
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.slice(prefix.length));
}

/** The newest commit reachable from `rev` that touched any of `paths`, or undefined. */
export function lastCommitTouching(repo: Repo, rev: string, paths: string[]): string | undefined {
  const sha = git(repo, ["log", "-1", "--format=%H", rev, "--", ...paths]).trim();
  return sha === "" ? undefined : sha;
}
