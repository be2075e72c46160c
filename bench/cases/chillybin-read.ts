/**
 * Target 3: chillybin's GET / (the whole stock) and /health at 1 and 10 connections, at least
 * 2× today's. "Today's" is the chillybin (and tpi) of a fixed commit, built and run beside this
 * tree's in the same rounds (bench/baseline.ts), each on its own database with the same stock.
 */

import { BASELINE_COMMIT, baselineChillybin } from "../baseline";
import { measuredRow, ratioTarget } from "../figures";
import { type BenchCase, conns, expectOk, type Service } from "../harness";
import { httpLoad } from "../load";
import type { Row } from "../report";

const CONNECTIONS = [1, 10];
const ROUTES = [
  { key: "root", path: "/", label: "GET / (stock)" },
  { key: "health", path: "/health", label: "GET /health" },
];

let baseline: Service | undefined;
let baselineSha = "";

const chillybinRead: BenchCase = {
  name: "chillybin-read",
  byDefault: true,
  async setup(ctx) {
    const built = await baselineChillybin({
      repoRoot: ctx.repoRoot,
      commit: ctx.baseline ?? BASELINE_COMMIT,
      log: ctx.log,
    });
    baselineSha = built.sha;
    const db = await ctx.database("baseline");
    baseline = await ctx.service("chillybin-baseline", () =>
      ctx.startChillybin({
        name: "chillybin-baseline",
        db,
        entry: built.entry,
        nodeOptions: ctx.heap.chillybin,
        env: { MIGRATE_ON_START: "true" },
      }),
    );
    const { chillybin } = await ctx.main();
    const now = await expectOk("chillybin GET /", `${chillybin.url}/`);
    const before = await expectOk("baseline chillybin GET /", `${baseline.url}/`);
    if (Object.keys(JSON.parse(now)).length !== Object.keys(JSON.parse(before)).length) {
      ctx.log(
        `  note: GET / lists different ingredients now and in the baseline: ${now} vs ${before}`,
      );
    }
  },
  runs(ctx) {
    return ROUTES.flatMap((route) =>
      CONNECTIONS.flatMap((c) =>
        (["now", "base"] as const).map((side) => ({
          key: `read.${route.key}.${side}.c${c}`,
          duration: "short" as const,
          measure: async (durationS: number) => {
            const server = side === "now" ? (await ctx.main()).chillybin : (baseline as Service);
            return httpLoad({
              url: `${server.url}${route.path}`,
              connections: c,
              durationS,
              processes: [server],
            });
          },
        })),
      ),
    );
  },
  report(_ctx, results) {
    const rows: Row[] = [];
    for (const route of ROUTES) {
      for (const c of CONNECTIONS) {
        rows.push(
          ...measuredRow(
            results,
            "read",
            `read.${route.key}.now.c${c}`,
            `chillybin ${route.label}, ${conns(c)}`,
          ),
          ...measuredRow(
            results,
            "read",
            `read.${route.key}.base.c${c}`,
            `  today's chillybin (${baselineSha.slice(0, 9)}), ${conns(c)}`,
          ),
        );
      }
    }
    const targets = ROUTES.flatMap((route) =>
      CONNECTIONS.map((c) =>
        ratioTarget(
          results,
          {
            n: 3,
            what: `chillybin ${route.label} ÷ today's, ${conns(c)}`,
            goal: { op: ">=", value: 2 },
          },
          `read.${route.key}.now.c${c}`,
          `read.${route.key}.base.c${c}`,
        ),
      ),
    );
    return {
      rows,
      targets,
      notes: [
        `- read: "today's" chillybin is commit ${baselineSha.slice(0, 12)} (main when issue 13 was taken on; the previous results.md had no chillybin GET / or /health figures), built into bench/.cache/baseline/ and run with the same settings on its own database with the same stock, interleaved with this tree's.`,
      ],
    };
  },
};
export default chillybinRead;
