// Versions and affected services, on a throwaway repository shaped like this one.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { affected, versions } from "../lib/versions";
import { fixtureRepo, SCRIPTS } from "./helpers";

const repo = fixtureRepo();
after(() => repo.remove());
const pkg = (name: string, extra = {}) => JSON.stringify({ name, ...extra });

// Each case commits its change on top of the previous ones; `affected` is base → that commit.
const cases: [string, () => void, string[]][] = [
  [
    "tpi (a run-time dependency) affects both",
    () => repo.write("tpi/src/index.ts", "1"),
    ["chillybin", "jafflr"],
  ],
  [
    "a change inside jafflr affects only jafflr",
    () => repo.write("jafflr/src/grill.ts", "2"),
    ["jafflr"],
  ],
  [
    "a service's own manifest is part of it",
    () => repo.write("deploy/k8s/chillybin.yaml", "replicas: 3\n"),
    ["chillybin"],
  ],
  [
    "a lockfile change affects both",
    () => repo.write("package-lock.json", "{}\n{}\n"),
    ["chillybin", "jafflr"],
  ],
  [
    "README, docs, integration tests, delivery scripts, other manifests affect none",
    () => {
      for (const path of [
        "README.md",
        "docs/x.md",
        "integration-tests/src/index.ts",
        "scripts/delivery/deploy.sh",
        "deploy/k8s/postgres.yaml",
      ])
        repo.write(path, "3");
    },
    [],
  ],
  [
    "a test kit services devDepend on affects none",
    () => repo.write("scripts/testkit/src/eventually.ts", "4"),
    [],
  ],
  [
    "a new workspace nothing depends on affects only through the root manifest",
    () =>
      repo
        .editJson("package.json", (p) => p.workspaces.push("menu"))
        .write("menu/package.json", pkg("menu")),
    ["chillybin", "jafflr"],
  ],
  ["a workspace nothing depends on affects none", () => repo.write("menu/src/index.ts", "5"), []],
  [
    "a new dependency edge (read at each commit) affects its dependant",
    () => repo.editJson("jafflr/package.json", (p) => Object.assign(p.dependencies, { menu: "*" })),
    ["jafflr"],
  ],
  ["through the new edge", () => repo.write("menu/src/index.ts", "6"), ["jafflr"]],
  [
    "a new service is affected",
    () =>
      repo
        .editJson("package.json", (p) => p.workspaces.push("till"))
        .write("till/package.json", pkg("till"))
        .write("deploy/k8s/till.yaml", "7"),
    ["chillybin", "jafflr", "till"],
  ],
];
const shas: string[] = [repo.git("rev-parse", "HEAD")];
for (const [name, change, expected] of cases) {
  test(name, () => {
    const base = shas.at(-1) ?? "";
    change();
    shas.push(repo.commit(name));
    assert.deepEqual(affected(repo.dir, base, "HEAD"), expected);
    for (const service of expected) assert.equal(versions(repo.dir).get(service), shas.at(-1));
  });
}

test("an old version is judged with the old graph; a null base means every service", () => {
  assert.equal(versions(repo.dir, shas[8]).get("jafflr"), shas[7], "menu was not in jafflr yet");
  assert.equal(versions(repo.dir, shas[10]).get("jafflr"), shas[10], "but is since");
  assert.deepEqual(affected(repo.dir, "0".repeat(40), "HEAD"), ["chillybin", "jafflr", "till"]);
});

test("the commands answer from any folder, one line each; bad input fails with a message", () => {
  const run = (cmd: string, ...args: string[]) =>
    spawnSync(join(SCRIPTS, cmd), args, { cwd: join(repo.dir, "jafflr"), encoding: "utf8" });
  const [head, first] = [shas.at(-1), shas[0]];
  assert.equal(run("affected", first ?? "", "HEAD").stdout, "chillybin\njafflr\ntill\n");
  assert.equal(run("affected", "HEAD", "HEAD").stdout, "");
  assert.equal(run("last-commit", "till").stdout, `${head}\n`);
  assert.match(
    run("last-commit", "--all", first ?? "").stdout,
    new RegExp(`^chillybin ${first}\njafflr ${first}\n$`),
  );
  for (const [args, status, message] of [
    [["affected", "no-such-rev", "HEAD"], 1, /unknown revision: no-such-rev/],
    [["last-commit", "toaster"], 1, /unknown service: toaster/],
    [["affected", "HEAD"], 2, /usage: affected <base> <head>/],
  ] as const) {
    const result = run(...(args as unknown as [string, ...string[]]));
    assert.equal(result.status, status, result.stderr);
    assert.match(result.stderr, message);
  }
  const shallow = mkdtempSync(join(tmpdir(), "toasties-shallow-"));
  execFileSync("git", ["clone", "-q", "--depth=1", `file://${repo.dir}`, shallow]);
  const result = spawnSync(join(SCRIPTS, "last-commit"), ["jafflr"], {
    cwd: shallow,
    encoding: "utf8",
  });
  rmSync(shallow, { recursive: true, force: true });
  assert.match(result.stderr, /shallow clone.*fetch-depth: 0/);
});
