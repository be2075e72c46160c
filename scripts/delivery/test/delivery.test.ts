// deploy.sh and deployments.sh run for real against a throwaway repository, with recording fakes
// of docker, kubectl, kind and gh: what they deploy, load, roll back and record. No cluster is involved.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { FakeTools, fixtureRepo, type Rule } from "./helpers";

const REGISTRY = "ghcr.io/octo-cat/toasties-galore";
const repo = fixtureRepo();
const first = repo.git("rev-parse", "HEAD"); // chillybin's and the pipeline's; jafflr's until `head`
const manifest = repo.read("deploy/k8s/jafflr.yaml");
const head = repo
  .write("deploy/k8s/jafflr.yaml", manifest.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
  .commit(); // jafflr's configuration changed
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
const BOTH_FIRST = deployed({ chillybin: first, jafflr: first });
const LOAD_OK = loadLog("load: done sent=40 ok=40 failed=0 restocked=1\n");
/** The one hashed ConfigMap a rendered manifest names, for its object and the pod template alike. */
const configOf = (yaml = "") => {
  const names = new Set(yaml.match(/\b[a-z]+-config-[0-9a-f]{10}\b/g));
  assert.equal(names.size, 1, yaml);
  return [...names][0];
};
/** The calls that change the cluster, from the first matching `from` on, with temporary paths cut. */
const changes = (r: { calls: string[]; at: (p: RegExp) => number }, from: RegExp) =>
  r.calls
    .slice(r.at(from))
    .filter((c) => / (apply|delete|rollout|annotate) /.test(c))
    .map((c) => c.replace(/ -f \S+\//, " -f "));

describe("deploy.sh on a persistent cluster", () => {
  test("reads what runs from the cluster, rolls out what changed, verifies, records, prunes config", () => {
    const verify = `echo "verify in $NAMESPACE" >> ${fakes.dir}/calls.log`;
    const r = run(
      "deploy.sh",
      ["--verify", verify],
      [
        ...BOTH_FIRST,
        ["kubectl", "*get replicasets -l *", "jafflr-config-a jafflr-config-a jafflr-config-b"],
        ["kubectl", "*get configmaps -l *", "jafflr-config-0 jafflr-config-a jafflr-config-b"],
      ],
    );
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
    // What no ReplicaSet refers to any more, and only that.
    assert.deepEqual(
      r.calls.filter((c) => / delete /.test(c)),
      ["kubectl --namespace toasties delete configmap jafflr-config-0"],
    );
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

  test("refuses to start without the database Secret, with a cloud login plugin it lacks, or an expired token", () => {
    for (const [rule, message] of [
      [
        ["kubectl", "*get secret chillybin-db", { exit: 1 }],
        /Secret chillybin-db is missing in namespace toasties: set CHILLYBIN_DATABASE_URL/,
      ],
      [
        ["kubectl", "config view --minify *", "no-such-plugin"],
        /exec plugin 'no-such-plugin', which is not installed here/,
      ],
      [
        [
          "kubectl",
          "version *",
          { exit: 1, stderr: "error: You must be logged in to the server (Unauthorized)" },
        ],
        /the ServiceAccount token in the KUBECONFIG secret has expired or was revoked; make a new one/,
      ],
    ] as [Rule, RegExp][]) {
      const r = run("deploy.sh", [], [rule]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, message);
      r.none(/ apply /);
    }
  });

  test("a failed check puts back every object of the previous version and deletes the new config", () => {
    const r = run("deploy.sh", ["--verify", "exit 3"], BOTH_FIRST);
    assert.equal(r.status, 1, r.log);
    assert.match(r.stderr, /the post-deploy check failed: exit 3/);
    r.at(/ get events /); // diagnostics
    const [deployedNow, restored] = [head, first].map(
      (v) => r.applied.find(([name]) => name === `jafflr-${v}.yaml`)?.[1],
    );
    const [newConfig, oldConfig] = [configOf(deployedNow), configOf(restored)];
    assert.notEqual(newConfig, oldConfig, "the config changed, so did its name");
    assert.match(restored ?? "", new RegExp(`image: ${REGISTRY}/jafflr:${first}\\n`));
    assert.deepEqual(changes(r, / get events /), [
      `kubectl --namespace toasties apply -f jafflr-${first}.yaml`,
      `kubectl --namespace toasties delete --ignore-not-found configmap/${newConfig}`,
      "kubectl --namespace toasties rollout status deployment/jafflr --timeout=300s",
    ]);
  });

  test("a failed first deploy deletes everything it applied, newest first", () => {
    const stuck: Rule = ["kubectl", "*rollout status deployment/jafflr*", { exit: 1 }];
    const r = run("deploy.sh", [], [stuck]);
    assert.equal(r.status, 1, r.log);
    assert.match(r.stderr, /jafflr \w+ did not become ready within 300s/);
    const config = (s: string) => configOf(r.applied.find(([n]) => n.startsWith(`${s}-`))?.[1]);
    assert.deepEqual(
      changes(r, / get events /),
      ["jafflr", "chillybin"].map(
        (s) =>
          `kubectl --namespace toasties delete --ignore-not-found configmap/${config(s)} deployment/${s} poddisruptionbudget/${s} service/${s}`,
      ),
    );
  });
});

describe("deploy.sh on kind: the rehearsal", () => {
  const kind = (versions: string, ...more: string[]) => {
    writeFileSync(baseline, versions);
    return ["--kind", "toasties", "--verify", "true", "--baseline", baseline, ...more];
  };
  const before = `chillybin ${first}\njafflr ${first}\npipeline ${first}\n`;
  const current = `chillybin ${first}\njafflr ${head}\n`; // with a pipeline line to add

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
    assert.equal(
      changes(r, / get events /)[0],
      `kubectl --namespace toasties apply -f jafflr-${first}.yaml`,
    );
    r.none(/ annotate /);
  });

  test("a first deploy (empty baseline) deploys everything with no load", () => {
    const r = run("deploy.sh", kind(""));
    assert.match(
      r.stdout,
      /baseline \(the last successful deploy\): nothing \(first deploy\)/,
      r.log,
    );
    assert.match(r.stdout, /no rehearsal under load[\s\S]*deployed: chillybin jafflr/);
    r.none(/rehearsal-load/);
  });

  test("--plan decides from the baseline alone, before any cluster exists, for the workflow", () => {
    const output = join(fakes.dir, "github-output");
    for (const [listed, answer] of [
      [`${current}pipeline ${first}\n`, "false"],
      [`${current}pipeline ${head}\n`, "true"], // the pipeline changed
      [before, "true"],
      ["", "true"],
    ]) {
      writeFileSync(output, "");
      const r = run("deploy.sh", [...kind(listed ?? ""), "--plan"], [], { GITHUB_OUTPUT: output });
      assert.equal(r.status, 0, r.log);
      assert.match(r.stdout, new RegExp(`deploy=${answer}\n$`));
      assert.equal(readFileSync(output, "utf8"), `deploy=${answer}\n`);
      r.none(/^(docker|kind) | (apply|create|delete|annotate|rollout|exec) /);
    }
  });

  test("a change to the pipeline alone rolls every service out again under load", () => {
    const r = run("deploy.sh", kind(`${current}pipeline ${head}\n`), [LOAD_OK]);
    assert.equal(r.status, 0, r.log);
    assert.match(
      r.stdout,
      /pipeline: version \w+ is not the baseline's -> every service rolls out again/,
    );
    r.inOrder(
      /apply -f \S+\/load\.yaml/,
      /rollout restart deployment\/chillybin$/,
      /rollout restart deployment\/jafflr$/,
      /exec rehearsal-load -- node -e process\.kill\(1, "SIGTERM"\)/,
      /annotate deployment\/jafflr /,
    );
  });

  test("--build builds this commit's images; a baseline is pulled; both need --kind", () => {
    const r = run("deploy.sh", kind(before, "--build"), [LOAD_OK]);
    assert.equal(r.status, 0, r.log);
    r.at(new RegExp(`^docker pull ${REGISTRY}/jafflr:${first}$`));
    r.at(new RegExp(`^docker build --provenance=false .*VERSION=${head}`));
    r.none(new RegExp(`docker pull ${REGISTRY}/jafflr:${head}`));
    for (const args of [["--baseline", "/dev/null"], ["--build"]])
      assert.match(run("deploy.sh", args).stderr, /--build and --baseline need --kind/);
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
    const versions = { chillybin: first, jafflr: head, pipeline: first };
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
