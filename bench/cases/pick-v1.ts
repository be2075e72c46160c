/**
 * Everything that uses v1 (deleted with it by foxtrot step 3, like every *pick-v1* file):
 * GET /pick vs pgbench running the same UPDATE at 1, 10 and 50 connections (target 1), toasties
 * via v1 (4 GET /pick each) vs via v2 (target 4) and POST /v2/pick vs GET /pick (target 4).
 *
 * And the floors that show what bounds those targets (rows, not targets): a bare node:http + pg
 * server (bench/apps/bare-pick-v1.ts) running chillybin's v1 statement at 1, 10 and 50
 * connections, and pgbench running v1's and v2's whole statements at 10 connections.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { startApp } from "../compile-apps";
import { measuredRow, ratio, ratioRow, ratioTarget } from "../figures";
import {
  type BenchCase,
  type Context,
  conns,
  expectOk,
  type Results,
  restock,
  V1_CUSTOMER,
  V2_CUSTOMER,
} from "../harness";
import type { Launched } from "../launch";
import { httpLoad, pgbench } from "../load";
import { num } from "../report";
import { PICK_CONNECTIONS } from "./pick-v2";
import { cpuSplit, expectToastie, toastieLoad } from "./toastie";

/** Issue 13 target 1, by connections: v1 GET /pick ÷ pgbench. */
const PICK_GOALS: Record<number, number> = { 1: 0.6, 10: 0.8, 50: 1.5 };

/** The database ceilings are measured at one concurrency: target 4's per-request pair's. */
const CEILING_CONNECTIONS = 10;

let pickSql: string | undefined;
/** chillybin's v1 statement (the `pick-one` query's text), for the bare app. */
let v1Statement: string | undefined;
/** v1's and v2's whole statements with a pick's parameters bound as literals, for pgbench. */
let v1PgbenchSql: string | undefined;
let v2PgbenchSql: string | undefined;
let bare: Launched | undefined;

const pickV1: BenchCase = {
  name: "pick-v1",
  byDefault: true,
  async setup(ctx) {
    pickSql = pgbenchPickSql(ctx.repoRoot);
    v1Statement = v1PickStatement(ctx.repoRoot);
    v1PgbenchSql = bindLiterals(v1Statement, V1_PICK_VALUES, "chillybin's v1 pick-one");
    v2PgbenchSql = bindLiterals(v2PlaceOrderStatement(ctx.repoRoot), V2_PICK_VALUES, "PLACE_ORDER");
    const { db, chillybin, jafflr } = await ctx.main();
    // Both pgbench scripts run once first: a statement that no longer fits the schema fails here.
    for (const sql of [v1PgbenchSql, v2PgbenchSql]) await ctx.pool(db).query(sql);
    await restock(ctx.pool(db));
    await expectOk("chillybin GET /pick", `${chillybin.url}/pick?name=cheese&quantity=1`);
    await expectToastie(jafflr, V1_CUSTOMER, "v1");
    bare = await startBare(ctx, v1Statement);
    await expectOk("bare GET /pick", `${bare.url}/pick?name=cheese&quantity=1`, {
      check: (body) => body === "ok",
    });
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
        {
          key: `pick.floor.c${c}`,
          duration: "short" as const,
          before: stocked,
          measure: async (durationS: number) => {
            const app = bare as Launched;
            return httpLoad({
              url: `${app.url}/pick?name=cheese&quantity=1`,
              connections: c,
              durationS,
              processes: [app],
            });
          },
        },
      ]),
      ...(
        [
          ["pick.pgbench-v1stmt", () => v1PgbenchSql, "pick-v1-statement.sql"],
          ["pick.pgbench-v2", () => v2PgbenchSql, "pick-v2-statement.sql"],
        ] as const
      ).map(([name, sql, file]) => ({
        key: `${name}.c${CEILING_CONNECTIONS}`,
        duration: "short" as const,
        // v2's statement records an order each time; like pick-v2's runs, the orders table is
        // left to grow (stock is reset and vacuumed before every run).
        before: stocked,
        measure: async (durationS: number) => {
          const { db } = await ctx.main();
          return pgbench({
            databaseUrl: db.url,
            script: sql() as string,
            scriptFile: path.join(ctx.workDir, file),
            connections: CEILING_CONNECTIONS,
            durationS,
          });
        },
      })),
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
      ...measuredRow(
        results,
        "pick-v1",
        `pick.floor.c${c}`,
        `bare node:http + pg, chillybin's v1 statement, ${conns(c)}`,
      ),
      ...ratioRow(
        results,
        "pick-v1",
        `  bare ÷ pgbench, ${conns(c)}`,
        `pick.floor.c${c}`,
        `pick.pgbench.c${c}`,
      ),
      ...ratioRow(
        results,
        "pick-v1",
        `  chillybin ÷ bare, ${conns(c)}`,
        `pick.v1.c${c}`,
        `pick.floor.c${c}`,
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
    const cc = CEILING_CONNECTIONS;
    rows.push(
      ...measuredRow(
        results,
        "pick-v1",
        `pick.pgbench-v1stmt.c${cc}`,
        `pgbench, v1's statement (with txid_current() and pg_notify), ${conns(cc)}`,
        "tps",
      ),
      ...ratioRow(
        results,
        "pick-v1",
        `  bare ÷ pgbench of the same statement, ${conns(cc)}`,
        `pick.floor.c${cc}`,
        `pick.pgbench-v1stmt.c${cc}`,
      ),
      ...measuredRow(
        results,
        "pick-v1",
        `pick.pgbench-v2.c${cc}`,
        `pgbench, v2's statement (1 item), ${conns(cc)}`,
        "tps",
      ),
      ...ratioRow(
        results,
        "pick-v1",
        `  v2 statement ÷ v1 statement under pgbench, ${conns(cc)} (the database's ceiling for target 4)`,
        `pick.pgbench-v2.c${cc}`,
        `pick.pgbench-v1stmt.c${cc}`,
      ),
      ...ratioRow(
        results,
        "pick-v1",
        `  v2 statement ÷ the original UPDATE under pgbench, ${conns(cc)}`,
        `pick.pgbench-v2.c${cc}`,
        `pick.pgbench.c${cc}`,
      ),
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
            ...floorNote(results, "bare node:http floor", `pick.floor.c${c}`, `pick.pgbench.c${c}`),
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
          ...floorNote(
            results,
            "database's ceiling, pgbench v2 ÷ v1 statement",
            `pick.pgbench-v2.c${CEILING_CONNECTIONS}`,
            `pick.pgbench-v1stmt.c${CEILING_CONNECTIONS}`,
          ),
        },
        "pick.v2.c10",
        "pick.v1.c10",
      ),
    ];
    const notes = [
      `- pick-v1: pgbench -n -M prepared -c N -j min(N,2) running \`${pickSql ?? "(not run)"}\` — chillybin's v1 statement read from its source, with the parameters GET /pick?name=cheese&quantity=1 binds. pgbench has no server CPU column: its server is PostgreSQL.`,
      "- pick-v1, floors (rows, not targets): *bare* is bench/apps/bare-pick-v1.ts, node:http and a pg.Pool (max 10, like chillybin's) on the main database running exactly chillybin's v1 statement (the `pick-one` query's text read from chillybin/src/pick-v1.ts: the UPDATE in a CTE with txid_current() and pg_notify) with the same parameters — no express, tpi, tracing, logging or validation. bare ÷ pgbench is what Node + pg + that statement can reach against target 1's baseline; chillybin ÷ bare is what chillybin's own layers cost.",
      `- pick-v1, database ceilings: pgbench at ${conns(CEILING_CONNECTIONS)} running v1's whole statement and v2's PLACE_ORDER (chillybin/src/orders.ts; customer ${V2_CUSTOMER}, cheese × 1, no idempotency key) with the parameters bound as literals; v2 ÷ v1 statement is the most target 4's POST /v2/pick ÷ GET /pick could reach with the database as the only cost. Each v2 statement records an order; the orders table is not emptied (as in pick-v2).`,
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

/** "(name a ÷ b: 0.52×)" beside a target, when both sides ran. */
function floorNote(results: Results, name: string, a: string, b: string): { note?: string } {
  if (!results.has(a) || !results.has(b)) return {};
  return { note: `${name}: ${num(ratio(results, a, b).value)}×` };
}

async function startBare(ctx: Context, statement: string): Promise<Launched> {
  const { db } = await ctx.main();
  return startApp(ctx, {
    name: "bare-pick-v1",
    app: "bare-pick-v1",
    args: [statement],
    env: { DATABASE_URL: db.url },
    readyPath: "/ready",
  });
}

/** What chillybin's v1 binds for `GET /pick?name=cheese&quantity=1` ($1, $2, $3). */
const V1_PICK_VALUES = [
  "cheese",
  1,
  JSON.stringify({ pick: { via: "v1", items: [{ ingredient: "cheese", quantity: 1 }] } }),
];

/** What chillybin's v2 binds for one item, cheese × 1, without an Idempotency-Key ($1–$6). */
const V2_PICK_VALUES = [
  V2_CUSTOMER,
  "{cheese}",
  "{1}",
  null,
  null,
  JSON.stringify([{ ingredient: "cheese", quantity: 1 }]),
];

/**
 * The `text` of chillybin's `pick-one` query (v1's whole statement), read from its source, with
 * `${CONSTANT}` interpolations of the file's string constants filled in.
 */
function v1PickStatement(repoRoot: string): string {
  const file = path.join(repoRoot, "chillybin", "src", "pick-v1.ts");
  const source = readFileSync(file, "utf8");
  const text = /name:\s*"pick-one",\s*text:\s*`([^`]*)`/.exec(source)?.[1];
  if (!text) {
    throw new Error(
      `cannot find the \`pick-one\` query's text in ${file}; update v1PickStatement() in bench/cases/pick-v1.ts`,
    );
  }
  return text.replace(/\$\{(\w+)\}/g, (_, name: string) => {
    const value = new RegExp(`const ${name}\\s*=\\s*(["'\`])([^"'\`]*)\\1`).exec(source)?.[2];
    if (value === undefined) {
      throw new Error(
        `the \`pick-one\` query in ${file} interpolates \${${name}}, which is not a string constant there; update v1PickStatement() in bench/cases/pick-v1.ts`,
      );
    }
    return value;
  });
}

/** v2's PLACE_ORDER statement, read from chillybin/src/orders.ts. */
function v2PlaceOrderStatement(repoRoot: string): string {
  const file = path.join(repoRoot, "chillybin", "src", "orders.ts");
  const text = /const PLACE_ORDER\s*=\s*`([^`]*)`/.exec(readFileSync(file, "utf8"))?.[1];
  if (!text || text.includes("${")) {
    throw new Error(
      `cannot find v2's PLACE_ORDER statement (a template literal without interpolations) in ${file}; update v2PlaceOrderStatement() in bench/cases/pick-v1.ts`,
    );
  }
  return text;
}

/**
 * A statement's $n parameters replaced by SQL literals, on one line, for a pgbench script (the
 * statement's own casts, e.g. `$2::text[]`, type them as the bound parameters were).
 */
function bindLiterals(sql: string, values: (string | number | null)[], what: string): string {
  const bound = sql.replace(/\$(\d+)/g, (p, n: string) => {
    const value = values[Number(n) - 1];
    if (value === undefined) throw new Error(`${what}: no value for ${p}`);
    if (value === null) return "NULL";
    return typeof value === "number" ? String(value) : `'${value.replace(/'/g, "''")}'`;
  });
  const oneLine = `${bound.replace(/\s+/g, " ").trim()};`;
  // pgbench would take `:name` for one of its variables (`::type` casts are fine).
  const variable = /(?<!:):[A-Za-z_]/.exec(oneLine);
  if (variable) throw new Error(`${what}: pgbench would read "${variable[0]}…" as a variable`);
  return oneLine;
}

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
