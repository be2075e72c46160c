// publish.sh, deploy.sh and deployments.sh run for real against a throwaway repository, with
// recording fakes of docker, kubectl, kind and gh on PATH (fake-tools.ts): what they decide to
// build, push, deploy, load, roll back and record. No cluster or registry is involved.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { FakeTools, indexOf, type Rule } from "./fake-tools";
import { createFixtureRepo, type FixtureRepo, REPO_ROOT } from "./fixture-repo";

const SCRIPTS = join(REPO_ROOT, "scripts", "delivery");
const REGISTRY = "ghcr.io/octo-cat/toasties-galore";

let fixture: FixtureRepo;
let fakes: FakeTools;
/** chillybin's and jafflr's version at the first commit; jafflr's changes at `head`. */
let first: string;
let head: string;

before(() => {
  fixture = createFixtureRepo();
  first = fixture.git("rev-parse", "HEAD");
  fixture.write("jafflr/src/grill.ts", "export const slots = 4;\n");
  head = fixture.commit("jafflr: grill");
  fakes = new FakeTools();
});
after(() => {
  fixture.remove();
  fakes.remove();
});

function run(script: string, args: string[], rules: Rule[] = [], env: Record<string, string> = {}) {
  fakes.reset(rules);
  const result = spawnSync(join(SCRIPTS, script), args, {
    cwd: fixture.dir,
    encoding: "utf8",
    env: {
      ...process.env,
      GITHUB_REPOSITORY: "",
      GITHUB_RUN_ID: "",
      CHILLYBIN_DATABASE_URL: "",
      REGISTRY_PULL_TOKEN: "",
      IMAGE_REPOSITORY: "ghcr.io/Octo-Cat/toasties-galore",
      ...fakes.env(),
      ...env,
    },
  });
  return { ...result, calls: fakes.calls(), out: `${result.stdout}${result.stderr}` };
}

/** kubectl reports these versions as deployed (the annotation of each Deployment). */
const deployed = (versions: Record<string, string>): Rule[] =>
  Object.entries(versions).map(([service, version]) => ({
    tool: "kubectl",
    args: `*get deployment ${service} -o jsonpath=*`,
    stdout: version,
  }));

const LOAD_LOG: Rule = {
  tool: "kubectl",
  args: "*logs pod/rehearsal-load*",
  stdout: "load: first toastie ok\nload: done sent=40 ok=40 failed=0 restocked=1\n",
};

describe("publish.sh", () => {
  test("skips a tag the registry has, builds and pushes one it answers 'manifest unknown' for", () => {
    const r = run(
      "publish.sh",
      [],
      [
        { tool: "docker", args: `manifest inspect ${REGISTRY}/chillybin:${first}` },
        {
          tool: "docker",
          args: `manifest inspect ${REGISTRY}/jafflr:${head}`,
          exit: 1,
          stderr: "manifest unknown\n",
        },
      ],
    );
    assert.equal(r.status, 0, r.out);
    assert.match(r.stdout, /chillybin: \S+ already published, skipping/);
    assert.ok(!r.calls.some((c) => /build.*SERVICE=chillybin/.test(c)), r.calls.join("\n"));
    const build = indexOf(r.calls, /^docker build --provenance=false .*SERVICE=jafflr/);
    const push = r.calls.indexOf(`docker push ${REGISTRY}/jafflr:${head}`);
    assert.ok(build >= 0 && push > build, r.calls.join("\n"));
    assert.match(r.stdout, /published 1 image\(s\), 1 already published/);
  });

  test("stops on any other registry answer instead of overwriting a tag", () => {
    for (const error of ["unauthorized: authentication required", "toomanyrequests: rate limit"]) {
      const r = run(
        "publish.sh",
        [],
        [{ tool: "docker", args: "manifest inspect *", exit: 1, stderr: `${error}\n` }],
      );
      assert.equal(r.status, 1, r.out);
      assert.match(
        r.stderr,
        new RegExp(`cannot tell whether ${REGISTRY}/chillybin:\\w+ is published: ${error}`),
      );
      assert.ok(!r.calls.some((c) => /^docker (build|push)/.test(c)), r.calls.join("\n"));
    }
  });

  test("--no-push (pull requests) builds every image and asks no registry", () => {
    const r = run("publish.sh", ["--no-push"]);
    assert.equal(r.status, 0, r.out);
    assert.deepEqual(
      r.calls.map((c) => c.replace(/ --build-arg.*/, "")),
      [
        `docker build --provenance=false --file ${fixture.dir}/Dockerfile`,
        `docker build --provenance=false --file ${fixture.dir}/Dockerfile`,
      ],
    );
    assert.match(
      r.calls[0] as string,
      /SERVICE=chillybin --build-arg VERSION=\w+ --tag \S+chillybin/,
    );
    assert.match(r.calls[1] as string, /SERVICE=jafflr/);
    assert.match(r.stdout, /built 2 image\(s\), pushed none/);
  });

  test("--dry-run --base plans only the affected services and changes nothing", () => {
    const r = run(
      "publish.sh",
      ["--dry-run", "--base", first],
      [{ tool: "docker", args: "manifest inspect *", exit: 1, stderr: "manifest unknown" }],
    );
    assert.equal(r.status, 0, r.out);
    assert.match(r.stdout, /services affected since \w+: jafflr\n/);
    assert.match(r.stdout, new RegExp(`would run: docker push ${REGISTRY}/jafflr:${head}\\n`));
    assert.ok(
      r.calls.every((c) => c.startsWith("docker manifest inspect")),
      r.calls.join("\n"),
    );
    const unknown = run("publish.sh", ["--dry-run", "toaster"]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /unknown service: toaster/);
  });
});

describe("deploy.sh on a persistent cluster", () => {
  test("reads what runs from the cluster and rolls out only what changed, then verifies", () => {
    const r = run(
      "deploy.sh",
      ["--verify", `echo "verify in $NAMESPACE" >> ${fakes.dir}/calls.log`],
      deployed({ chillybin: first, jafflr: first }),
    );
    assert.equal(r.status, 0, r.out);
    assert.match(r.stdout, new RegExp(`chillybin: ${first} is deployed, nothing to do`));
    assert.match(r.stdout, new RegExp(`jafflr: deployed ${first}, version ${head} -> deploy`));
    const c = r.calls;
    assert.ok(!c.some((call) => /chillybin\.yaml|deployment\/chillybin/.test(call)), c.join("\n"));
    assert.ok(!c.some((call) => /^(docker|kind) |postgres\.yaml|rehearsal-load/.test(call)));
    const rollout = indexOf(c, /^kubectl --namespace toasties rollout status deployment\/jafflr/);
    const verify = c.indexOf("verify in toasties");
    const annotate = indexOf(c, /annotate deployment\/jafflr toasties-galore\/deployed-version=/);
    assert.ok(rollout >= 0 && verify > rollout && annotate > verify, c.join("\n"));
    const [, manifest] = fakes.applied().find(([name]) => name.startsWith("jafflr-")) ?? [];
    assert.match(manifest ?? "", new RegExp(`image: ${REGISTRY}/jafflr:${head}\\n`));
  });

  test("finds nothing to do when every deployed version is current", () => {
    const r = run("deploy.sh", ["--verify", "false"], deployed({ chillybin: first, jafflr: head }));
    assert.equal(r.status, 0, r.out);
    assert.match(r.stdout, /nothing to deploy\n$/);
    assert.ok(!r.calls.some((c) => / (apply|annotate|create) /.test(c)), r.calls.join("\n"));
  });

  test("works in any namespace: creates it when absent, and nothing names 'toasties'", () => {
    const r = run(
      "deploy.sh",
      ["--namespace", "shop-42"],
      [
        { tool: "kubectl", args: "--namespace shop-42 get serviceaccount default", exit: 1 },
        ...deployed({ chillybin: first }),
      ],
    );
    assert.equal(r.status, 0, r.out);
    assert.ok(r.calls.includes("kubectl create namespace shop-42"), r.calls.join("\n"));
    for (const call of r.calls.filter((c) => / (apply|rollout|annotate|get deployment) /.test(c))) {
      assert.match(call, /^kubectl --namespace shop-42 /);
    }
    for (const [name, content] of fakes.applied()) {
      assert.doesNotMatch(content, /namespace:|toasties(?!-galore)/, name);
    }
  });

  test("writes the database and pull Secrets from the environment, never putting them in argv", () => {
    const secretUrl = "postgres://stall:s3cret@db.example:5432/chillybin";
    const r = run("deploy.sh", [], deployed({ jafflr: head }), {
      CHILLYBIN_DATABASE_URL: secretUrl,
      REGISTRY_PULL_TOKEN: "ghp_pulltoken",
      REGISTRY_PULL_USER: "octo-cat",
    });
    assert.equal(r.status, 0, r.out);
    assert.ok(
      r.calls.some((c) => /create secret generic chillybin-db --from-file=DATABASE_URL=/.test(c)),
    );
    assert.ok(
      r.calls.some((c) =>
        /create secret generic registry-pull --type=kubernetes.io\/dockerconfigjson --from-file=\.dockerconfigjson=/.test(
          c,
        ),
      ),
    );
    assert.doesNotMatch(`${r.calls.join("\n")}${r.out}`, /s3cret|ghp_pulltoken/);
  });

  test("refuses to start without the database Secret, or with a cloud login plugin it lacks", () => {
    const missing = run(
      "deploy.sh",
      [],
      [{ tool: "kubectl", args: "*get secret chillybin-db", exit: 1 }],
    );
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /Secret chillybin-db is missing in namespace toasties: set CHILLYBIN_DATABASE_URL/,
    );
    const plugin = run(
      "deploy.sh",
      [],
      [{ tool: "kubectl", args: "config view --minify *", stdout: "no-such-cloud-auth-plugin" }],
    );
    assert.equal(plugin.status, 1);
    assert.match(
      plugin.stderr,
      /exec plugin 'no-such-cloud-auth-plugin', which is not installed here/,
    );
    assert.ok(!plugin.calls.some((c) => / apply /.test(c)));
  });

  test("a failed rollout rolls back every service this run changed, newest first", () => {
    const r = run(
      "deploy.sh",
      ["--verify", "true"],
      [{ tool: "kubectl", args: "*rollout status deployment/jafflr*", exit: 1 }],
    );
    assert.equal(r.status, 1, r.out);
    assert.match(r.stderr, /deploy failed: jafflr \w+ did not become ready within 300s/);
    const undoJafflr = r.calls.indexOf(
      "kubectl --namespace toasties rollout undo deployment/jafflr",
    );
    const undoChillybin = r.calls.indexOf(
      "kubectl --namespace toasties rollout undo deployment/chillybin",
    );
    assert.ok(undoJafflr >= 0 && undoChillybin > undoJafflr, r.calls.join("\n"));
    assert.ok(
      r.calls.some((c) => / get events /.test(c)),
      "diagnostics",
    );
    assert.ok(!r.calls.some((c) => / annotate /.test(c)), "nothing recorded as deployed");
  });

  test("a failed post-deploy check rolls back what changed and records nothing", () => {
    const r = run("deploy.sh", ["--verify", "exit 3"], deployed({ chillybin: first }));
    assert.equal(r.status, 1, r.out);
    assert.match(r.stderr, /the post-deploy check failed: exit 3/);
    assert.ok(r.calls.includes("kubectl --namespace toasties rollout undo deployment/jafflr"));
    assert.ok(!r.calls.some((c) => /rollout undo deployment\/chillybin/.test(c)), "unchanged");
    assert.ok(!r.calls.some((c) => / annotate /.test(c)));
  });
});

describe("deploy.sh on kind: the rehearsal", () => {
  let baseline: string;
  beforeEach(() => {
    baseline = join(fakes.dir, "baseline");
  });
  const kind = ["--kind", "toasties", "--verify", "true", "--baseline"];

  test("brings up the last deploy, then rolls out what changed under load", () => {
    writeFileSync(baseline, `chillybin ${first}\njafflr ${first}\n`);
    const r = run("deploy.sh", [...kind, baseline], [LOAD_LOG]);
    assert.equal(r.status, 0, r.out);
    const c = r.calls;
    const at = (pattern: RegExp) => {
      const i = indexOf(c, pattern);
      assert.ok(i >= 0, `no call ${pattern}:\n${c.join("\n")}`);
      return i;
    };
    const postgres = at(/rollout status deployment\/postgres/);
    const oldJafflr = at(
      new RegExp(`^kind load docker-image ${REGISTRY}/jafflr:${first} --name toasties`),
    );
    const oldReady = at(/rollout status deployment\/jafflr/);
    const loadPod = at(/apply -f \S+\/load\.yaml/);
    const newJafflr = at(new RegExp(`^docker pull ${REGISTRY}/jafflr:${head}`));
    const stop = at(/exec rehearsal-load -- node -e process\.kill\(1, "SIGTERM"\)/);
    assert.ok(postgres < oldJafflr && oldJafflr < oldReady && oldReady < loadPod, c.join("\n"));
    assert.ok(loadPod < newJafflr && newJafflr < stop, c.join("\n"));
    assert.match(r.stdout, /rehearsal: done sent=40 ok=40 failed=0 restocked=1/);
    // chillybin was already current: brought up once, never rolled again.
    assert.equal(c.filter((call) => /rollout status deployment\/chillybin/.test(call)).length, 1);
    const load = fakes.applied().find(([name]) => name === "load.yaml");
    assert.match(load?.[1] ?? "", new RegExp(`image: ${REGISTRY}/jafflr:${first}\\n`));
    assert.ok(
      c.some((call) => /annotate deployment\/jafflr toasties-galore\/deployed-version=/.test(call)),
    );
  });

  test("any failed request during the rollout fails the deploy and rolls it back", () => {
    writeFileSync(baseline, `chillybin ${first}\njafflr ${first}\n`);
    const r = run(
      "deploy.sh",
      [...kind, baseline],
      [
        {
          ...LOAD_LOG,
          stdout:
            "load: first toastie ok\nload: FAILED POST /toastie #7 of worker 1: socket hang up\n" +
            "load: done sent=40 ok=39 failed=1 restocked=1\n",
        },
      ],
    );
    assert.equal(r.status, 1, r.out);
    assert.match(r.stderr, /FAILED POST \/toastie #7 of worker 1: socket hang up/);
    assert.match(r.stderr, /deploy failed: 1 request\(s\) failed during the rollout/);
    assert.ok(r.calls.includes("kubectl --namespace toasties rollout undo deployment/jafflr"));
    assert.ok(!r.calls.some((c) => / annotate /.test(c)));
  });

  test("a first deploy (empty baseline) deploys everything, with nothing to keep under load", () => {
    writeFileSync(baseline, "");
    const r = run("deploy.sh", [...kind, baseline]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.stdout, /baseline \(the last successful deploy\): nothing \(first deploy\)/);
    assert.match(r.stdout, /no rehearsal under load/);
    assert.ok(!r.calls.some((c) => /rehearsal-load/.test(c)), r.calls.join("\n"));
    assert.match(r.stdout, /deployed: chillybin jafflr/);
  });

  test("a baseline equal to this commit's versions: nothing to do, nothing started", () => {
    writeFileSync(baseline, `chillybin ${first}\njafflr ${head}\n`);
    const r = run("deploy.sh", [...kind, baseline]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.stdout, /nothing to deploy/);
    assert.deepEqual(
      r.calls.filter((c) => !/^kubectl (version|config)/.test(c)),
      [],
      "no image loaded, nothing applied",
    );
  });

  test("--build builds this commit's images without provenance; a baseline is pulled", () => {
    writeFileSync(baseline, `chillybin ${first}\njafflr ${first}\n`);
    const r = run("deploy.sh", [...kind, baseline, "--build"], [LOAD_LOG]);
    assert.equal(r.status, 0, r.out);
    assert.ok(r.calls.includes(`docker pull ${REGISTRY}/jafflr:${first}`), r.calls.join("\n"));
    assert.ok(
      r.calls.some(
        (c) => c.startsWith("docker build --provenance=false") && c.includes(`VERSION=${head}`),
      ),
    );
    assert.ok(!r.calls.includes(`docker pull ${REGISTRY}/jafflr:${head}`));
  });

  test("--baseline and --build need --kind", () => {
    assert.match(run("deploy.sh", ["--baseline", "/dev/null"]).stderr, /--baseline needs --kind/);
    assert.match(run("deploy.sh", ["--build"]).stderr, /--build needs --kind/);
  });
});

describe("deployments.sh: what is live, recorded on GitHub", () => {
  const env = { GITHUB_REPOSITORY: "octo-cat/toasties-galore", GITHUB_RUN_ID: "77" };
  const api = "repos/octo-cat/toasties-galore/deployments";

  test("last: the versions of the newest deployment whose latest status is success", () => {
    const r = run(
      "deployments.sh",
      ["last", "kind"],
      [
        {
          tool: "gh",
          args: `api ${api}?environment=kind&per_page=30 *`,
          stdout: '[{"id":3},{"id":2},{"id":1}]',
        },
        { tool: "gh", args: `api ${api}/3/statuses?per_page=1 *`, stdout: '[{"state":"failure"}]' },
        { tool: "gh", args: `api ${api}/2/statuses?per_page=1 *`, stdout: '[{"state":"success"}]' },
        {
          tool: "gh",
          args: `api ${api}/2 *`,
          stdout: JSON.stringify({
            id: 2,
            payload: { versions: { chillybin: first, jafflr: head } },
          }),
        },
      ],
      env,
    );
    assert.equal(r.status, 0, r.out);
    assert.equal(r.stdout, `chillybin ${first}\njafflr ${head}\n`);
    assert.ok(!r.calls.some((c) => c.includes(`${api}/1`)), "stops at the newest success");
  });

  test("last: nothing at all on a fork's first deploy", () => {
    const r = run(
      "deployments.sh",
      ["last", "kind"],
      [{ tool: "gh", args: "api *", stdout: "[]" }],
      env,
    );
    assert.equal(r.status, 0, r.out);
    assert.equal(r.stdout, "");
  });

  test("record: this commit and its versions, then the status", () => {
    const r = run(
      "deployments.sh",
      ["record", "production", "success"],
      [
        { tool: "gh", args: `api ${api} --method POST *`, stdout: '{"id":42}' },
        { tool: "gh", args: `api ${api}/42/statuses *`, stdout: '{"state":"success"}' },
      ],
      env,
    );
    assert.equal(r.status, 0, r.out);
    const [deployment, status] = fakes.applied().map(([, body]) => JSON.parse(body));
    assert.deepEqual(deployment, {
      ref: head,
      environment: "production",
      auto_merge: false,
      required_contexts: [],
      description: "toasties-galore deploy",
      payload: { versions: { chillybin: first, jafflr: head } },
    });
    assert.equal(status.state, "success");
    assert.equal(status.log_url, "https://github.com/octo-cat/toasties-galore/actions/runs/77");
    assert.match(r.stdout, /recorded deployment 42 of \w+ in production: success/);
  });
});
