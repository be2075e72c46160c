// Recording stand-ins for kubectl, docker, kind and gh, put first on PATH so the delivery scripts
// run for real against them. There is no cluster, engine or GitHub here: these tests prove the
// scripts' decisions (what they call, in which order, with which arguments), never that a
// cluster ran anything.
//
// Each fake appends "<tool> <args>" to calls.log, keeps a copy of every file passed with -f or
// --input (applied/<n>-<name>), and answers from rules: the first rule whose tool matches and whose
// bash glob matches the joined arguments decides the exit code and the output (stdout, or stderr
// when marked). gh's --jq expression is applied to the rule's JSON with jq, as gh would.
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Rule {
  tool: "kubectl" | "docker" | "kind" | "gh";
  /** A bash glob over the arguments joined by spaces, e.g. "*get deployment jafflr*". */
  args: string;
  exit?: number;
  stdout?: string;
  stderr?: string;
}

const FAKE = `#!/usr/bin/env bash
tool="$(basename "$0")"
args="$*"
printf '%s %s\\n' "$tool" "$args" >>"$FAKE_DIR/calls.log"
prev=""
for arg in "$@"; do
  if [[ ( "$prev" == -f || "$prev" == --input ) && -f "$arg" ]]; then
    n="$(ls "$FAKE_DIR/applied" | wc -l | tr -d ' ')"
    cp "$arg" "$FAKE_DIR/applied/$(printf '%03d' "$n")-$(basename "$arg")"
  fi
  [[ "$prev" == --jq ]] && jq_expr="$arg"
  prev="$arg"
done
while IFS=$'\\t' read -r rule_tool pattern code stream out; do
  [[ "$rule_tool" == "$tool" ]] || continue
  # shellcheck disable=SC2053
  [[ "$args" == $pattern ]] || continue
  if [[ "$stream" == stderr ]]; then
    printf '%b' "$out" >&2
  elif [[ -n "\${jq_expr:-}" ]]; then
    printf '%b' "$out" | jq -r "$jq_expr"
  else
    printf '%b' "$out"
  fi
  exit "$code"
done <"$FAKE_DIR/rules.tsv"
exit 0
`;

export class FakeTools {
  readonly dir = mkdtempSync(join(tmpdir(), "toasties-fakes-"));
  readonly bin = join(this.dir, "bin");

  constructor() {
    mkdirSync(this.bin);
    for (const tool of ["kubectl", "docker", "kind", "gh"]) {
      writeFileSync(join(this.bin, tool), FAKE);
      chmodSync(join(this.bin, tool), 0o755);
    }
    this.reset([]);
  }

  /** Forgets the calls so far and answers with `rules` from now on. */
  reset(rules: Rule[]): void {
    rmSync(join(this.dir, "applied"), { recursive: true, force: true });
    mkdirSync(join(this.dir, "applied"));
    writeFileSync(join(this.dir, "calls.log"), "");
    const oneLine = (text: string) => text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
    const lines = rules.map((r) =>
      [
        r.tool,
        r.args,
        r.exit ?? 0,
        r.stderr === undefined ? "stdout" : "stderr",
        oneLine(r.stderr ?? r.stdout ?? ""),
      ].join("\t"),
    );
    writeFileSync(join(this.dir, "rules.tsv"), lines.map((line) => `${line}\n`).join(""));
  }

  /** Every call so far, "<tool> <args>", in order. */
  calls(): string[] {
    return readFileSync(join(this.dir, "calls.log"), "utf8").split("\n").filter(Boolean);
  }

  /** The files passed with -f or --input, in order: [name, content]. */
  applied(): [string, string][] {
    const dir = join(this.dir, "applied");
    return readdirSync(dir)
      .sort()
      .map((name) => [name.slice(4), readFileSync(join(dir, name), "utf8")]);
  }

  /** The environment that puts the fakes first on PATH. */
  env(): Record<string, string> {
    return {
      PATH: `${this.bin}:${process.env.PATH}`,
      FAKE_DIR: this.dir,
      DOCKER: "docker",
      KUBECTL: "kubectl",
      KIND: "kind",
      GH: "gh",
    };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The index of the first call matching `pattern`, -1 when none does. */
export function indexOf(calls: string[], pattern: RegExp): number {
  return calls.findIndex((call) => pattern.test(call));
}
