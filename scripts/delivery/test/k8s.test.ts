// The Kubernetes manifests are valid for the Kubernetes API (kubernetes-models) and agree with the
// services' configuration: ports from their config schemas, probe paths from tpi's health routes,
// the grace period from tpi's shutdown deadline, the heap from the limit.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT, readRepo } from "./helpers";

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, checked field by field
type Obj = any;
const load = (path: string): Obj[] =>
  parseAllDocuments(readRepo(path)).map((doc) => {
    assert.deepEqual(doc.errors, [], path);
    return doc.toJS();
  });
const files = readdirSync(join(REPO_ROOT, "deploy", "k8s")).filter((name) => /\.ya?ml$/.test(name));
const all = files.flatMap((file) =>
  load(`deploy/k8s/${file}`)
    .filter(Boolean)
    .map((obj) => ({ file, obj })),
);
const find = (kind: string, name: string): Obj => {
  const found = all.find(({ obj }) => obj.kind === kind && obj.metadata?.name === name);
  assert.ok(found, `no ${kind} ${name} in deploy/k8s`);
  return found.obj;
};
/** Every key/value a container's env gets from ConfigMaps (envFrom) and env entries. */
const envOf = (container: Obj): Record<string, string> => {
  const maps = (container.envFrom ?? [])
    .filter((s: Obj) => s.configMapRef)
    .map((s: Obj) => find("ConfigMap", s.configMapRef.name).data);
  const entries = (container.env ?? [])
    .filter((e: Obj) => "value" in e)
    .map((e: Obj) => ({ [e.name]: e.value }));
  return Object.assign({}, ...maps, ...entries);
};
const portOf = (container: Obj, port: number | string): number =>
  typeof port === "number"
    ? port
    : container.ports.find((p: Obj) => p.name === port)?.containerPort;
/** Validated by the kubernetes-models class of its apiVersion and kind, placeholders filled as deploy.sh does. */
const validate = (obj: Obj) => {
  const filled = JSON.parse(
    JSON.stringify(obj)
      .replace(/__IMAGE_REPOSITORY__|__IMAGE__/g, "ghcr.io/o/t")
      .replaceAll("__VERSION__", "0123abcd")
      .replaceAll("__CONFIG_HASH__", "4567ef"),
  );
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : ["", obj.apiVersion];
  const module = require(`kubernetes-models/${group ? `${group}/` : ""}${version}/${obj.kind}`);
  new module[obj.kind](filled).validate();
};
/** The URL names the Service and its port. */
const reaches = (url: string, service: string) => {
  const { hostname, port } = new URL(url);
  assert.deepEqual(
    [hostname, Number(port)],
    [service, find("Service", service).spec.ports[0].port],
  );
};
const services: string[] = (JSON.parse(readRepo("package.json")).workspaces as string[])
  .map((dir) => JSON.parse(readRepo(`${dir}/package.json`)))
  .filter((pkg) => pkg.scripts?.start)
  .map((pkg) => pkg.name);

test("every object (and the load generator) is complete, valid, and pins no namespace", () => {
  assert.deepEqual(services.sort(), ["chillybin", "jafflr"]);
  const load_ = load("scripts/delivery/load/load.yaml").map((obj) => ({ file: "load.yaml", obj }));
  for (const { file, obj } of [...all, ...load_]) {
    assert.ok(obj.apiVersion && obj.kind && obj.metadata?.name, `${file}: incomplete object`);
    assert.ok(
      obj.kind !== "Namespace" && obj.metadata.namespace === undefined,
      `${file}: deploy.sh -n decides`,
    );
    assert.doesNotThrow(() => validate(obj), `${file}: ${obj.kind} ${obj.metadata.name}`);
  }
  const broken = find("Deployment", "jafflr");
  assert.throws(
    () => validate({ ...broken, spec: { ...broken.spec, replicas: "two" } }),
    /replicas must be integer/,
    "validation can fail",
  );
  const health = readRepo("tpi/src/health.ts");
  assert.ok(
    health.includes('.get("/health"') && health.includes('.get("/ready"'),
    "tpi serves the probe paths",
  );
});

for (const service of services) {
  test(`${service}: port, probes, grace period, rollout, heap, images and pulls agree with the code`, () => {
    const deployment = find("Deployment", service);
    const pod = deployment.spec.template.spec;
    const container = pod.containers.find((c: Obj) => c.name === service);
    const env = envOf(container);
    const port = Number(
      /baseEnv\(\{\s*port:\s*(\d+)/.exec(readRepo(`${service}/src/config.ts`))?.[1],
    );
    assert.equal(port, { jafflr: 7000, chillybin: 7001 }[service]);
    assert.deepEqual(
      [env.PORT, env.HOST, portOf(container, "http")],
      [String(port), "0.0.0.0", port],
    );
    const svc = find("Service", service);
    assert.deepEqual(svc.spec.selector, deployment.spec.selector.matchLabels);
    assert.deepEqual(
      [svc.spec.ports[0].port, portOf(container, svc.spec.ports[0].targetPort)],
      [port, port],
    );
    for (const [probe, path] of [
      ["readinessProbe", "/ready"],
      ["livenessProbe", "/health"],
      ["startupProbe", "/health"],
    ]) {
      const get = container[probe ?? ""]?.httpGet;
      if (probe === "startupProbe" && !get) continue;
      assert.deepEqual([get.path, portOf(container, get.port)], [path, port], probe);
    }
    // tpi's deadline starts at SIGTERM and includes its own delay; the preStop sleep comes before.
    const [sleep, seconds] = container.lifecycle.preStop.exec.command;
    assert.ok(sleep === "sleep" && Number(seconds) > 0);
    const tpiDefault = (name: string) =>
      Number(
        new RegExp(`${name}: envInt\\(([\\d_]+)`)
          .exec(readRepo("tpi/src/config.ts"))?.[1]
          ?.replaceAll("_", ""),
      );
    const deadline = Math.max(
      ...["SHUTDOWN_TIMEOUT_MS", "SHUTDOWN_DELAY_MS"].map((n) => Number(env[n] ?? tpiDefault(n))),
    );
    assert.ok(
      pod.terminationGracePeriodSeconds > Number(seconds) + deadline / 1000,
      `grace ${pod.terminationGracePeriodSeconds}`,
    );
    assert.deepEqual(deployment.spec.strategy, {
      type: "RollingUpdate",
      rollingUpdate: { ...deployment.spec.strategy.rollingUpdate, maxUnavailable: 0 },
    });
    assert.ok(deployment.spec.replicas >= 2, "one pod cannot roll without a gap");
    assert.deepEqual(
      find("PodDisruptionBudget", service).spec.selector.matchLabels,
      deployment.spec.selector.matchLabels,
    );
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      // Room above the old space for the young generation, code and buffers, but the heap is the limit that matters.
      const limit = Number(/^(\d+)Mi$/.exec(c.resources.limits.memory)?.[1]);
      const heap = Number(
        /--max-old-space-size=(\d+)\b/.exec(
          c.env?.find((e: Obj) => e.name === "NODE_OPTIONS")?.value,
        )?.[1],
      );
      assert.ok(
        heap >= limit * 0.4 && heap <= limit * 0.65,
        `${c.name}: heap ${heap} MiB of a ${limit} MiB limit`,
      );
      assert.equal(c.image, `__IMAGE_REPOSITORY__/${service}:__VERSION__`);
      for (const kind of ["requests", "limits"])
        assert.ok(c.resources[kind]?.cpu && c.resources[kind]?.memory, `${c.name} ${kind}`);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    }
    assert.equal(deployment.metadata.labels["app.kubernetes.io/version"], "__VERSION__");
    const configs = JSON.stringify(pod).match(/(?<="configMapRef":\{"name":")[^"]+/g);
    assert.deepEqual(
      new Set(configs),
      new Set([`${service}-config-__CONFIG_HASH__`]),
      "named by content",
    );
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(
      pod.imagePullSecrets,
      [{ name: "registry-pull" }],
      "the Secret deploy.sh writes",
    );
  });
}

test("chillybin migrates in an init container, the service does not; on kind postgres.yaml is its database", () => {
  const pod = find("Deployment", "chillybin").spec.template.spec;
  const [migrate] = pod.initContainers;
  assert.deepEqual(migrate.command, ["node", "dist/migrate.js"]);
  assert.match(readRepo("chillybin/package.json"), /"migrate": "node dist\/migrate.js"/);
  assert.equal(envOf(pod.containers[0]).MIGRATE_ON_START, "false");
  for (const c of [migrate, pod.containers[0]])
    assert.ok(
      c.envFrom.some((s: Obj) => s.secretRef?.name === "chillybin-db" && !s.secretRef.optional),
    );
  reaches(find("Secret", "chillybin-db").stringData.DATABASE_URL, "postgres");
  assert.match(
    find("Deployment", "postgres").spec.template.spec.containers[0].image,
    /^postgres:17/,
  );
});

test("jafflr reaches chillybin through its Service, and Unleash optionally", () => {
  const jafflr = find("Deployment", "jafflr").spec.template.spec.containers[0];
  reaches(envOf(jafflr).CHILLYBIN_URL ?? "", "chillybin");
  const unleash = jafflr.envFrom.find((s: Obj) => s.secretRef?.name === "jafflr-unleash");
  assert.equal(unleash?.secretRef.optional, true, "jafflr runs on its flag file without Unleash");
  reaches(find("Secret", "jafflr-unleash").stringData.UNLEASH_URL, "unleash");
});
