// The Dockerfile's rules, checked by parsing it (`npm run docker:check` replays the recipe itself).
import assert from "node:assert/strict";
import { test } from "node:test";
import { DockerfileParser, type Instruction, type JSONInstruction } from "dockerfile-ast";
import { REPO_ROOT, readRepo } from "./helpers";

const dockerfile = DockerfileParser.parse(readRepo("Dockerfile"));
const all = dockerfile.getInstructions();
const froms = dockerfile.getFROMs();
const args = (ins: Instruction) => ins.getArgumentsContent() ?? "";
/** A stage's instructions as "KEYWORD arguments" lines. */
const stage = (name: string) => {
  const i = froms.findIndex((from) => from.getBuildStage() === name);
  assert.ok(i >= 0, `no stage ${name}`);
  const end = froms[i + 1] ? all.indexOf(froms[i + 1] as Instruction) : all.length;
  return all
    .slice(all.indexOf(froms[i] as Instruction) + 1, end)
    .map((ins) => ins.getTextContent().replace(/\\\n\s*/g, ""));
};
const [prune, build, runtime] = ["prune", "build", "runtime"].map(stage) as [
  string[],
  string[],
  string[],
];
const has = (lines: string[], pattern: RegExp) =>
  assert.ok(
    lines.some((l) => pattern.test(l)),
    `${pattern}:\n${lines.join("\n")}`,
  );

test("three stages on Node 24 LTS, the runtime slim", () => {
  assert.deepEqual(
    froms.map((f) => f.getBuildStage()),
    ["prune", "build", "runtime"],
  );
  for (const from of froms) assert.match(from.getImage() ?? "", /^node:24-[a-z]+-slim$/);
});

test("prune: ARG SERVICE, turbo prune it, then again with no devDependencies, with the repository's turbo", () => {
  has(prune, /^ARG SERVICE$/);
  has(
    prune,
    /prune "\$SERVICE" --docker --out-dir build && \\?\s*npm pkg delete devDependencies --workspaces --include-workspace-root && \\?\s*npx --yes "turbo@\$\{TURBO_VERSION\}" prune "\$SERVICE" --docker --out-dir runtime/,
  );
  const turbo = JSON.parse(readRepo("node_modules/turbo/package.json")).version;
  has(prune, new RegExp(`^ARG TURBO_VERSION=${turbo.replaceAll(".", "\\.")}$`));
});

test("build: npm ci from the pruned lockfile before the sources, then turbo build; never npm install", () => {
  const at = (pattern: RegExp) => build.findIndex((l) => pattern.test(l));
  const [json, ci, full] = [
    at(/^COPY .*\/repo\/build\/json/),
    at(/^RUN npm ci\b/),
    at(/^COPY .*\/repo\/build\/full/),
  ];
  assert.ok(json >= 0 && json < ci && ci < full, build.join("\n"));
  has(build, /turbo run build --filter="\$SERVICE"/);
  // The runtime payload: compiled output and run-time files (migrations, flags) of the runtime prune.
  has(
    build,
    /--mount=type=bind,from=prune,source=\/repo\/runtime\/json,target=\/opt\/runtime .*cd \/opt\/runtime && find \..*for part in dist migrations flags/s,
  );
  for (const line of [...prune, ...build, ...runtime])
    assert.doesNotMatch(line, /npm (install|i)\b|rm .*migrations/);
});

test("runtime: production dependencies only, copies from stages (no sources), unprivileged, exec form", () => {
  has(runtime, /^RUN npm ci --omit=dev\b/);
  has(runtime, /^COPY --from=prune \/repo\/runtime\/json\/ \.\/$/);
  has(runtime, /^COPY --from=build \/runtime\/ \.\/$/);
  for (const copy of runtime.filter((l) => l.startsWith("COPY")))
    assert.match(copy, /^COPY --from=/);
  assert.deepEqual(runtime.filter((l) => /^(USER|WORKDIR)/.test(l)).slice(-2), [
    "WORKDIR /app/$SERVICE",
    "USER node",
  ]);
  const cmds = dockerfile.getCMDs() as JSONInstruction[];
  assert.deepEqual(
    cmds.map((c) => c.getJSONStrings().map((s) => s.getJSONValue())),
    [["node", "dist/index.js"]],
  );
  assert.equal(dockerfile.getENTRYPOINTs().length, 0, "no shell between PID 1 and node");
});

test("HEALTHCHECK asks /health with node on each service's port; VERSION becomes ENV and labels", () => {
  const [check, ...more] = dockerfile.getHEALTHCHECKs().map(args);
  assert.equal(more.length, 0);
  assert.match(
    check ?? "",
    /^(--\S+ +)*CMD \["node", "-e", .*jafflr: 7000, chillybin: 7001.*\/health'/,
  );
  has(runtime, /^ENV .*VERSION=\$VERSION.*HOST=0\.0\.0\.0/s);
  for (const key of ["revision", "version"])
    has(runtime, new RegExp(`^LABEL .*org\\.opencontainers\\.image\\.${key}="\\$VERSION"`, "s"));
  has(runtime, /^LABEL .*org\.opencontainers\.image\.source="\$SOURCE"/s);
});

test(".dockerignore keeps installs, outputs, secrets and history out, and no workspace", () => {
  const ignore = readRepo(".dockerignore").split("\n");
  for (const pattern of ["**/node_modules", "**/dist", ".git", "**/.env"])
    assert.ok(ignore.includes(pattern), pattern);
  for (const ws of JSON.parse(readRepo("package.json")).workspaces)
    assert.ok(!ignore.includes(ws), ws);
  assert.ok(REPO_ROOT);
});
