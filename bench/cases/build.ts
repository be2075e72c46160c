/**
 * Opt-in (`--cases build`): `turbo run build test` cold, with nothing changed and after one
 * jafflr edit, in a throwaway copy of the tree (bench/build.ts). Run after the load cases
 * (at report time) so its CPU use cannot disturb them.
 */

import { writeFileSync } from "node:fs";
import path from "node:path";
import { BUILD_FILTERS, buildSpeed, EDITED_FILE } from "../build";
import type { BenchCase } from "../harness";
import { num, type Row } from "../report";

const build: BenchCase = {
  name: "build",
  byDefault: false,
  async setup() {},
  runs() {
    return [];
  },
  async report(ctx) {
    const main = await ctx.main();
    ctx.log("build speed (in a throwaway copy of the tree)…");
    const builds = await buildSpeed({
      repoRoot: ctx.repoRoot,
      workDir: path.join(ctx.workDir, "build"),
      databaseUrl: main.db.url,
      log: ctx.log,
    });
    const rows: Row[] = [];
    const expectations = ["(reported)", "all cached", "only jafflr's tasks run"];
    for (const [i, b] of builds.entries()) {
      writeFileSync(path.join(ctx.workDir, `build-${i + 1}.log`), b.output);
      const ok =
        i === 1
          ? b.total > 0 && b.cached === b.total
          : i === 2
            ? b.executed.length > 0 && b.executed.every((t) => t.startsWith("jafflr#"))
            : undefined;
      rows.push({
        case: "build",
        measurement: `turbo run build test, ${b.label}; cached ${b.cached}/${b.total}; ran: ${b.executed.join(" ") || "nothing"}`,
        value: `${num(b.wallS)} s`,
        failed: b.exitCode === 0 ? "0" : `exit ${b.exitCode}`,
        target: expectations[i],
        result: ok === undefined ? undefined : ok ? "PASS" : "MISS",
      });
    }
    return {
      rows,
      targets: [],
      notes: [
        `- build: in a throwaway copy of the working tree: cold = --force; then nothing changed; then one line appended to ${EDITED_FILE}. Filters: ${BUILD_FILTERS.join(", ")}.`,
      ],
    };
  },
};
export default build;
