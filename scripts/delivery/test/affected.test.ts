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
const workspace = (name: string, manifest?: boolean) => () => {
  repo
    .editJson("package.json", (p) => p.workspaces.push(name))
    .write(`${name}/package.json`, `{"name":"${name}"}`);
  if (manifest) repo.write(`deploy/k8s/${name}.yaml`, "");
};
const edge = () =>
  repo.editJson("jafflr/package.json", (p) => Object.assign(p.dependencies, { menu: "*" }));

// Each case commits a change (files written anew, or an edit) on top of the previous ones; "+" marks
// a change to the pipeline's version (the delivery machinery, beside the services).
const cases: [string, string | (() => void), string][] = [
  ["tpi (a run-time dependency) affects both", "tpi/src/index.ts", "chillybin jafflr"],
  ["a change inside jafflr affects only jafflr", "jafflr/src/grill.ts", "jafflr"],
  ["a service's own manifest is part of it", "deploy/k8s/chillybin.yaml", "chillybin"],
  ["a lockfile change affects both", "package-lock.json", "chillybin jafflr"],
  [
    "docs and tests affect none",
    "README.md docs/x.md integration-tests/src/x.ts scripts/delivery/test/x.ts",
    "",
  ],
  ["delivery scripts, workflows: the pipeline", "scripts/delivery/a.sh .github/workflows/b", "+"],
  ["other manifests: the pipeline", "deploy/k8s/postgres.yaml", "+"],
  ["a test kit services devDepend on affects none", "scripts/testkit/src/eventually.ts", ""],
  ["a new workspace: the root manifest changed", workspace("menu"), "chillybin jafflr"],
  ["a workspace nothing depends on affects none", "menu/src/index.ts", ""],
  ["a new dependency edge (read at each commit)", edge, "jafflr"],
  ["affects the dependant through it", "menu/src/index.ts", "jafflr"],
  ["a new service is affected", workspace("till", true), "chillybin jafflr till"],
];
const shas: string[] = [repo.git("rev-parse", "HEAD")];
for (const [name, change, expected] of cases) {
  test(name, () => {
    const base = shas.at(-1) ?? "";
    if (typeof change === "string") for (const path of change.split(" ")) repo.write(path, name);
    else change();
    shas.push(repo.commit(name));
    const services = expected.split(" ").filter((s) => s && s !== "+");
    assert.deepEqual(affected(repo.dir, base, "HEAD"), services);
    const now = versions(repo.dir);
    for (const service of services) assert.equal(now.get(service), shas.at(-1));
    assert.equal(now.get("pipeline") === shas.at(-1), expected === "+", "the pipeline");
  });
}

test("an old version is judged with the old graph; a null base means every service", () => {
  assert.equal(versions(repo.dir, shas[10]).get("jafflr"), shas[9], "menu was not in jafflr yet");
  assert.equal(versions(repo.dir, shas[12]).get("jafflr"), shas[12], "but is since");
  assert.deepEqual(affected(repo.dir, "0".repeat(40), "HEAD"), ["chillybin", "jafflr", "till"]);
});

test("the commands answer from any folder, one line each; bad input fails with a message", () => {
  const run = (cmd: string, ...args: string[]) =>
    spawnSync(join(SCRIPTS, cmd), args, { cwd: join(repo.dir, "jafflr"), encoding: "utf8" });
  const [head, first] = [shas.at(-1), shas[0]];
  assert.equal(run("affected", first ?? "", "HEAD").stdout, "chillybin\njafflr\ntill\n");
  assert.equal(run("affected", "HEAD", "HEAD").stdout, "");
  assert.equal(run("last-commit", "till").stdout, `${head}\n`);
  assert.equal(run("last-commit", "pipeline").stdout, `${shas[7]}\n`);
  assert.equal(
    run("last-commit", "--all", first ?? "").stdout,
    `chillybin ${first}\njafflr ${first}\npipeline ${first}\n`,
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
