// publish.sh, deploy.sh and deployments.sh run for real against a throwaway repository, with
// recording fakes of docker, kubectl, kind and gh: what they build, push, deploy, load, roll back
// and record. No cluster or registry is involved.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { FakeTools, fixtureRepo, type Rule } from "./helpers";

const REGISTRY = "ghcr.io/octo-cat/toasties-galore";
const repo = fixtureRepo();
const first = repo.git("rev-parse", "HEAD"); // chillybin's version; jafflr's until `head`
const head = repo.write("jafflr/src/grill.ts", "4").commit();
const fakes = new FakeTools();
const baseline = join(fakes.dir, "baseline");
const run = (script: string, args: string[], rules: Rule[] = [], env = {}) =>
  fakes.run(script, args, rules, { env, cwd: repo.dir });
after(() => {
  repo.remove();
  fakes.remove();
});

/** kubectl reports these versions as deployed (each Deployment's annotation). */
const deployed = (v: Record<string, string>): Rule[] =>
  Object.entries(v).map(([s, version]) => [
    "kubectl",
    `*get deployment ${s} -o jsonpath=*`,
    version,
  ]);
const loadLog = (log: string): Rule => [
  "kubectl",
  "*logs pod/rehearsal-load*",
  `load: first toastie ok\n${log}`,
];
const LOAD_OK = loadLog("load: done sent=40 ok=40 failed=0 restocked=1\n");
const unknown = (stderr = "manifest unknown"): Rule => [
  "docker",
  "manifest inspect *",
  { exit: 1, stderr },
];

describe("publish.sh", () => {
  test("skips a tag the registry has, builds and pushes one it answers 'manifest unknown' for", () => {
    const r = run(
      "publish.sh",
      [],
      [["docker", `manifest inspect ${REGISTRY}/chillybin:${first}`], unknown()],
    );
    assert.equal(r.status, 0, r.log);
    assert.match(r.stdout, /chillybin: \S+ already published, skipping/);
    r.none(/build.*SERVICE=chillybin/);
    r.inOrder(
      /^docker build --provenance=false .*SERVICE=jafflr/,
      new RegExp(`^docker push ${REGISTRY}/jafflr:${head}$`),
    );
    assert.match(r.stdout, /published 1 image\(s\), 1 already published/);
  });

  test("stops on any other registry answer instead of overwriting a tag", () => {
    for (const error of ["unauthorized: authentication required", "toomanyrequests: rate limit"]) {
      const r = run("publish.sh", [], [unknown(error)]);
      assert.equal(r.status, 1, r.log);
      assert.match(
        r.stderr,
        new RegExp(`cannot tell whether ${REGISTRY}/chillybin:\\w+ is published: ${error}`),
      );
      r.none(/^docker (build|push)/);
    }
  });

  test("--no-push (pull requests) builds every image and asks no registry", () => {
    const r = run("publish.sh", ["--no-push"]);
    const build =
      /^docker build --provenance=false --file \S+ --build-arg SERVICE=(\w+) --build-arg VERSION=\w+ --tag \S+/;
    assert.deepEqual(
      r.calls.map((c) => build.exec(c)?.[1]),
      ["chillybin", "jafflr"],
      r.log,
    );
    assert.match(r.stdout, /built 2 image\(s\), pushed none/);
  });

  test("--dry-run --base plans only the affected services and changes nothing; a bad name fails", () => {
    const r = run("publish.sh", ["--dry-run", "--base", first], [unknown()]);
    assert.equal(r.status, 0, r.log);
    assert.match(r.stdout, /services affected since \w+: jafflr\n/);
    assert.match(r.stdout, new RegExp(`would run: docker push ${REGISTRY}/jafflr:${head}\\n`));
    r.none(/^docker (?!manifest inspect)/);
    assert.match(run("publish.sh", ["--dry-run", "toaster"]).stderr, /unknown service: toaster/);
  });
});

describe("deploy.sh on a persistent cluster", () => {
  test("reads what runs from the cluster, rolls out only what changed, verifies, then records", () => {
    const verify = `echo "verify in $NAMESPACE" >> ${fakes.dir}/calls.log`;
    const r = run("deploy.sh", ["--verify", verify], deployed({ chillybin: first, jafflr: first }));
    assert.equal(r.status, 0, r.log);
    assert.match(r.stdout, new RegExp(`chillybin: ${first} is deployed, nothing to do`));
    assert.match(r.stdout, new RegExp(`jafflr: deployed ${first}, version ${head} -> deploy`));
    r.none(/chillybin\.yaml|deployment\/chillybin|^(docker|kind) |postgres\.yaml|rehearsal-load/);
    r.inOrder(
      /rollout status deployment\/jafflr/,
      /^verify in toasties$/,
      /annotate deployment\/jafflr toasties-galore\/deployed-version=/,
    );
    const manifest = r.applied.find(([name]) => name.startsWith("jafflr-"))?.[1];
    assert.match(manifest ?? "", new RegExp(`image: ${REGISTRY}/jafflr:${head}\\n`));
  });

  test("finds nothing to do when every deployed version is current", () => {
    const r = run("deploy.sh", ["--verify", "false"], deployed({ chillybin: first, jafflr: head }));
    assert.match(r.stdout, /nothing to deploy\n$/, r.log);
    r.none(/ (apply|annotate|create) /);
  });

  test("works in any namespace: creates it when absent, and nothing names 'toasties'", () => {
    const absent: Rule = ["kubectl", "--namespace shop-42 get serviceaccount default", { exit: 1 }];
    const r = run(
      "deploy.sh",
      ["--namespace", "shop-42"],
      [absent, ...deployed({ chillybin: first })],
    );
    assert.equal(r.status, 0, r.log);
    r.at(/^kubectl create namespace shop-42$/);
    for (const call of r.calls.filter((c) => / (apply|rollout|annotate|get deployment) /.test(c)))
      assert.match(call, /^kubectl --namespace shop-42 /);
    for (const [name, content] of r.applied)
      assert.doesNotMatch(content, /namespace:|toasties(?!-galore)/, name);
  });

  test("writes the database and pull Secrets from files, never putting them in argv", () => {
    const env = {
      CHILLYBIN_DATABASE_URL: "postgres://u:s3cret@db/c",
      REGISTRY_PULL_TOKEN: "ghp_pull",
      REGISTRY_PULL_USER: "octo-cat",
    };
    const r = run("deploy.sh", [], deployed({ jafflr: head }), env);
    assert.equal(r.status, 0, r.log);
    r.at(/create secret generic chillybin-db --from-file=DATABASE_URL=/);
    r.at(
      /create secret generic registry-pull --type=kubernetes.io\/dockerconfigjson --from-file=\.dockerconfigjson=/,
    );
    assert.doesNotMatch(r.log, /s3cret|ghp_pull/);
  });

  test("refuses to start without the database Secret, or with a cloud login plugin it lacks", () => {
    for (const [rule, message] of [
      [
        ["kubectl", "*get secret chillybin-db", { exit: 1 }],
        /Secret chillybin-db is missing in namespace toasties: set CHILLYBIN_DATABASE_URL/,
      ],
      [
        ["kubectl", "config view --minify *", "no-such-plugin"],
        /exec plugin 'no-such-plugin', which is not installed here/,
      ],
    ] as [Rule, RegExp][]) {
      const r = run("deploy.sh", [], [rule]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, message);
      r.none(/ apply /);
    }
  });

  test("a failed rollout or check rolls back what this run changed, newest first, recording nothing", () => {
    for (const [args, rules, message, undone] of [
      [
        [],
        [["kubectl", "*rollout status deployment/jafflr*", { exit: 1 }]],
        /jafflr \w+ did not become ready within 300s/,
        ["jafflr", "chillybin"],
      ],
      [
        ["--verify", "exit 3"],
        deployed({ chillybin: first }),
        /the post-deploy check failed: exit 3/,
        ["jafflr"],
      ],
    ] as [string[], Rule[], RegExp, string[]][]) {
      const r = run("deploy.sh", args, rules);
      assert.equal(r.status, 1, r.log);
      assert.match(r.stderr, message);
      const undos = r.calls.filter((c) => / rollout undo /.test(c));
      assert.deepEqual(
        undos,
        undone.map((s) => `kubectl --namespace toasties rollout undo deployment/${s}`),
      );
      r.at(/ get events /); // diagnostics
      r.none(/ annotate /);
    }
  });
});

describe("deploy.sh on kind: the rehearsal", () => {
  const kind = (versions: string, ...more: string[]) => {
    writeFileSync(baseline, versions);
    return ["--kind", "toasties", "--verify", "true", "--baseline", baseline, ...more];
  };
  const before = `chillybin ${first}\njafflr ${first}\n`;

  test("brings up the last deploy, then rolls out what changed under load", () => {
    const r = run("deploy.sh", kind(before), [LOAD_OK]);
    assert.equal(r.status, 0, r.log);
    r.inOrder(
      /rollout status deployment\/postgres/,
      new RegExp(`^kind load docker-image ${REGISTRY}/jafflr:${first} --name toasties`),
      /rollout status deployment\/jafflr/,
      /apply -f \S+\/load\.yaml/,
      new RegExp(`^docker pull ${REGISTRY}/jafflr:${head}`),
      /exec rehearsal-load -- node -e process\.kill\(1, "SIGTERM"\)/,
      /annotate deployment\/jafflr toasties-galore\/deployed-version=/,
    );
    assert.match(r.stdout, /rehearsal: done sent=40 ok=40 failed=0 restocked=1/);
    assert.equal(
      r.calls.filter((c) => /rollout status deployment\/chillybin/.test(c)).length,
      1,
      "current: brought up once",
    );
    const load = r.applied.find(([name]) => name === "load.yaml")?.[1];
    assert.match(load ?? "", new RegExp(`image: ${REGISTRY}/jafflr:${first}\\n`));
  });

  test("any failed request during the rollout fails the deploy and rolls it back", () => {
    const failed =
      "load: FAILED POST /toastie #7 of worker 1: socket hang up\nload: done sent=40 ok=39 failed=1 restocked=1\n";
    const r = run("deploy.sh", kind(before), [loadLog(failed)]);
    assert.equal(r.status, 1, r.log);
    assert.match(r.stderr, /FAILED POST \/toastie #7 of worker 1: socket hang up/);
    assert.match(r.stderr, /deploy failed: 1 request\(s\) failed during the rollout/);
    r.at(/rollout undo deployment\/jafflr/);
    r.none(/ annotate /);
  });

  test("a first deploy (empty baseline) deploys everything with no load; a current one does nothing", () => {
    const r = run("deploy.sh", kind(""));
    assert.match(
      r.stdout,
      /baseline \(the last successful deploy\): nothing \(first deploy\)/,
      r.log,
    );
    assert.match(r.stdout, /no rehearsal under load[\s\S]*deployed: chillybin jafflr/);
    r.none(/rehearsal-load/);
    const current = run("deploy.sh", kind(`chillybin ${first}\njafflr ${head}\n`));
    assert.match(current.stdout, /nothing to deploy/);
    current.none(/^(?!kubectl (version|config))/);
  });

  test("--build builds this commit's images; a baseline is pulled; both need --kind", () => {
    const r = run("deploy.sh", kind(before, "--build"), [LOAD_OK]);
    assert.equal(r.status, 0, r.log);
    r.at(new RegExp(`^docker pull ${REGISTRY}/jafflr:${first}$`));
    r.at(new RegExp(`^docker build --provenance=false .*VERSION=${head}`));
    r.none(new RegExp(`docker pull ${REGISTRY}/jafflr:${head}`));
    assert.match(run("deploy.sh", ["--baseline", "/dev/null"]).stderr, /--baseline needs --kind/);
    assert.match(run("deploy.sh", ["--build"]).stderr, /--build needs --kind/);
  });
});

describe("deployments.sh: what is live, recorded on GitHub", () => {
  const env = { GITHUB_REPOSITORY: "octo-cat/toasties-galore", GITHUB_RUN_ID: "77" };
  const api = "repos/octo-cat/toasties-galore/deployments";
  const gh = (args: string, answer: unknown): Rule => ["gh", args, JSON.stringify(answer)];

  test("last: the versions of the newest deployment whose latest status is success; none at first", () => {
    const rules = [
      gh(`api ${api}?environment=kind&per_page=30 *`, [{ id: 3 }, { id: 2 }, { id: 1 }]),
      gh(`api ${api}/3/statuses?per_page=1 *`, [{ state: "failure" }]),
      gh(`api ${api}/2/statuses?per_page=1 *`, [{ state: "success" }]),
      gh(`api ${api}/2 *`, { id: 2, payload: { versions: { chillybin: first, jafflr: head } } }),
    ];
    const r = run("deployments.sh", ["last", "kind"], rules, env);
    assert.equal(r.stdout, `chillybin ${first}\njafflr ${head}\n`, r.log);
    r.none(new RegExp(`${api}/1`));
    const none = run("deployments.sh", ["last", "kind"], [gh("api *", [])], env);
    assert.equal(none.status, 0, none.log);
    assert.equal(none.stdout, "");
  });

  test("record: this commit and its versions, then the status", () => {
    const rules = [
      gh(`api ${api} --method POST *`, { id: 42 }),
      gh(`api ${api}/42/statuses *`, { state: "success" }),
    ];
    const r = run("deployments.sh", ["record", "production", "success"], rules, env);
    assert.equal(r.status, 0, r.log);
    const [deployment, status] = r.applied.map(([, body]) => JSON.parse(body));
    const versions = { chillybin: first, jafflr: head };
    const expected = {
      ref: head,
      environment: "production",
      auto_merge: false,
      required_contexts: [],
    };
    assert.deepEqual(deployment, {
      ...expected,
      description: "toasties-galore deploy",
      payload: { versions },
    });
    assert.deepEqual(status, {
      state: "success",
      log_url: `https://github.com/${env.GITHUB_REPOSITORY}/actions/runs/77`,
      description: status.description,
    });
    assert.match(r.stdout, /recorded deployment 42 of \w+ in production: success/);
  });
});
