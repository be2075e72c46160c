// The Dockerfile's rules, checked by parsing it (there is no Docker engine here; the recipe itself
// is replayed end to end by `npm run docker:check`).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  type Copy,
  DockerfileParser,
  type Instruction,
  type JSONInstruction,
} from "dockerfile-ast";
import { REPO_ROOT } from "./fixture-repo";

const dockerfile = DockerfileParser.parse(readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8"));
const instructions = dockerfile.getInstructions();
const froms = dockerfile.getFROMs();

/** The instructions of one build stage, by its `AS` name. */
function stage(name: string): Instruction[] {
  const start = froms.findIndex((from) => from.getBuildStage() === name);
  assert.ok(start >= 0, `no stage named ${name}`);
  const first = instructions.indexOf(froms[start] as Instruction);
  const next = froms[start + 1];
  const end = next ? instructions.indexOf(next as Instruction) : instructions.length;
  return instructions.slice(first + 1, end);
}

const args = (ins: Instruction) => ins.getArgumentsContent() ?? "";
const runs = (stageName: string) =>
  stage(stageName)
    .filter((ins) => ins.getKeyword() === "RUN")
    .map(args);
const execForm = (ins: Instruction) =>
  (ins as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue());

const runtimeName = froms.at(-1)?.getBuildStage() ?? "";
const runtime = stage(runtimeName);

describe("Dockerfile", () => {
  test("is multi-stage, every stage on Node 24 LTS, the runtime on a slim image", () => {
    assert.ok(froms.length >= 3, `expected prune, build and runtime stages, got ${froms.length}`);
    for (const from of froms) assert.match(from.getImage() ?? "", /^node:24[.-]/);
    assert.match(froms.at(-1)?.getImage() ?? "", /^node:24-[a-z]+-slim$/);
  });

  test("takes the service as ARG SERVICE and prunes the monorepo to it with turbo", () => {
    const prune = froms[0]?.getBuildStage() ?? "";
    assert.ok(stage(prune).some((ins) => ins.getKeyword() === "ARG" && args(ins) === "SERVICE"));
    assert.ok(
      runs(prune).some((run) => /turbo@\$\{TURBO_VERSION\}"? prune "\$SERVICE" --docker/.test(run)),
      'turbo prune "$SERVICE" --docker',
    );
    // The runtime's prune is taken once no manifest declares devDependencies, so a workspace the
    // service only tests with (the test kit) and whatever it installs never reach the image.
    const twice = runs(prune).find((run) => /--out-dir runtime/.test(run)) ?? "";
    assert.match(
      twice,
      /--out-dir build && \\?\s*npm pkg delete devDependencies --workspaces --include-workspace-root && \\?\s*npx --yes "turbo@\$\{TURBO_VERSION\}" prune "\$SERVICE" --docker --out-dir runtime/,
    );
    // The image's turbo is the one the repository uses, so prune behaves as it does here.
    const installed = JSON.parse(
      readFileSync(join(REPO_ROOT, "node_modules", "turbo", "package.json"), "utf8"),
    ).version;
    const pinned = stage(prune).find(
      (ins) => ins.getKeyword() === "ARG" && args(ins).startsWith("TURBO_VERSION="),
    );
    assert.equal(args(pinned as Instruction), `TURBO_VERSION=${installed}`);
  });

  test("installs from the pruned lockfile with npm ci, then builds with turbo", () => {
    const build = stage("build");
    const copies = build.filter((ins) => ins.getKeyword() === "COPY").map(args);
    const ci = build.findIndex((ins) => ins.getKeyword() === "RUN" && /^npm ci\b/.test(args(ins)));
    const lockCopy = build.findIndex(
      (ins) => ins.getKeyword() === "COPY" && args(ins).includes("/repo/build/json"),
    );
    assert.ok(
      lockCopy >= 0 && ci > lockCopy,
      "COPY build/json (manifests + lockfile), then npm ci",
    );
    assert.ok(
      copies.some((copy) => copy.includes("/repo/build/full")),
      "sources copied for the build",
    );
    assert.ok(runs("build").some((run) => /turbo run build --filter="\$SERVICE"/.test(run)));
    for (const run of instructions.filter((ins) => ins.getKeyword() === "RUN").map(args)) {
      assert.doesNotMatch(run, /npm (install|i)\b/, "only npm ci: the lockfile decides");
    }
  });

  test("the runtime installs production dependencies only and copies compiled output, no sources", () => {
    const install = runs(runtimeName).find((run) => /^npm ci --omit=dev\b/.test(run)) ?? "";
    assert.ok(install, "npm ci --omit=dev");
    const copies = runtime.filter((ins) => ins.getKeyword() === "COPY") as Copy[];
    assert.ok(
      copies.some((copy) => args(copy) === "/repo/runtime/json/ ./"),
      "the runtime prune",
    );
    for (const copy of copies) {
      assert.ok(
        copy.getFromFlag(),
        `runtime COPY without --from copies the context: ${args(copy)}`,
      );
      assert.doesNotMatch(args(copy), /\/full|\bsrc\b/, "no sources in the runtime");
    }
    const collect = runs("build").find((run) => run.includes("/runtime")) ?? "";
    assert.match(collect, /for part in dist migrations flags/, "dist, migrations and flags only");
    // The workspaces of the runtime prune, bind-mounted from the prune stage.
    assert.match(collect, /cd \/opt\/runtime && find \./);
    assert.match(
      readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8"),
      /--mount=type=bind,from=prune,source=\/repo\/runtime\/json,target=\/opt\/runtime/,
    );
    assert.ok(copies.some((copy) => args(copy).startsWith("/runtime/")));
  });

  test("chillybin's migrations ship in the image", () => {
    const collect = runs("build").find((run) => run.includes("/runtime")) ?? "";
    assert.match(collect, /migrations/);
    assert.ok(
      runs("build").every((run) => !/rm .*migrations/.test(run)) &&
        runs(runtimeName).every((run) => !/rm .*migrations/.test(run)),
    );
  });

  test("runs as the unprivileged node user, in the service's folder, with exec-form CMD", () => {
    const users = runtime.filter((ins) => ins.getKeyword() === "USER").map(args);
    assert.deepEqual(users, ["node"]);
    const workdirs = runtime.filter((ins) => ins.getKeyword() === "WORKDIR").map(args);
    assert.equal(workdirs.at(-1), "/app/$SERVICE");
    const cmds = dockerfile.getCMDs();
    assert.equal(cmds.length, 1);
    assert.deepEqual(execForm(cmds[0] as Instruction), ["node", "dist/index.js"]);
    assert.equal(dockerfile.getENTRYPOINTs().length, 0, "no shell wrapper between PID 1 and node");
  });

  test("HEALTHCHECK asks /health with node (no curl in slim) on each service's port", () => {
    const healthchecks = dockerfile.getHEALTHCHECKs();
    assert.equal(healthchecks.length, 1);
    const content = args(healthchecks[0] as Instruction);
    assert.match(content, /^(--\S+ +)*CMD \["node", "-e", /);
    assert.match(content, /\/health'/);
    assert.doesNotMatch(content, /curl|wget/);
    assert.match(content, /jafflr: 7000, chillybin: 7001/);
  });

  test("VERSION becomes an ENV and OCI labels; HOST listens on every interface", () => {
    assert.ok(runtime.some((ins) => ins.getKeyword() === "ARG" && args(ins).startsWith("VERSION")));
    const env = runtime
      .filter((ins) => ins.getKeyword() === "ENV")
      .map(args)
      .join(" ");
    assert.match(env, /VERSION=\$VERSION/);
    assert.match(env, /HOST=0\.0\.0\.0/);
    const labels = runtime
      .filter((ins) => ins.getKeyword() === "LABEL")
      .map(args)
      .join(" ");
    for (const [key, value] of [
      ["revision", "$VERSION"],
      ["version", "$VERSION"],
      ["source", "$SOURCE"],
    ]) {
      assert.ok(labels.includes(`org.opencontainers.image.${key}="${value}"`), `label ${key}`);
    }
  });

  test(".dockerignore keeps local installs, outputs and git history out of the context", () => {
    const ignore = readFileSync(join(REPO_ROOT, ".dockerignore"), "utf8").split("\n");
    for (const pattern of ["**/node_modules", "**/dist", ".git", "**/.env"]) {
      assert.ok(ignore.includes(pattern), pattern);
    }
    // turbo prune reads every workspace's package.json: none may be ignored.
    const root = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
    for (const ws of root.workspaces as string[]) assert.ok(!ignore.includes(ws), ws);
  });
});
