// scripts/publish.sh and scripts/deploy.sh, run for real in --dry-run mode against a throwaway
// repository: they must print exactly what would be built, pushed and deployed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createFixtureRepo, type FixtureRepo, REPO_ROOT } from "./fixture-repo";

const PUBLISH = join(REPO_ROOT, "scripts", "delivery", "publish.sh");
const DEPLOY = join(REPO_ROOT, "scripts", "delivery", "deploy.sh");
const REGISTRY = "ghcr.io/octo-cat/toasties-galore";

describe("publish.sh and deploy.sh --dry-run", () => {
  let fixture: FixtureRepo;
  let first: string;
  let head: string;

  // No docker, kubectl or kind here: the scripts must say so and still plan.
  const run = (script: string, args: string[], env: Record<string, string> = {}) =>
    spawnSync(script, args, {
      cwd: fixture.dir,
      encoding: "utf8",
      env: {
        ...process.env,
        GITHUB_REPOSITORY: "",
        IMAGE_REPOSITORY: "ghcr.io/Octo-Cat/toasties-galore",
        DOCKER: "/nonexistent/docker",
        KUBECTL: "/nonexistent/kubectl",
        KIND: "kind",
        ...env,
      },
    });

  before(() => {
    fixture = createFixtureRepo();
    first = fixture.git("rev-parse", "HEAD");
    fixture.write("jafflr/src/grill.ts", "export const slots = 4;\n");
    head = fixture.commit("jafflr: grill");
  });
  after(() => fixture.remove());

  test("publish plans a build and push per service, tagged with its last relevant commit", () => {
    const result = run(PUBLISH, ["--dry-run"]);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.split("\n");
    assert.ok(lines.includes(`publish to ${REGISTRY} (dry run)`), result.stdout);
    for (const [service, version] of [
      ["chillybin", first],
      ["jafflr", head],
    ]) {
      const image = `${REGISTRY}/${service}:${version}`;
      assert.ok(
        lines.includes(
          `  would run: /nonexistent/docker build --file ${fixture.dir}/Dockerfile --build-arg SERVICE=${service} --build-arg VERSION=${version} --tag ${image} ${fixture.dir}`,
        ),
        result.stdout,
      );
      assert.ok(lines.includes(`  would run: /nonexistent/docker push ${image}`), result.stdout);
    }
    assert.match(result.stdout, /would publish 2 image\(s\)/);
    assert.match(result.stdout, /docker not found, so the registry cannot be asked/);
  });

  test("publish --base plans only the affected services", () => {
    const result = run(PUBLISH, ["--dry-run", "--base", first]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /services affected since \w+: jafflr\n/);
    assert.match(result.stdout, new RegExp(`docker push ${REGISTRY}/jafflr:${head}\\n`));
    assert.doesNotMatch(result.stdout, /chillybin:/);
    assert.match(result.stdout, /would publish 1 image\(s\)/);
  });

  test("publish refuses to run for real without docker, and unknown services", () => {
    const noDocker = run(PUBLISH, []);
    assert.equal(noDocker.status, 1);
    assert.match(noDocker.stderr, /publishing needs docker/);
    const unknown = run(PUBLISH, ["--dry-run", "toaster"]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /unknown service: toaster/);
  });

  test("deploy to kind plans namespace, database, image loads, rollouts, in provider order", () => {
    const result = run(DEPLOY, ["--dry-run", "--kind", "toasties"]);
    assert.equal(result.status, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, /no reachable cluster; assuming nothing is deployed \(dry run\)/);
    assert.match(
      out,
      new RegExp(`chillybin: deployed nothing, last relevant commit ${first} -> deploy`),
    );
    assert.match(
      out,
      new RegExp(`jafflr: deployed nothing, last relevant commit ${head} -> deploy`),
    );
    assert.match(
      out,
      /would run: \/nonexistent\/kubectl apply -f \S+\/deploy\/k8s\/namespace\.yaml/,
    );
    assert.match(
      out,
      /apply deploy\/k8s\/postgres\.yaml\n.*--namespace toasties apply -f \S+postgres\.yaml/,
    );
    for (const [service, version] of [
      ["chillybin", first],
      ["jafflr", head],
    ]) {
      const image = `${REGISTRY}/${service}:${version}`;
      const expected = [
        `${service}: deploy ${image}`,
        `  would run: /nonexistent/docker pull ${image}`,
        `  would run: kind load docker-image ${image} --name toasties`,
      ].join("\n");
      assert.ok(out.includes(expected), out);
      assert.ok(out.includes(`  apply deploy/k8s/${service}.yaml at ${version}\n`), out);
      assert.ok(out.includes(`    image ${image}\n`), out);
      assert.ok(
        out.includes(`--namespace toasties rollout status deployment/${service} --timeout=300s\n`),
        out,
      );
      assert.ok(
        out.includes(
          `annotate deployment/${service} toasties-galore/deployed-version=${version} --overwrite`,
        ),
        out,
      );
    }
    assert.ok(out.indexOf("chillybin: deploy") < out.indexOf("jafflr: deploy"));
    assert.doesNotMatch(out, /__[A-Z_]+__/, "every placeholder filled");
    assert.match(out, /would deploy: chillybin jafflr \(dry run: nothing changed\)/);
  });

  test("deploy skips services whose deployed version is already their last relevant commit", () => {
    // A kubectl that reports chillybin as deployed at its current version and jafflr at an old one.
    const kubectl = join(fixture.dir, "fake-kubectl");
    writeFileSync(
      kubectl,
      [
        "#!/usr/bin/env bash",
        'case "$*" in',
        "  version*) exit 0 ;;",
        '  "config current-context") echo kind-toasties ;;',
        `  *"get deployment chillybin"*) printf %s ${first} ;;`,
        `  *"get deployment jafflr"*) printf %s ${first} ;;`,
        "  *) exit 1 ;;",
        "esac",
      ].join("\n"),
    );
    chmodSync(kubectl, 0o755);
    const result = run(DEPLOY, ["--dry-run"], { KUBECTL: kubectl });
    assert.equal(result.status, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, /deploy to namespace toasties, context kind-toasties \(dry run\)/);
    assert.match(out, new RegExp(`chillybin: ${first} is deployed, nothing to do`));
    assert.match(
      out,
      new RegExp(`jafflr: deployed ${first}, last relevant commit ${head} -> deploy`),
    );
    assert.doesNotMatch(out, /chillybin: deploy/);
    assert.doesNotMatch(out, /postgres\.yaml/, "a real cluster brings its own database");
    assert.doesNotMatch(out, /docker pull|kind load/, "a real cluster pulls the published image");
    assert.match(out, /would deploy: jafflr \(dry run/);
  });

  test("deploy refuses to run for real without a cluster", () => {
    const result = run(DEPLOY, []);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /no cluster reachable with \/nonexistent\/kubectl/);
  });
});
