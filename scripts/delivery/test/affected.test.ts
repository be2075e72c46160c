// Versions and affected services, on a throwaway repository shaped like this one.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { affected as affectedIn, inputsOf, versions, workspacesAt } from "../lib/versions";
import { createFixtureRepo, type FixtureRepo, REPO_ROOT } from "./fixture-repo";

const SCRIPTS = join(REPO_ROOT, "scripts", "delivery");

describe("service versions and affected services", () => {
  let fixture: FixtureRepo;
  const affected = (base: string, head: string) => affectedIn(fixture.dir, base, head);
  const version = (service: string, rev = "HEAD") => versions(fixture.dir, rev).get(service);
  const head = () => fixture.git("rev-parse", "HEAD");

  before(() => {
    fixture = createFixtureRepo();
  });
  after(() => fixture.remove());

  test("a service is a workspace with a manifest; its inputs are its runtime closure", () => {
    const ws = workspacesAt(fixture.dir, "HEAD");
    assert.deepEqual(ws.services, ["chillybin", "jafflr"]);
    assert.deepEqual(inputsOf(ws, "chillybin"), [
      "chillybin",
      "tpi",
      "deploy/k8s/chillybin.yaml",
      "package.json",
      "package-lock.json",
      "turbo.json",
      "tsconfig.base.json",
      "Dockerfile",
      ".dockerignore",
    ]);
    assert.throws(() => inputsOf(ws, "toaster"), /unknown service: toaster/);
  });

  test("a change to tpi affects both services and becomes both versions", () => {
    const base = head();
    fixture.write("tpi/src/index.ts", "export const name = 'tpi v2';\n");
    const tpi = fixture.commit("tpi: change");
    assert.deepEqual(affected(base, tpi), ["chillybin", "jafflr"]);
    assert.equal(version("jafflr"), tpi);
    assert.equal(version("chillybin"), tpi);
  });

  test("a change only inside jafflr affects only jafflr", () => {
    const base = head();
    fixture.write("jafflr/src/grill.ts", "export const slots = 2;\n");
    const jafflr = fixture.commit("jafflr: grill");
    assert.deepEqual(affected(base, jafflr), ["jafflr"]);
    assert.equal(version("chillybin"), base);
  });

  test("a service's own manifest is part of its version (a new limit ships)", () => {
    const base = head();
    const manifest = fixture.read("deploy/k8s/chillybin.yaml");
    fixture.write("deploy/k8s/chillybin.yaml", manifest.replace("replicas: 2", "replicas: 3"));
    const scaled = fixture.commit("chillybin: three replicas");
    assert.deepEqual(affected(base, scaled), ["chillybin"]);
    assert.equal(version("chillybin"), scaled);
  });

  test("README, docs, integration tests, tooling and other manifests affect no service", () => {
    const base = head();
    fixture.write("README.md", "# fixture, now with words\n");
    fixture.write("docs/foxtrot.md", "dance\n");
    fixture.write("integration-tests/src/index.ts", "export const name = 'it';\n");
    fixture.write("scripts/delivery/deploy.sh", "echo deploy\n");
    fixture.write("deploy/k8s/postgres.yaml", "# a kind-only database\n");
    fixture.commit("docs and tests");
    assert.deepEqual(affected(base, head()), []);
  });

  test("a test kit every service devDepends on changes no service's version", () => {
    fixture.editJson("package.json", (pkg) => {
      (pkg.workspaces as string[]).push("scripts/testkit");
    });
    fixture.write("scripts/testkit/package.json", `${JSON.stringify({ name: "testkit" })}\n`);
    fixture.write("scripts/testkit/src/index.ts", "export const eventually = 1;\n");
    for (const service of ["chillybin", "jafflr"]) {
      fixture.editJson(`${service}/package.json`, (pkg) => {
        pkg.devDependencies = { ...(pkg.devDependencies as object), testkit: "*" };
      });
    }
    const base = fixture.commit("testkit: shared test helpers");
    fixture.write("scripts/testkit/src/index.ts", "export const eventually = 2;\n");
    assert.deepEqual(affected(base, fixture.commit("testkit: change")), []);
  });

  test("a lockfile change affects both services", () => {
    const base = head();
    fixture.write("package-lock.json", `${JSON.stringify({ lockfileVersion: 3, x: 1 })}\n`);
    assert.deepEqual(affected(base, fixture.commit("bump a dependency")), ["chillybin", "jafflr"]);
  });

  test("a dependency edge is read from package.json at each commit, transitively", () => {
    fixture.editJson("package.json", (pkg) => {
      (pkg.workspaces as string[]).push("menu");
    });
    fixture.write("menu/package.json", `${JSON.stringify({ name: "menu" })}\n`);
    fixture.write("menu/src/index.ts", "export const menu = ['cheese'];\n");
    const withMenu = fixture.commit("menu: new workspace"); // root manifest: both services
    fixture.write("menu/src/index.ts", "export const menu = ['cheese', 'ham'];\n");
    const menuAlone = fixture.commit("menu: ham");
    assert.deepEqual(affected(withMenu, menuAlone), [], "nothing depends on menu yet");

    fixture.editJson("jafflr/package.json", (pkg) => {
      (pkg.dependencies as Record<string, string>).menu = "*";
    });
    const edge = fixture.commit("jafflr: depend on menu");
    assert.deepEqual(affected(menuAlone, edge), ["jafflr"]);
    fixture.editJson("menu/package.json", (pkg) => {
      pkg.dependencies = { tpi: "*" };
    });
    const menuOnTpi = fixture.commit("menu: use tpi");
    fixture.write("menu/src/index.ts", "export const menu = ['cheese', 'ham', 'tomato'];\n");
    const tomato = fixture.commit("menu: tomato");
    assert.deepEqual(affected(menuOnTpi, tomato), ["jafflr"]);
    assert.equal(version("jafflr"), tomato);
    // An old version is judged with the old graph: menu was not part of jafflr then.
    assert.equal(version("jafflr", menuAlone), withMenu);
  });

  test("a new service is affected; a null base (a new branch) means every service", () => {
    const base = head();
    fixture.editJson("package.json", (pkg) => {
      (pkg.workspaces as string[]).push("till");
    });
    fixture.write("till/package.json", `${JSON.stringify({ name: "till" })}\n`);
    fixture.write("deploy/k8s/till.yaml", "# the till\n");
    const till = fixture.commit("till: a new service");
    assert.deepEqual(affected(base, till), ["chillybin", "jafflr", "till"]);
    assert.deepEqual(affected("0".repeat(40), till), ["chillybin", "jafflr", "till"]);
  });

  test("the commands work from any directory and print one line per answer", () => {
    const base = head();
    fixture.write("jafflr/src/toastie.ts", "export const toastie = 'cheese';\n");
    const toastie = fixture.commit("jafflr: toastie");
    const cwd = join(fixture.dir, "chillybin", "src");
    const run = (cmd: string, ...args: string[]) =>
      execFileSync(join(SCRIPTS, cmd), args, { cwd, encoding: "utf8" });
    assert.equal(run("affected", base, toastie), "jafflr\n");
    assert.equal(run("affected", base, base), "");
    assert.equal(
      run("last-commit", "--all"),
      `chillybin ${version("chillybin")}\njafflr ${toastie}\ntill ${base}\n`,
    );
    assert.equal(run("last-commit", "jafflr", base), `${base}\n`);
  });

  test("bad input is refused with a clear message and a non-zero exit", () => {
    const run = (cmd: string, ...args: string[]) =>
      spawnSync(join(SCRIPTS, cmd), args, { cwd: fixture.dir, encoding: "utf8" });
    const unknownRev = run("affected", "no-such-rev", "HEAD");
    assert.equal(unknownRev.status, 1);
    assert.match(unknownRev.stderr, /unknown revision: no-such-rev/);
    const unknownService = run("last-commit", "toaster");
    assert.equal(unknownService.status, 1);
    assert.match(unknownService.stderr, /unknown service: toaster/);
    const usage = run("affected", "HEAD");
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /usage: affected <base> <head>/);
  });

  test("a shallow clone is refused rather than answered wrongly", () => {
    const shallow = mkdtempSync(join(tmpdir(), "toasties-shallow-"));
    try {
      execFileSync("git", ["clone", "--quiet", "--depth=1", `file://${fixture.dir}`, shallow], {
        stdio: "ignore",
      });
      const result = spawnSync(join(SCRIPTS, "last-commit"), ["jafflr"], {
        cwd: shallow,
        encoding: "utf8",
      });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /shallow clone.*fetch-depth: 0/);
    } finally {
      rmSync(shallow, { recursive: true, force: true });
    }
  });
});
