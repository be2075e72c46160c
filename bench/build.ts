/**
 * Case 5, build speed: `turbo run build test` cold (--force), with nothing changed (all cache
 * hits) and after editing one jafflr source file (only jafflr's tasks should run).
 *
 * It runs in a throwaway copy of the working tree (node_modules hard-linked), so the edit, the
 * forced rebuild and turbo's cache never touch the shared checkout other engineers are
 * building and testing in.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { run } from "./load";

export const BUILD_FILTERS = ["tpi", "chillybin", "jafflr"];
/** The file "one jafflr change" edits (in the copy). */
export const EDITED_FILE = "jafflr/src/toastie.ts";

export interface BuildRun {
  label: string;
  wallS: number;
  cached: number;
  total: number;
  /** Tasks that executed instead of replaying from cache, e.g. ["jafflr#build"]. */
  executed: string[];
  /** Tasks that failed (a failed task is never cached, so later runs rerun it). */
  failed: string[];
  /** node:test's "not ok" lines of failed tasks, e.g. "tpi#test: SIGTERM: in-flight requests finish". */
  failedTests: string[];
  exitCode: number | null;
  output: string;
}

export async function buildSpeed(opts: {
  repoRoot: string;
  workDir: string;
  databaseUrl: string;
  log: (line: string) => void;
}): Promise<BuildRun[]> {
  const copy = path.join(opts.workDir, "repo");
  await copyTree(opts.repoRoot, copy);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    // Tests get a PostgreSQL: with-db creates (and drops) its databases on this server.
    DATABASE_URL: opts.databaseUrl,
    // Loopback only: no telemetry or update checks from turbo.
    TURBO_TELEMETRY_DISABLED: "1",
    DO_NOT_TRACK: "1",
    TURBO_NO_UPDATE_NOTIFIER: "1",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
  const turbo = path.join(copy, "node_modules", ".bin", "turbo");
  const args = [
    "run",
    "build",
    "test",
    ...BUILD_FILTERS.map((f) => `--filter=${f}`),
    "--continue", // a failing test suite must not hide the other tasks' timings
    "--output-logs=new-only",
  ];
  const runs: BuildRun[] = [];
  const once = async (label: string, extra: string[] = []) => {
    opts.log(`  build: ${label}…`);
    const start = performance.now();
    const { code, stdout, stderr } = await run(turbo, [...args, ...extra], env, copy);
    const wallS = (performance.now() - start) / 1000;
    const result = parseTurbo(`${stdout}\n${stderr}`);
    runs.push({ label, wallS, exitCode: code, output: `${stdout}\n${stderr}`, ...result });
  };
  await once("cold (--force)", ["--force"]);
  await once("nothing changed");
  appendFileSync(path.join(copy, EDITED_FILE), "\n// bench: one edited jafflr file\n");
  await once(`after editing ${EDITED_FILE}`);
  return runs;
}

/** Parses turbo's per-task hash lines and its "Cached: N cached, M total" summary. */
export function parseTurbo(output: string) {
  const summary = /Cached:\s+(\d+) cached, (\d+) total/.exec(output);
  const executed = new Set<string>();
  for (const m of output.matchAll(/^([\w@/.-]+):(\w+): cache (miss|bypass)/gm)) {
    executed.add(`${m[1]}#${m[2]}`);
  }
  const failedLine = /^\s*Failed:\s+(.+)$/m.exec(output)?.[1] ?? "";
  const failed = failedLine.split(/[,\s]+/).filter((t) => t.includes("#"));
  // Every "not ok" line: a failed subtest and the suite around it (which says "subtestsFailed").
  const failedTests = new Set<string>();
  for (const m of output.matchAll(/^([\w@/.-]+):(\w+):\s*not ok \d+ - (.+)$/gm)) {
    failedTests.add(`${m[1]}#${m[2]}: ${m[3]?.trim()}`);
  }
  return {
    cached: Number(summary?.[1] ?? Number.NaN),
    total: Number(summary?.[2] ?? Number.NaN),
    executed: [...executed].sort(),
    failed,
    failedTests: [...failedTests],
  };
}

/** The working tree without .git, caches and build output; node_modules hard-linked, not copied. */
async function copyTree(from: string, to: string): Promise<void> {
  mkdirSync(to, { recursive: true });
  const excludes = [".git", "node_modules", ".turbo", "dist", ".data", ".cache", "bench"];
  const rsync = await run("rsync", [
    "-a",
    ...excludes.flatMap((e) => ["--exclude", e]),
    "--exclude",
    "*.tsbuildinfo",
    `${from}/`,
    `${to}/`,
  ]);
  if (rsync.code !== 0) throw new Error(`copying the tree failed: ${rsync.stderr}`);
  const moduleDirs = ["node_modules"];
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const nested = path.join(entry.name, "node_modules");
    if (entry.isDirectory() && existsSync(path.join(from, nested))) moduleDirs.push(nested);
  }
  for (const dir of moduleDirs) {
    const cp = await run("cp", ["-al", path.join(from, dir), path.join(to, dir)]);
    if (cp.code !== 0) throw new Error(`hard-linking ${dir} failed: ${cp.stderr}`);
  }
}
