// The Dockerfile's helper that narrows a turbo-pruned tree to a service's production closure.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "./fixture-repo";

const HELPER = join(REPO_ROOT, "scripts", "production-workspaces.cjs");

describe("production-workspaces.cjs", () => {
  let dir: string;
  const write = (path: string, json: object) => {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), JSON.stringify(json));
  };
  const read = (path: string) => JSON.parse(readFileSync(join(dir, path), "utf8"));
  const helper = (...args: string[]) =>
    execFileSync(process.execPath, [HELPER, ...args], { cwd: dir, encoding: "utf8" });

  // What `turbo prune jafflr --docker` leaves when jafflr's tests devDepend on chillybin.
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "toasties-prune-"));
    write("package.json", {
      name: "root",
      workspaces: ["tpi", "chillybin", "jafflr"],
      devDependencies: { typescript: "^7.0.0" },
    });
    write("tpi/package.json", {
      name: "tpi",
      dependencies: { zod: "^4" },
      devDependencies: { supertest: "^7" },
    });
    write("chillybin/package.json", { name: "chillybin", dependencies: { pg: "^8", tpi: "^1" } });
    write("jafflr/package.json", {
      name: "jafflr",
      dependencies: { tpi: "^1", undici: "^7" },
      devDependencies: { chillybin: "^1", supertest: "^7" },
    });
    mkdirSync(join(dir, "node_modules", "chillybin"), { recursive: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("list: the service and what it needs at run time, not its devDependencies", () => {
    assert.equal(helper("list", "jafflr"), "jafflr\ntpi\n");
    assert.equal(helper("list", "chillybin"), "chillybin\ntpi\n");
  });

  test("strip: manifests narrowed to the closure, dev fields gone, other workspaces removed", () => {
    assert.equal(helper("strip", "jafflr"), "jafflr\ntpi\n");
    assert.deepEqual(read("package.json"), { name: "root", workspaces: ["tpi", "jafflr"] });
    assert.deepEqual(read("jafflr/package.json"), {
      name: "jafflr",
      dependencies: { tpi: "^1", undici: "^7" },
    });
    assert.deepEqual(read("tpi/package.json"), { name: "tpi", dependencies: { zod: "^4" } });
    assert.ok(!existsSync(join(dir, "chillybin")));
    assert.ok(!existsSync(join(dir, "node_modules", "chillybin")));
  });

  test("an unknown service or command is refused", () => {
    const unknown = spawnSync(process.execPath, [HELPER, "list", "toaster"], {
      cwd: dir,
      encoding: "utf8",
    });
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no workspace named toaster/);
    const usage = spawnSync(process.execPath, [HELPER, "explode", "jafflr"], {
      cwd: dir,
      encoding: "utf8",
    });
    assert.equal(usage.status, 2);
  });
});
