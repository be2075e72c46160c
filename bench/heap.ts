/**
 * The heap sizing the image runs the services with (issue 10 point 6): NODE_OPTIONS from the
 * Kubernetes manifests, else the Dockerfile, else a stand-in sized for the 256 Mi limit — so
 * the memory case measures what production would run, and follows the manifests when they change.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import type { HeapSizing } from "./harness";

/** V8 old space for a 256 Mi container: room left for new space, code, buffers and the binary. */
export const FALLBACK_NODE_OPTIONS = "--max-old-space-size=160";

interface Container {
  name?: string;
  env?: { name?: string; value?: string }[];
  resources?: { limits?: { memory?: string } };
}

export function imageHeapSizing(repoRoot: string): HeapSizing {
  const found: Record<string, string | undefined> = {};
  const limits: Record<string, string> = {};
  const sources = new Set<string>();
  for (const service of ["chillybin", "jafflr"]) {
    const manifest = path.join(repoRoot, "deploy", "k8s", `${service}.yaml`);
    for (const c of deploymentContainers(manifest)) {
      const value = c.env?.find((e) => e.name === "NODE_OPTIONS")?.value;
      if (value !== undefined && found[service] === undefined) {
        found[service] = value;
        sources.add(`deploy/k8s/${service}.yaml`);
      }
      const memory = c.resources?.limits?.memory;
      if (memory && !limits[service]) limits[service] = memory;
    }
  }
  const dockerfile = path.join(repoRoot, "Dockerfile");
  const fromImage = existsSync(dockerfile)
    ? dockerfileNodeOptions(readFileSync(dockerfile, "utf8"))
    : undefined;
  const pick = (service: string) => {
    const manifest = found[service];
    if (manifest !== undefined) return manifest;
    if (fromImage !== undefined) {
      sources.add("Dockerfile");
      return fromImage;
    }
    sources.add(
      `fallback ${FALLBACK_NODE_OPTIONS} (neither the manifests nor the Dockerfile set NODE_OPTIONS)`,
    );
    return FALLBACK_NODE_OPTIONS;
  };
  return {
    chillybin: pick("chillybin"),
    jafflr: pick("jafflr"),
    source: [...sources].join(", "),
    limits,
  };
}

function deploymentContainers(file: string): Container[] {
  if (!existsSync(file)) return [];
  const containers: Container[] = [];
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (!("toJS" in doc)) continue;
    const value = doc.toJS() as {
      kind?: string;
      spec?: { template?: { spec?: { containers?: Container[] } } };
    } | null;
    if (value?.kind !== "Deployment") continue;
    containers.push(...(value.spec?.template?.spec?.containers ?? []));
  }
  return containers;
}

/** `ENV NODE_OPTIONS=…` or `ENV NODE_OPTIONS="…"` (the last one wins, as in the image). */
export function dockerfileNodeOptions(text: string): string | undefined {
  let value: string | undefined;
  for (const m of text.matchAll(/^\s*ENV\s+(?:[^\n]*\s)?NODE_OPTIONS[= ](?:"([^"]*)"|(\S+))/gim)) {
    value = m[1] ?? m[2];
  }
  return value;
}
