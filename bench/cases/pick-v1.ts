/**
 * Everything that uses v1 (deleted with it by foxtrot step 3, like every *pick-v1* file):
 * GET /pick vs pgbench running the same UPDATE at 1, 10 and 50 connections (target 1), toasties
 * via v1 (4 GET /pick each) vs via v2 (target 4) and POST /v2/pick vs GET /pick (target 4).
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { measuredRow, ratioRow, ratioTarget } from "../figures";
import { type BenchCase, conns, expectOk, restock, V1_CUSTOMER } from "../harness";
import { httpLoad, pgbench } from "../load";
import { PICK_CONNECTIONS } from "./pick-v2";
import { cpuSplit, expectToastie, toastieLoad } from "./toastie";

/** Issue 13 target 1, by connections: v1 GET /pick ÷ pgbench. */
const PICK_GOALS: Record<number, number> = { 1: 0.6, 10: 0.8, 50: 1.5 };

let pickSql: string | undefined;

const pickV1: BenchCase = {
  name: "pick-v1",
  byDefault: true,
  async setup(ctx) {
    pickSql = pgbenchPickSql(ctx.repoRoot);
    const { db, chillybin, jafflr } = await ctx.main();
    await restock(ctx.pool(db));
    await expectOk("chillybin GET /pick", `${chillybin.url}/pick?name=cheese&quantity=1`);
    await expectToastie(jafflr, V1_CUSTOMER, "v1");
  },
  runs(ctx) {
    const stocked = async () => restock(ctx.pool((await ctx.main()).db));
    return [
      ...PICK_CONNECTIONS.flatMap((c) => [
        {
          key: `pick.v1.c${c}`,
          duration: "short" as const,
          before: stocked,
          measure: async (durationS: number) => {
            const { chillybin } = await ctx.main();
            return httpLoad({
              url: `${chillybin.url}/pick?name=cheese&quantity=1`,
              connections: c,
              durationS,
              processes: [chillybin],
            });
          },
        },
        {
          key: `pick.pgbench.c${c}`,
          duration: "short" as const,
          before: stocked,
          measure: async (durationS: number) => {
            const { db } = await ctx.main();
            // The server's max_connections (100 here) is shared by pgbench's 50, every bench
            // chillybin's pool and other people's tests.
            const reopen = c > 10 ? await ctx.makeRoom(db) : async () => {};
            try {
              return await pgbench({
                databaseUrl: db.url,
                script: pickSql as string,
                scriptFile: path.join(ctx.workDir, "pick.sql"),
                connections: c,
                durationS,
              });
            } finally {
              await reopen();
            }
          },
        },
      ]),
      {
        key: "toastie.v1",
        duration: "toastie" as const,
        before: stocked,
        measure: async (durationS: number) => {
          const { jafflr, chillybin } = await ctx.main();
          return toastieLoad(jafflr, [jafflr, chillybin], V1_CUSTOMER, durationS);
        },
      },
    ];
  },
  report(_ctx, results) {
    const rows = PICK_CONNECTIONS.flatMap((c) => [
      ...measuredRow(results, "pick-v1", `pick.v1.c${c}`, `chillybin GET /pick (v1), ${conns(c)}`),
      ...measuredRow(
        results,
        "pick-v1",
        `pick.pgbench.c${c}`,
        `pgbench, the same UPDATE, ${conns(c)}`,
        "tps",
      ),
      ...ratioRow(
        results,
        "pick-v1",
        `  v2 ÷ pgbench, ${conns(c)}`,
        `pick.v2.c${c}`,
        `pick.pgbench.c${c}`,
      ),
      ...ratioRow(
        results,
        "pick-v1",
        `  v2 ÷ v1 per request, ${conns(c)}`,
        `pick.v2.c${c}`,
        `pick.v1.c${c}`,
      ),
    ]);
    rows.push(
      ...measuredRow(
        results,
        "pick-v1",
        "toastie.v1",
        "jafflr POST /toastie via v1 (4 GET /pick), 50 conns",
        "toasties/s",
      ),
    );
    const targets = [
      ...PICK_CONNECTIONS.map((c) =>
        ratioTarget(
          results,
          {
            n: 1,
            what: `v1 GET /pick ÷ pgbench, ${conns(c)}`,
            goal: { op: ">=", value: PICK_GOALS[c] ?? 1 },
          },
          `pick.v1.c${c}`,
          `pick.pgbench.c${c}`,
        ),
      ),
      ratioTarget(
        results,
        {
          n: 4,
          what: "toasties/s via v2 ÷ via v1, COOK_TIME_SCALE=0, 50 conns",
          goal: { op: ">=", value: 2 },
          note: "stretch 3×",
        },
        "toastie.v2",
        "toastie.v1",
      ),
      ratioTarget(
        results,
        {
          n: 4,
          what: "POST /v2/pick ÷ GET /pick (v1) per request, 10 conns",
          goal: { op: ">=", value: 0.8 },
        },
        "pick.v2.c10",
        "pick.v1.c10",
      ),
    ];
    const notes = [
      `- pick-v1: pgbench -n -M prepared -c N -j min(N,2) running \`${pickSql ?? "(not run)"}\` — chillybin's v1 statement read from its source, with the parameters GET /pick?name=cheese&quantity=1 binds. pgbench has no server CPU column: its server is PostgreSQL.`,
      "- pick-v1: v1 toasties are customer bench-v1 (GET /pick for cheese, vegemite, bread, bread); v2 toasties one POST /v2/pick for the same toastie.",
    ];
    if (results.has("toastie.v1")) {
      notes.push(
        `- pick-v1: CPU per v1 toastie by process (median): ${cpuSplit(results.get("toastie.v1"))}.`,
      );
    }
    return { rows, targets, notes };
  },
};
export default pickV1;

/**
 * The statement chillybin's v1 pick runs, read from its source so the comparison stays fair when
 * it changes, with the parameters a `GET /pick?name=cheese&quantity=1` binds.
 */
function pgbenchPickSql(repoRoot: string): string {
  const dir = path.join(repoRoot, "chillybin", "src");
  // The v1 route's own file first, then the rest of the source.
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".ts"))
    .sort((a, b) => Number(b.includes("pick-v1")) - Number(a.includes("pick-v1")));
  for (const file of files) {
    const source = readFileSync(path.join(dir, file), "utf8");
    const found = /(["'`])(UPDATE ingredients SET quantity = quantity - \$\d[^"'`]*)\1/.exec(
      source,
    )?.[2];
    if (!found) continue;
    const sql = found.replace(/\s+/g, " ").trim();
    const nameParam = /name = (\$\d)/.exec(sql)?.[1];
    return `${sql.replace(/\$\d/g, (p) => (p === nameParam ? "'cheese'" : "1"))};`;
  }
  throw new Error(
    "cannot find the v1 pick's UPDATE statement in chillybin/src; update pgbenchPickSql() in bench/cases/pick-v1.ts",
  );
}
