// Every workflow is validated here, so a typo fails `npm test` rather than a fork's first push.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { REPO_ROOT } from "./fixture-repo";

// biome-ignore lint/suspicious/noExplicitAny: workflows are free-form YAML, checked field by field
type Obj = any;

const DIR = join(REPO_ROOT, ".github", "workflows");
const VALIDATOR = join(REPO_ROOT, "node_modules", ".bin", "action-validator");
const files = readdirSync(DIR).filter((name) => /\.ya?ml$/.test(name));
const text = (file: string) => readFileSync(join(DIR, file), "utf8");
const workflow = (file: string): Obj => parse(text(file));

function validate(path: string) {
  return spawnSync(VALIDATOR, [path], { encoding: "utf8" });
}

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
      test("passes action-validator (the workflow schema)", () => {
        const result = validate(join(DIR, file));
        assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
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
        for (const [, secret] of text(file).matchAll(/secrets\.(\w+)/g)) {
          assert.ok(["GITHUB_TOKEN", "KUBECONFIG"].includes(secret as string), `secret ${secret}`);
        }
        for (const [, script] of text(file).matchAll(/(?:^|[\s"'])(scripts\/[\w./-]+)/gm)) {
          const path = join(REPO_ROOT, script as string);
          accessSync(path, constants.X_OK); // throws when missing or not executable
        }
      });
    });
  }

  test("the validator rejects a broken workflow (so the checks above can fail)", () => {
    const dir = mkdtempSync(join(tmpdir(), "toasties-workflow-"));
    try {
      const broken = join(dir, "ci.yml");
      writeFileSync(broken, text("ci.yml").replace("runs-on:", "runs-onn:"));
      assert.notEqual(validate(broken).status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
    assert.equal(deploy.permissions.packages, "read");
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
    const run = runOf(job);
    assert.match(run, /scripts\/delivery\/deploy\.sh --namespace "\$NAMESPACE" \$DEPLOY_ARGS/);
    assert.match(run, /kubectl -n "\$NAMESPACE" port-forward svc\/jafflr/);
    assert.match(
      run,
      /JAFFLR_URL=http:\/\/127\.0\.0\.1:\d+ CHILLYBIN_URL=http:\/\/127\.0\.0\.1:\d+/,
    );
    assert.match(run, /npm test -w integration-tests/);
  });
});
