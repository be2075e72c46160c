// What the delivery tests share: the real checkout, a throwaway git repository shaped like it, and
// recording fakes of kubectl, docker, kind and gh put first on PATH, so the scripts run for real
// and the tests see what they decided to call (never that a cluster ran anything).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

export const REPO_ROOT = resolve(__dirname, "..", "..", "..");
export const SCRIPTS = join(REPO_ROOT, "scripts", "delivery");
export const readRepo = (path: string) => fs.readFileSync(join(REPO_ROOT, path), "utf8");

/** A repository with the real package.json files and manifests and one source file per workspace. */
export function fixtureRepo() {
  const dir = fs.mkdtempSync(join(tmpdir(), "toasties-fixture-"));
  const env = { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" };
  const who = ["-c", "user.name=Fixture", "-c", "user.email=fixture@example.invalid"];
  const repo = {
    dir,
    git: (...args: string[]) =>
      execFileSync("git", [...who, ...args], { cwd: dir, env, encoding: "utf8" }).trim(),
    read: (path: string) => fs.readFileSync(join(dir, path), "utf8"),
    write(path: string, content: string) {
      fs.mkdirSync(dirname(join(dir, path)), { recursive: true });
      fs.writeFileSync(join(dir, path), content);
      return repo;
    },
    // biome-ignore lint/suspicious/noExplicitAny: package.json files, edited field by field
    editJson(path: string, change: (json: Record<string, any>) => void) {
      const json = JSON.parse(repo.read(path));
      change(json);
      return repo.write(path, JSON.stringify(json));
    },
    /** Everything staged and committed; the new commit's sha. */
    commit: (message = "change") =>
      repo.git("add", "-A") +
      repo.git("commit", "-q", "--allow-empty", "-m", message) +
      repo.git("rev-parse", "HEAD"),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  repo.git("init", "-q", "--initial-branch=main");
  for (const path of ["package.json", "turbo.json", "tsconfig.base.json", "deploy/k8s"])
    fs.cpSync(join(REPO_ROOT, path), join(dir, path), { recursive: true });
  for (const ws of JSON.parse(readRepo("package.json")).workspaces as string[]) {
    repo
      .write(`${ws}/package.json`, readRepo(`${ws}/package.json`))
      .write(`${ws}/src/index.ts`, `export const name = "${ws}";\n`);
  }
  repo
    .write("package-lock.json", "{}\n")
    .write("Dockerfile", "FROM scratch\n")
    .commit("initial layout");
  return repo;
}

/** The first rule whose tool matches and whose bash glob matches the joined arguments answers: a string is stdout. */
export type Rule = [
  tool: string,
  glob: string,
  answer?: string | { exit?: number; stdout?: string; stderr?: string },
];

// Appends "<tool> <args>" to calls.log, keeps each file passed with -f or --input in applied/, and
// answers from rules.tsv; gh's --jq is applied to the answer with jq, as gh would.
const FAKE = `#!/usr/bin/env bash
printf '%s %s\\n' "$(basename "$0")" "$*" >>"$FAKE_DIR/calls.log"
prev=""
for arg in "$@"; do
  if [[ ( "$prev" == -f || "$prev" == --input ) && -f "$arg" ]]; then
    cp "$arg" "$FAKE_DIR/applied/$(ls "$FAKE_DIR/applied" | wc -l | awk '{ printf "%03d", $1 }')-$(basename "$arg")"
  fi
  [[ "$prev" == --jq ]] && jq_expr="$arg"
  prev="$arg"
done
while IFS=$'\\t' read -r tool pattern code stream out; do
  # shellcheck disable=SC2053
  [[ "$tool" == "$(basename "$0")" && "$*" == $pattern ]] || continue
  if [[ "$stream" == stderr ]]; then printf '%b' "$out" >&2
  elif [[ -n "\${jq_expr:-}" ]]; then printf '%b' "$out" | jq -r "$jq_expr"
  else printf '%b' "$out"; fi
  exit "$code"
done <"$FAKE_DIR/rules.tsv"
`;

export class FakeTools {
  readonly dir = fs.mkdtempSync(join(tmpdir(), "toasties-fakes-"));

  constructor() {
    fs.mkdirSync(join(this.dir, "bin"));
    for (const tool of ["kubectl", "docker", "kind", "gh"])
      fs.writeFileSync(join(this.dir, "bin", tool), FAKE, { mode: 0o755 });
  }

  /** Runs a delivery script against the fakes answering with `rules`: its output and the calls it made. */
  run(
    script: string,
    args: string[],
    rules: Rule[] = [],
    options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ) {
    fs.rmSync(join(this.dir, "applied"), { recursive: true, force: true });
    fs.mkdirSync(join(this.dir, "applied"));
    fs.writeFileSync(join(this.dir, "calls.log"), "");
    const line = ([tool, glob, answer = ""]: Rule) => {
      const a =
        typeof answer === "string" ? { stdout: answer, stderr: undefined, exit: 0 } : answer;
      const text = (a.stderr ?? a.stdout ?? "").replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
      return `${tool}\t${glob}\t${a.exit ?? 0}\t${a.stderr === undefined ? "stdout" : "stderr"}\t${text}\n`;
    };
    fs.writeFileSync(join(this.dir, "rules.tsv"), rules.map(line).join(""));
    // No GitHub or cluster settings of the caller's; the fakes first on PATH.
    const own =
      "GITHUB_REPOSITORY= GITHUB_RUN_ID= CHILLYBIN_DATABASE_URL= REGISTRY_PULL_TOKEN= DOCKER=docker KUBECTL=kubectl KIND=kind GH=gh";
    const env = {
      ...process.env,
      ...Object.fromEntries(own.split(" ").map((kv) => kv.split("="))),
    };
    Object.assign(
      env,
      {
        IMAGE_REPOSITORY: "ghcr.io/Octo-Cat/toasties-galore",
        FAKE_DIR: this.dir,
        PATH: `${this.dir}/bin:${env.PATH}`,
      },
      options.env,
    );
    // A TypeScript script runs as its command line does, under tsx.
    const path = resolve(SCRIPTS, script); // or an absolute path
    const [bin, ...pre] = path.endsWith(".ts")
      ? [process.execPath, "--import", "tsx", path]
      : [path];
    const result = spawnSync(bin, [...pre, ...args], {
      cwd: options.cwd,
      env,
      encoding: "utf8",
      timeout: 120_000,
    });
    const calls = fs.readFileSync(join(this.dir, "calls.log"), "utf8").split("\n").filter(Boolean);
    const log = `${result.stdout}${result.stderr}\n--- calls:\n${calls.join("\n")}`;
    return {
      ...result,
      calls,
      log,
      /** The files passed with -f or --input, in order: [name, content]. */
      applied: fs
        .readdirSync(join(this.dir, "applied"))
        .sort()
        .map((n) => [n.slice(4), fs.readFileSync(join(this.dir, "applied", n), "utf8")] as const),
      /** The index of the first call matching, asserting there is one. */
      at(pattern: RegExp) {
        const i = calls.findIndex((call) => pattern.test(call));
        assert.ok(i >= 0, `no call ${pattern}:\n${log}`);
        return i;
      },
      /** Each pattern matches a call after the previous one's. */
      inOrder(...patterns: RegExp[]) {
        const at = patterns.map(this.at);
        assert.deepEqual(
          at,
          [...at].sort((a, b) => a - b),
          log,
        );
      },
      none: (pattern: RegExp) =>
        assert.ok(!calls.some((c) => pattern.test(c)), `${pattern}:\n${log}`),
    };
  }

  remove = () => fs.rmSync(this.dir, { recursive: true, force: true });
}
