// A throwaway git repository shaped like this monorepo, for tests that need real commits.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

/** The real checkout these tests live in. */
export const REPO_ROOT = resolve(__dirname, "..", "..", "..");

// Isolated from the user's git config, hooks and signing, with fixed identities.
const GIT_ENV = {
  ...process.env,
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "Fixture",
  GIT_AUTHOR_EMAIL: "fixture@example.invalid",
  GIT_COMMITTER_NAME: "Fixture",
  GIT_COMMITTER_EMAIL: "fixture@example.invalid",
};

export class FixtureRepo {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  git(...args: string[]): string {
    return execFileSync("git", args, { cwd: this.dir, env: GIT_ENV, encoding: "utf8" }).trim();
  }

  write(path: string, content: string): this {
    const full = join(this.dir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
    return this;
  }

  read(path: string): string {
    return readFileSync(join(this.dir, path), "utf8");
  }

  /** Rewrites a JSON file through `change`. */
  editJson(path: string, change: (json: Record<string, unknown>) => void): this {
    const json = JSON.parse(this.read(path)) as Record<string, unknown>;
    change(json);
    return this.write(path, `${JSON.stringify(json, null, 2)}\n`);
  }

  /** Stages everything and commits; returns the new commit's sha. */
  commit(message: string): string {
    this.git("add", "-A");
    this.git("commit", "--quiet", "--allow-empty", "-m", message);
    return this.git("rev-parse", "HEAD");
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The workspace folders of the real repository, from its root package.json. */
function realWorkspaceDirs(): string[] {
  const root = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
    workspaces: string[];
  };
  return root.workspaces;
}

/**
 * A repository with the real root and workspace package.json files (so the dependency shape is
 * the real one), the real Kubernetes manifests (which say what is a service), the shared build
 * files and one small source file per workspace, committed once.
 */
export function createFixtureRepo(extraFiles: string[] = []): FixtureRepo {
  // extraFiles: more files or folders of the real checkout to copy in, e.g. ".github".
  const repo = new FixtureRepo(mkdtempSync(join(tmpdir(), "toasties-fixture-")));
  repo.git("init", "--quiet", "--initial-branch=main");
  const copy = (path: string) => {
    mkdirSync(dirname(join(repo.dir, path)), { recursive: true });
    cpSync(join(REPO_ROOT, path), join(repo.dir, path), { recursive: true });
  };
  for (const file of [
    "package.json",
    "turbo.json",
    "tsconfig.base.json",
    "deploy/k8s",
    ...extraFiles,
  ])
    copy(file);
  for (const dir of realWorkspaceDirs()) {
    mkdirSync(join(repo.dir, dir), { recursive: true });
    copy(`${dir}/package.json`);
    repo.write(`${dir}/src/index.ts`, `export const name = ${JSON.stringify(dir)};\n`);
  }
  repo.write("package-lock.json", `${JSON.stringify({ lockfileVersion: 3, packages: {} })}\n`);
  repo.write("Dockerfile", "FROM scratch\n");
  repo.write("README.md", "# fixture\n");
  repo.commit("initial layout");
  return repo;
}
