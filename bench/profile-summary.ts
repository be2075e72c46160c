/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --profile`, i.e. node --cpu-prof):
 * self time by function and by package, the quickest way to see where a service's CPU goes.
 *
 *   npx tsx bench/profile-summary.ts /tmp/toasties-bench-XXXX/profiles/chillybin.*.cpuprofile [top]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write("usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]\n");
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const totalUs = profile.endTime - profile.startTime;

const parentOf = new Map<number, number>();
for (const node of profile.nodes)
  for (const child of node.children ?? []) parentOf.set(child, node.id);

const byFunction = new Map<string, number>();
const byPackage = new Map<string, number>();
/** Node core and native time charged to the nearest package frame that called it. */
const byCaller = new Map<string, number>();
for (const [id, us] of selfUs) {
  const frame = byId.get(id)?.callFrame;
  if (!frame) continue;
  const where = frame.url.replace(/^file:\/\//, "");
  const name = `${frame.functionName || "(anonymous)"} ${shorten(where)}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const pkg = packageOf(where, frame.functionName);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
  let owner = pkg;
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const f = byId.get(at)?.callFrame;
    const p = f ? packageOf(f.url.replace(/^file:\/\//, ""), f.functionName) : "(root)";
    owner = p;
    if (p !== "node core" && p !== "(native)" && p !== "(root)") break;
  }
  if (pkg.startsWith("(") && pkg !== "(native)") owner = pkg; // idle, GC, program stay themselves
  byCaller.set(owner, (byCaller.get(owner) ?? 0) + us);
}

const print = (title: string, map: Map<string, number>, n: number) => {
  process.stdout.write(`\n${title}\n`);
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    process.stdout.write(
      `${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}\n`,
    );
  }
};
process.stdout.write(`${file}: ${(totalUs / 1e6).toFixed(1)} s profiled\n`);
print("self time by package", byPackage, 20);
print(
  "self time by package, node core and native time charged to the calling package",
  byCaller,
  20,
);
print("self time by function", byFunction, top);

function packageOf(where: string, fn: string): string {
  if (!where) return fn.startsWith("(") ? fn : "(native)";
  const nm = where.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = where.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? where);
  }
  if (where.startsWith("node:")) return "node core";
  const ws = /\/(tpi|chillybin|jafflr)\/dist\//.exec(where)?.[1];
  return ws ?? where;
}

function shorten(where: string): string {
  const nm = where.lastIndexOf("node_modules/");
  if (nm >= 0) return where.slice(nm + "node_modules/".length);
  return where.replace(/^.*\/(tpi|chillybin|jafflr)\/dist\//, "$1/");
}
