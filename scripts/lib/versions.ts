import { assertFullHistory, lastCommitTouching, type Repo, resolveCommit } from "./git";
import {
  dependencyClosure,
  readWorkspaceGraph,
  serviceNames,
  type WorkspaceGraph,
} from "./workspaces";

/**
 * Repository files that shape every image: the install (root manifest, lockfile), the build
 * (turbo, the base tsconfig) and the image recipe itself (with the helper it runs).
 */
export const SHARED_INPUTS = [
  "package.json",
  "package-lock.json",
  "turbo.json",
  "tsconfig.base.json",
  "Dockerfile",
  ".dockerignore",
  "scripts/production-workspaces.cjs",
];

/** Everything whose change can change what `service` ships, per the graph at that commit. */
export function relevantPaths(graph: WorkspaceGraph, service: string): string[] {
  const closure = dependencyClosure(graph, service);
  if (closure.length === 0) {
    throw new Error(`no workspace named "${service}" at ${graph.rev}`);
  }
  return [...closure.map((ws) => ws.dir).sort(), ...SHARED_INPUTS];
}

/**
 * A service's version: the newest commit reachable from `rev` that touched anything it is built
 * from. Two commits with the same version build the same image, so it doubles as the image tag.
 */
export function lastCommit(
  repo: Repo,
  service: string,
  rev = "HEAD",
  graph?: WorkspaceGraph,
): string {
  assertFullHistory(repo);
  const commit = resolveCommit(repo, rev);
  const at = graph ?? readWorkspaceGraph(repo, commit);
  const sha = lastCommitTouching(repo, commit, relevantPaths(at, service));
  if (sha === undefined) throw new Error(`no commit touches ${service} up to ${rev}`);
  return sha;
}

/** Every service at `rev` with its version, in name order. */
export function allVersions(repo: Repo, rev = "HEAD"): { service: string; version: string }[] {
  assertFullHistory(repo);
  const commit = resolveCommit(repo, rev);
  const graph = readWorkspaceGraph(repo, commit);
  return serviceNames(graph).map((service) => ({
    service,
    version: lastCommit(repo, service, commit, graph),
  }));
}

/** git's placeholder for "no previous commit" (a new branch's `before` on a push event). */
const NULL_SHA = /^0{40}$/;

/**
 * Services whose version differs between `base` and `head`, each side judged with the workspace
 * graph of its own commit, so a dependency edge added in between counts. A service that did not
 * exist at `base` is affected; one removed by `head` is not listed (there is nothing to ship).
 */
export function affectedServices(repo: Repo, base: string, head: string): string[] {
  assertFullHistory(repo);
  const headCommit = resolveCommit(repo, head);
  const headGraph = readWorkspaceGraph(repo, headCommit);
  const services = serviceNames(headGraph);
  if (NULL_SHA.test(base)) return services;

  const baseCommit = resolveCommit(repo, base);
  const baseGraph = readWorkspaceGraph(repo, baseCommit);
  return services.filter((service) => {
    if (!baseGraph.workspaces.has(service)) return true;
    const before = lastCommitTouching(repo, baseCommit, relevantPaths(baseGraph, service));
    const after = lastCommitTouching(repo, headCommit, relevantPaths(headGraph, service));
    return before !== after;
  });
}
