import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { openRepo } from "../lib/git";
import { affectedServices, lastCommit, relevantPaths } from "../lib/versions";
import { readWorkspaceGraph } from "../lib/workspaces";
import { createFixtureRepo, type FixtureRepo, REPO_ROOT } from "./fixture-repo";

describe("last relevant commit and affected services", () => {
  let fixture: FixtureRepo;
  const affected = (base: string, head: string) =>
    affectedServices(openRepo(fixture.dir), base, head);

  before(() => {
    fixture = createFixtureRepo();
  });
  after(() => fixture.remove());

  test("the services are the workspaces with a start script, read from package.json", () => {
    const graph = readWorkspaceGraph(openRepo(fixture.dir), "HEAD");
    const services = [...graph.workspaces.values()]
      .filter((ws) => ws.runnable)
      .map((ws) => ws.name);
    assert.deepEqual(services.sort(), ["chillybin", "jafflr"]);
    assert.deepEqual(graph.workspaces.get("jafflr")?.deps, ["tpi"]);
    assert.deepEqual(graph.workspaces.get("chillybin")?.deps, ["tpi"]);
    assert.deepEqual(relevantPaths(graph, "chillybin"), [
      "chillybin",
      "tpi",
      "package.json",
      "package-lock.json",
      "turbo.json",
      "tsconfig.base.json",
      "Dockerfile",
      ".dockerignore",
      "scripts/production-workspaces.cjs",
    ]);
  });

  test("a devDependency on another service (tests that start it) is not part of the image", () => {
    // jafflr's tests start a real chillybin. The real manifest may have the edge already: start
    // from a commit without it, then add it.
    fixture.editJson("jafflr/package.json", (pkg) => {
      delete (pkg.devDependencies as Record<string, string>).chillybin;
    });
    const base = fixture.commit("jafflr: no chillybin");
    fixture.editJson("jafflr/package.json", (pkg) => {
      pkg.devDependencies = { ...(pkg.devDependencies as object), chillybin: "^1.0.0" };
    });
    const edge = fixture.commit("jafflr: test against a real chillybin");
    const graph = readWorkspaceGraph(openRepo(fixture.dir), edge);
    assert.ok(graph.workspaces.get("jafflr")?.devDeps.includes("chillybin"));
    assert.ok(!relevantPaths(graph, "jafflr").includes("chillybin"));
    assert.deepEqual(affected(base, edge), ["jafflr"]);
    fixture.write("chillybin/src/stock.ts", "export const stock = { cheese: 1 };\n");
    const head = fixture.commit("chillybin: stock");
    assert.deepEqual(affected(edge, head), ["chillybin"]);
  });

  test("a change to tpi affects both services and becomes both versions", () => {
    const base = fixture.git("rev-parse", "HEAD");
    fixture.write("tpi/src/index.ts", "export const name = 'tpi v2';\n");
    const head = fixture.commit("tpi: change");
    assert.deepEqual(affected(base, head), ["chillybin", "jafflr"]);
    const repo = openRepo(fixture.dir);
    assert.equal(lastCommit(repo, "jafflr"), head);
    assert.equal(lastCommit(repo, "chillybin"), head);
  });

  test("a change only inside jafflr affects only jafflr", () => {
    const base = fixture.git("rev-parse", "HEAD");
    fixture.write("jafflr/src/grill.ts", "export const slots = 2;\n");
    const head = fixture.commit("jafflr: grill");
    assert.deepEqual(affected(base, head), ["jafflr"]);
    assert.equal(lastCommit(openRepo(fixture.dir), "chillybin"), base);
  });

  test("README, docs, integration tests and tooling affect no service", () => {
    const base = fixture.git("rev-parse", "HEAD");
    fixture.write("README.md", "# fixture, now with words\n");
    fixture.write("docs/foxtrot.md", "dance\n");
    fixture.write("integration-tests/src/index.ts", "export const name = 'it';\n");
    fixture.write("scripts/src/index.ts", "export const name = 'tools';\n");
    const head = fixture.commit("docs and tests");
    assert.deepEqual(affected(base, head), []);
  });

  test("a lockfile change affects both services", () => {
    const base = fixture.git("rev-parse", "HEAD");
    fixture.write(
      "package-lock.json",
      `${JSON.stringify({ lockfileVersion: 3, packages: { x: {} } })}\n`,
    );
    const head = fixture.commit("bump a dependency");
    assert.deepEqual(affected(base, head), ["chillybin", "jafflr"]);
  });

  test("a rename within chillybin affects chillybin only", () => {
    fixture.write("chillybin/src/cold.ts", "export const temperature = 4;\n");
    const base = fixture.commit("chillybin: cold");
    fixture.git("mv", "chillybin/src/cold.ts", "chillybin/src/cold-store.ts");
    const head = fixture.commit("chillybin: rename stock");
    assert.deepEqual(affected(base, head), ["chillybin"]);
    assert.equal(lastCommit(openRepo(fixture.dir), "chillybin"), head);
  });

  test("a devDependency on a library (a test helper) does not count: the image never holds it", () => {
    fixture.editJson("package.json", (pkg) => {
      (pkg.workspaces as string[]).push("fixtures");
    });
    fixture.write(
      "fixtures/package.json",
      `${JSON.stringify({ name: "fixtures", version: "1.0.0" })}\n`,
    );
    fixture.write("fixtures/src/index.ts", "export const cheese = 'cheddar';\n");
    fixture.commit("fixtures: a test-data library");
    fixture.editJson("chillybin/package.json", (pkg) => {
      pkg.devDependencies = { ...(pkg.devDependencies as object), fixtures: "^1.0.0" };
    });
    const base = fixture.commit("chillybin: use fixtures");
    fixture.write("fixtures/src/index.ts", "export const cheese = 'gouda';\n");
    const head = fixture.commit("fixtures: gouda");
    assert.deepEqual(affected(base, head), []);
  });

  test("a new dependency edge is read from package.json at each commit", () => {
    // A new workspace: the root manifest changes, which touches every image.
    const beforeMenu = fixture.git("rev-parse", "HEAD");
    fixture.editJson("package.json", (pkg) => {
      (pkg.workspaces as string[]).push("menu");
    });
    fixture.write("menu/package.json", `${JSON.stringify({ name: "menu", version: "1.0.0" })}\n`);
    fixture.write("menu/src/index.ts", "export const menu = ['cheese'];\n");
    const withMenu = fixture.commit("menu: new workspace");
    assert.deepEqual(affected(beforeMenu, withMenu), ["chillybin", "jafflr"]);

    // Before jafflr depends on it, a menu change ships nothing.
    fixture.write("menu/src/index.ts", "export const menu = ['cheese', 'ham'];\n");
    const menuAlone = fixture.commit("menu: ham");
    assert.deepEqual(affected(withMenu, menuAlone), []);

    fixture.editJson("jafflr/package.json", (pkg) => {
      (pkg.dependencies as Record<string, string>).menu = "^1.0.0";
    });
    const edge = fixture.commit("jafflr: depend on menu");
    assert.deepEqual(affected(menuAlone, edge), ["jafflr"]);

    fixture.write("menu/src/index.ts", "export const menu = ['cheese', 'ham', 'tomato'];\n");
    const menuChange = fixture.commit("menu: tomato");
    assert.deepEqual(affected(edge, menuChange), ["jafflr"]);
    assert.equal(lastCommit(openRepo(fixture.dir), "jafflr"), menuChange);
    // The old version of jafflr is judged with the old graph: menu was not part of it then.
    assert.equal(lastCommit(openRepo(fixture.dir), "jafflr", menuAlone), withMenu);
  });

  test("a transitive dependency counts: menu -> tpi, so a tpi change reaches jafflr via both", () => {
    fixture.editJson("menu/package.json", (pkg) => {
      pkg.dependencies = { tpi: "^1.0.0" };
    });
    const base = fixture.commit("menu: use tpi");
    assert.deepEqual(affected(fixture.git("rev-parse", "HEAD~1"), base), ["jafflr"]);
    fixture.write("tpi/src/index.ts", "export const name = 'tpi v3';\n");
    const head = fixture.commit("tpi: v3");
    assert.deepEqual(affected(base, head), ["chillybin", "jafflr"]);
  });

  test("a new service is affected; a null base (new branch) means every service", () => {
    const base = fixture.git("rev-parse", "HEAD");
    fixture.editJson("package.json", (pkg) => {
      (pkg.workspaces as string[]).push("till");
    });
    fixture.write(
      "till/package.json",
      `${JSON.stringify({ name: "till", scripts: { start: "node dist/index.js" } })}\n`,
    );
    const head = fixture.commit("till: a new service");
    assert.deepEqual(affected(base, head), ["chillybin", "jafflr", "till"]);
    assert.deepEqual(affected("0".repeat(40), head), ["chillybin", "jafflr", "till"]);
  });

  test("the commands work from any directory and print one name per line", () => {
    const base = fixture.git("rev-parse", "HEAD");
    fixture.write("jafflr/src/toastie.ts", "export const toastie = 'cheese';\n");
    const head = fixture.commit("jafflr: toastie");
    const cwd = join(fixture.dir, "chillybin", "src");
    const run = (cmd: string, ...args: string[]) =>
      execFileSync(join(REPO_ROOT, "scripts", cmd), args, { cwd, encoding: "utf8" });
    assert.equal(run("affected", base, head), "jafflr\n");
    assert.equal(run("affected", base, base), "");
    const chillybin = lastCommit(openRepo(fixture.dir), "chillybin");
    assert.equal(
      run("last-commit", "--all"),
      `chillybin ${chillybin}\njafflr ${head}\ntill ${base}\n`,
    );
    assert.equal(run("last-commit", "jafflr", base), `${base}\n`);
  });

  test("bad input is refused with a clear message and a non-zero exit", () => {
    const run = (cmd: string, ...args: string[]) =>
      spawnSync(join(REPO_ROOT, "scripts", cmd), args, { cwd: fixture.dir, encoding: "utf8" });
    const unknownRev = run("affected", "no-such-rev", "HEAD");
    assert.equal(unknownRev.status, 1);
    assert.match(unknownRev.stderr, /unknown revision: no-such-rev/);
    assert.throws(
      () => lastCommit(openRepo(fixture.dir), "toaster"),
      /no workspace named "toaster"/,
    );
    const usage = run("affected", "HEAD");
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /usage: scripts\/affected <base> <head>/);
  });

  test("a shallow clone is refused rather than answered wrongly", () => {
    const shallow = mkdtempSync(join(tmpdir(), "toasties-shallow-"));
    try {
      execFileSync("git", ["clone", "--quiet", "--depth=1", `file://${fixture.dir}`, shallow], {
        stdio: "ignore",
      });
      const result = spawnSync(join(REPO_ROOT, "scripts", "last-commit"), ["jafflr"], {
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
