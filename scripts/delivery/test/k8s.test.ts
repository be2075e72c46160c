// The Kubernetes manifests are valid against the Kubernetes API schemas (kubernetes-models), and
// agree with the services' real configuration: ports from their config schemas, probe paths from
// tpi's health routes, the grace period from tpi's shutdown deadline, the heap from the limit.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT } from "./fixture-repo";

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, checked field by field
type Obj = any;

const K8S = join(REPO_ROOT, "deploy", "k8s");
const read = (path: string) => readFileSync(join(REPO_ROOT, path), "utf8");

function load(file: string, dir = K8S): Obj[] {
  const docs = parseAllDocuments(readFileSync(join(dir, file), "utf8"));
  for (const doc of docs) assert.deepEqual(doc.errors, [], `${file}: ${doc.errors.join("; ")}`);
  return docs.map((doc) => doc.toJS()).filter((obj) => obj !== null);
}
const files = readdirSync(K8S).filter((name) => /\.ya?ml$/.test(name));
const all = files.flatMap((file) => load(file).map((obj) => ({ file, obj })));
const find = (kind: string, name: string): Obj => {
  const found = all.find(({ obj }) => obj.kind === kind && obj.metadata?.name === name);
  assert.ok(found, `no ${kind} ${name} in deploy/k8s`);
  return found.obj;
};

/** The deployable workspaces (a start script), read from the working tree's manifests. */
const services: string[] = (JSON.parse(read("package.json")).workspaces as string[])
  .map((dir) => JSON.parse(read(`${dir}/package.json`)))
  .filter((pkg) => typeof pkg.scripts?.start === "string")
  .map((pkg) => pkg.name);

/** The service's default PORT as its config schema declares it: baseEnv({ port: N, … }). */
function configuredPort(service: string): number {
  const match = /baseEnv\(\{\s*port:\s*(\d+)/.exec(read(`${service}/src/config.ts`));
  assert.ok(match, `${service}/src/config.ts declares no baseEnv port`);
  return Number(match[1]);
}

/** tpi's default for a millisecond setting: `NAME: envInt(25_000, …)`. */
function tpiDefault(name: string): number {
  const match = new RegExp(`${name}: envInt\\(([\\d_]+)`).exec(read("tpi/src/config.ts"));
  assert.ok(match, `tpi/src/config.ts has no default for ${name}`);
  return Number(match[1]?.replaceAll("_", ""));
}

/** Every key/value the container's env gets from ConfigMaps (envFrom) and env entries. */
function containerEnv(container: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, find("ConfigMap", source.configMapRef.name).data);
  }
  for (const entry of container.env ?? []) if ("value" in entry) env[entry.name] = entry.value;
  return env;
}

function resolvePort(container: Obj, port: number | string): number {
  if (typeof port === "number") return port;
  const named = container.ports.find((p: Obj) => p.name === port);
  assert.ok(named, `port ${port} is not a named port of ${container.name}`);
  return named.containerPort;
}

/** The model class of an object's apiVersion and kind, e.g. kubernetes-models/apps/v1/Deployment. */
function validate(obj: Obj): void {
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : [undefined, obj.apiVersion];
  const module = require(`kubernetes-models/${group ? `${group}/` : ""}${version}/${obj.kind}`);
  new module[obj.kind](obj).validate();
}

/** An object as deploy.sh applies it: placeholders filled with a registry and a version. */
const rendered = (obj: Obj): Obj =>
  JSON.parse(
    JSON.stringify(obj)
      .replaceAll("__IMAGE_REPOSITORY__", "ghcr.io/octo-cat/toasties-galore")
      .replaceAll("__VERSION__", "0123456789abcdef0123456789abcdef01234567")
      .replaceAll("__IMAGE__", "ghcr.io/octo-cat/toasties-galore/jafflr:0123456789abcdef"),
  );

/** The MiB in a memory quantity like 256Mi or 1Gi. */
function mebibytes(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  assert.ok(match, `memory ${quantity}: write it in Mi or Gi`);
  return Number(match[1]) * (match[2] === "Gi" ? 1024 : 1);
}

describe("Kubernetes manifests", () => {
  test("every file parses and names its objects; none pins a namespace (deploy.sh -n does)", () => {
    assert.ok(all.length > 0);
    for (const { file, obj } of all) {
      assert.ok(obj.apiVersion && obj.kind && obj.metadata?.name, `${file}: incomplete object`);
      assert.notEqual(
        obj.kind,
        "Namespace",
        `${file}: deploy.sh creates the namespace it is given`,
      );
      assert.equal(obj.metadata.namespace, undefined, `${file}`);
    }
    assert.deepEqual(services.sort(), ["chillybin", "jafflr"]);
  });

  test("every object, and the rehearsal's load generator, is valid for the Kubernetes API", () => {
    const load_ = load("load.yaml", join(REPO_ROOT, "scripts", "delivery", "load"));
    for (const { file, obj } of [...all, ...load_.map((obj) => ({ file: "load.yaml", obj }))]) {
      assert.doesNotThrow(
        () => validate(rendered(obj)),
        `${file}: ${obj.kind} ${obj.metadata.name}`,
      );
    }
  });

  test("schema validation catches a broken manifest (so the check above can fail)", () => {
    const broken = rendered(find("Deployment", "jafflr"));
    broken.spec.replicas = "two";
    broken.spec.template.spec.containers[0].ports[0].containerPort = "http";
    assert.throws(
      () => validate(broken),
      /replicas must be integer.*containerPort must be integer/,
    );
  });

  test("tpi serves the probe paths the manifests use", () => {
    const health = read("tpi/src/health.ts");
    assert.match(health, /\.get\("\/health"/);
    assert.match(health, /\.get\("\/ready"/);
  });

  for (const service of services) {
    describe(service, () => {
      const deployment = find("Deployment", service);
      const pod = deployment.spec.template.spec;
      const container = pod.containers.find((c: Obj) => c.name === service);
      const port = configuredPort(service);

      test("a Deployment and a Service on the port of its config", () => {
        assert.equal(port, { jafflr: 7000, chillybin: 7001 }[service]);
        const env = containerEnv(container);
        assert.equal(env.PORT, String(port));
        assert.equal(env.HOST, "0.0.0.0");
        assert.equal(resolvePort(container, "http"), port);
        const svc = find("Service", service);
        assert.deepEqual(svc.spec.selector, deployment.spec.selector.matchLabels);
        assert.equal(svc.spec.ports[0].port, port);
        assert.equal(resolvePort(container, svc.spec.ports[0].targetPort), port);
      });

      test("readiness on /ready, liveness on /health, on the service's port", () => {
        assert.equal(container.readinessProbe.httpGet.path, "/ready");
        assert.equal(resolvePort(container, container.readinessProbe.httpGet.port), port);
        assert.equal(container.livenessProbe.httpGet.path, "/health");
        assert.equal(resolvePort(container, container.livenessProbe.httpGet.port), port);
        if (container.startupProbe) {
          assert.equal(container.startupProbe.httpGet.path, "/health");
          assert.equal(resolvePort(container, container.startupProbe.httpGet.port), port);
        }
      });

      test("the grace period outlasts the preStop delay plus tpi's shutdown deadline", () => {
        const preStop = container.lifecycle.preStop.exec.command;
        assert.equal(preStop[0], "sleep");
        const preStopSeconds = Number(preStop[1]);
        assert.ok(preStopSeconds > 0);
        const env = containerEnv(container);
        const timeoutMs = Number(env.SHUTDOWN_TIMEOUT_MS ?? tpiDefault("SHUTDOWN_TIMEOUT_MS"));
        const delayMs = Number(env.SHUTDOWN_DELAY_MS ?? tpiDefault("SHUTDOWN_DELAY_MS"));
        // tpi's deadline starts at SIGTERM and includes its own delay; the preStop comes before.
        const needed = preStopSeconds + Math.max(timeoutMs, delayMs) / 1000;
        assert.ok(
          pod.terminationGracePeriodSeconds > needed,
          `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} <= ${needed}`,
        );
      });

      test("rolls out without losing capacity", () => {
        assert.equal(deployment.spec.strategy.type, "RollingUpdate");
        assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
        assert.ok(deployment.spec.replicas >= 2, "one pod cannot roll without a gap");
        const pdb = find("PodDisruptionBudget", service);
        assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
      });

      test("the V8 heap is sized well inside each container's memory limit", () => {
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
          const limit = mebibytes(c.resources.limits.memory);
          const options = c.env?.find((e: Obj) => e.name === "NODE_OPTIONS")?.value ?? "";
          const match = /--max-old-space-size=(\d+)\b/.exec(options);
          assert.ok(match, `${c.name}: NODE_OPTIONS sets no --max-old-space-size`);
          const heap = Number(match[1]);
          // Room for the young generation, code and native buffers above the old space, but a
          // heap large enough to be the limit that matters (not one that starves the service).
          assert.ok(heap <= limit * 0.65, `${c.name}: heap ${heap} MiB of a ${limit} MiB limit`);
          assert.ok(heap >= limit * 0.4, `${c.name}: heap ${heap} MiB wastes a ${limit} MiB limit`);
        }
      });

      test("pulls with the Secret deploy.sh writes for private packages", () => {
        assert.deepEqual(pod.imagePullSecrets, [{ name: "registry-pull" }]);
      });

      test("images by version tag, placeholders deploy.sh fills; limits on every container", () => {
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
          assert.equal(c.image, `__IMAGE_REPOSITORY__/${service}:__VERSION__`);
          for (const kind of ["requests", "limits"]) {
            assert.ok(c.resources?.[kind]?.cpu && c.resources?.[kind]?.memory, `${c.name} ${kind}`);
          }
          assert.equal(c.securityContext.allowPrivilegeEscalation, false);
        }
        assert.equal(deployment.metadata.labels["app.kubernetes.io/version"], "__VERSION__");
        assert.equal(pod.securityContext.runAsNonRoot, true);
      });
    });
  }

  test("chillybin migrates in an init container, and the service itself does not", () => {
    const pod = find("Deployment", "chillybin").spec.template.spec;
    const [migrate] = pod.initContainers;
    assert.deepEqual(migrate.command, ["node", "dist/migrate.js"]);
    assert.match(read("chillybin/package.json"), /"migrate": "node dist\/migrate.js"/);
    assert.equal(containerEnv(pod.containers[0]).MIGRATE_ON_START, "false");
    for (const c of [migrate, pod.containers[0]]) {
      assert.ok(
        c.envFrom.some((s: Obj) => s.secretRef?.name === "chillybin-db" && !s.secretRef.optional),
      );
    }
  });

  test("on kind, postgres.yaml provides chillybin's database and its Secret", () => {
    const url = new URL(find("Secret", "chillybin-db").stringData.DATABASE_URL);
    const postgres = find("Service", "postgres");
    assert.equal(url.hostname, postgres.metadata.name);
    assert.equal(Number(url.port), postgres.spec.ports[0].port);
    assert.match(
      find("Deployment", "postgres").spec.template.spec.containers[0].image,
      /^postgres:17/,
    );
  });

  test("jafflr reaches chillybin through its Service, and optionally Unleash", () => {
    const jafflr = find("Deployment", "jafflr").spec.template.spec.containers[0];
    const url = new URL(containerEnv(jafflr).CHILLYBIN_URL as string);
    const chillybin = find("Service", "chillybin");
    assert.equal(url.hostname, chillybin.metadata.name);
    assert.equal(Number(url.port), chillybin.spec.ports[0].port);
    const unleashRef = jafflr.envFrom.find((s: Obj) => s.secretRef?.name === "jafflr-unleash");
    assert.equal(
      unleashRef?.secretRef.optional,
      true,
      "jafflr runs on its flag file without Unleash",
    );
    const unleashUrl = new URL(find("Secret", "jafflr-unleash").stringData.UNLEASH_URL);
    assert.equal(Number(unleashUrl.port), find("Service", "unleash").spec.ports[0].port);
  });
});
