/**
 * `npm run bench`: the built services against the machine's real PostgreSQL, driven by
 * autocannon and pgbench over loopback, bounded in time. Prints a targets table (every issue-13
 * target, the measured ratio and how far it is from the goal) and a measurements table of
 * medians with server CPU per request, and writes both to bench/results.md.
 *
 *   npm run bench                      # full run: 3 rounds, ~10 min on a busy 2-core machine
 *   npm run bench -- --quick           # smoke test: 1 round of 1 s runs (< 2 min), results.md untouched
 *   npm run bench -- --node current    # the services on this machine's node, not the image's
 *   npx tsx bench/run.ts --cases pick-v1,instrumentation --runs 1 --profile
 *
 * Options:
 *   --quick              1 round of 1 s runs (toasties 2 s), no warm-up, 100 000 orders instead
 *                        of 1 million; results.md is left alone unless --write or --out
 *   --node WHICH         the node every server runs on (bench/node-runtime.ts): image (default:
 *                        the Dockerfile's FROM node:<major>, fetched once from the npm registry
 *                        into bench/.cache/node/), current (this machine's node), a major or
 *                        version (24, 24.22.3), or an absolute path to a node executable; the
 *                        bench and its load generator always run on this machine's node
 *   --out FILE           where the report is written (default bench/results.md); implies --write
 *   --runs N             rounds (default 3); every run of every case once per round, interleaved
 *   --duration S         seconds per load run (default 3, toasties 5; warm-up 2)
 *   --cases a,b          which cases (files in bench/cases/, by name); default every case that
 *                        runs by default; "build" (turbo build speed) is opt-in
 *   --orders N           orders in the growth case's big table (default 1 000 000)
 *   --budget MIN         no round starts that would end after MIN minutes (default 12; quick 2)
 *   --baseline REF       the commit "today's" chillybin is built from (default: see baseline.ts)
 *   --env KEY=VALUE      extra settings for the measured servers, e.g. --env PG_POOL_MAX=20
 *   --node-arg FLAG      a node option for the main services, e.g. --node-arg=--trace-gc
 *   --profile            node --cpu-prof for the main services and case apps; keeps the temp dir
 *                        (summarise with bench/profile-summary.ts)
 *   --write, --no-write  whether to write the report (default: full runs, or --out given)
 *   BENCH_DATABASE_URL   the server to create the bench databases on (default: the local one)
 *
 * Absolute numbers on a shared 2-core machine are noise; the ratios measured in the same run,
 * and the server CPU per request, are the result.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import {
  type BenchCase,
  type Context,
  type Durations,
  type LoadRun,
  Results,
  type Target,
  V2_CUSTOMER,
} from "./harness";
import { imageHeapSizing } from "./heap";
import { killAll, type Launched, launch, sleep, useNode } from "./launch";
import { cpuSeconds, type Sample } from "./load";
import { describeMachine, loadAverage, type Machine, machineLines } from "./machine";
import { resolveServiceNode, type ServiceNode } from "./node-runtime";
import { markdownTable, num, type Row, targetsTable } from "./report";
import { createTestDatabase, pickV2FlagFile, type TestDatabase } from "./testkit";

const REPO_ROOT = path.resolve(__dirname, "..");
const CASES_DIR = path.join(__dirname, "cases");
// bench/ runs outside turbo, so no cached task depends on this.
const { BENCH_DATABASE_URL } = process.env;
const ADMIN_URL = BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

// ---------- config ----------

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    duration: { type: "string" },
    cases: { type: "string" },
    orders: { type: "string" },
    budget: { type: "string" },
    baseline: { type: "string" },
    env: { type: "string", multiple: true, default: [] },
    profile: { type: "boolean", default: false },
    "node-arg": { type: "string", multiple: true, default: [] },
    node: { type: "string", default: "image" },
    out: { type: "string" },
    write: { type: "boolean" },
    "no-write": { type: "boolean", default: false },
  },
});
const positive = (name: string, value: string | undefined, fallback: number) => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
};
const quick = flags.quick;
const RUNS = Math.round(positive("runs", flags.runs, quick ? 1 : 3));
const fixedDuration =
  flags.duration === undefined ? undefined : positive("duration", flags.duration, 1);
const DURATIONS: Durations = {
  short: fixedDuration ?? (quick ? 1 : 3),
  // 50 toasties in flight take more than a second to come back on a busy machine.
  toastie: fixedDuration ?? (quick ? 2 : 5),
  // Long enough for V8 to optimise the hot paths of a process that serves only one case;
  // --quick proves the bench works, so it skips warming up.
  warmup: quick ? 0 : 2,
};
const EXTRA_ENV = Object.fromEntries(
  flags.env.map((pair) => {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new Error(`--env expects KEY=VALUE, got ${JSON.stringify(pair)}`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }),
);
const RESULTS_FILE = path.resolve(flags.out ?? path.join(__dirname, "results.md"));
const WRITE = flags["no-write"] ? false : (flags.write ?? (flags.out !== undefined || !quick));
/** Minutes the whole run may take (checked before each round). */
const BUDGET_S = positive("budget", flags.budget, quick ? 2 : 12) * 60;
const ORDERS =
  flags.orders === undefined ? undefined : Math.round(positive("orders", flags.orders, 1));

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------- state (for clean-up) ----------

let workDir: string | undefined;
let keepWorkDir = flags.profile;
let budgetNote: string | undefined;
const databases = new Map<string, Promise<TestDatabase>>();
const pools = new Map<string, pg.Pool>();
const services = new Map<string, Promise<Launched>>();
let mainTrio: ReturnType<Context["main"]> | undefined;
let serviceNode: ServiceNode | undefined;

async function main(): Promise<void> {
  const started = performance.now();
  serviceNode = resolveServiceNode(flags.node, REPO_ROOT);
  useNode(serviceNode.path);
  log(
    `node: services on ${serviceNode.version} (${serviceNode.source}; ${serviceNode.path}); bench and load generator on ${process.version}`,
  );
  workDir = mkdtempSync(path.join(os.tmpdir(), "toasties-bench-"));
  const profileDir = path.join(workDir, "profiles");
  if (flags.profile) mkdirSync(profileDir);
  const ctx = createContext(workDir, profileDir);
  const cases = await loadCases();
  const machine = await describeMachine(ADMIN_URL);
  log(
    `bench: ${cases.map((c) => c.name).join(", ")}; ${RUNS} round(s); logs in ${workDir}${quick ? " (quick)" : ""}`,
  );
  log(
    `heap sizing: chillybin ${ctx.heap.chillybin || "none"}, jafflr ${ctx.heap.jafflr || "none"} (${ctx.heap.source})`,
  );

  for (const c of [...cases].sort((a, b) => Number(b.early ?? false) - Number(a.early ?? false))) {
    log(`setup: ${c.name}…`);
    await c.setup(ctx);
  }
  const results = new Results();
  const record = (key: string, sample: Sample) => {
    results.add(key, sample);
    log(
      `  ${key.padEnd(30)} ${num(sample.perSec).padStart(7)}/s  p99 ${num(sample.p99)} ms  cpu ${num(sample.cpuUsPerOp)} µs/op${sample.failed ? `  FAILED ${sample.failed} ${JSON.stringify(sample.statuses)}` : ""}`,
    );
  };
  const roundRuns = cases.flatMap((c) => c.runs(ctx));

  // Warm-up (JIT, pools, keep-alive connections): every run once, short, not recorded.
  if (DURATIONS.warmup > 0) log("warm-up…");
  for (const r of DURATIONS.warmup > 0 ? roundRuns : []) {
    await quiesce();
    await r.before?.();
    await r.measure(DURATIONS.warmup);
  }
  let roundsRun = 0;
  let roundS = 0;
  for (let round = 0; round < RUNS; round++) {
    // Bounded: a round that would end past the budget is not started (the report says so).
    const elapsedS = (performance.now() - started) / 1000;
    if (round > 0 && elapsedS + roundS > BUDGET_S) {
      budgetNote = `- Stopped after ${round} of ${RUNS} rounds: another round (${num(roundS)} s) would have overrun the ${num(BUDGET_S / 60)} min budget (--budget) on this busy machine; medians are of ${round}.`;
      log(budgetNote.slice(2));
      break;
    }
    const roundStart = performance.now();
    log(`round ${round + 1}/${RUNS} (load average ${loadAverage()})`);
    // Alternate the order: a neighbour's burst should not always land on the same side of a pair.
    const ordered: LoadRun[] = round % 2 === 0 ? roundRuns : [...roundRuns].reverse();
    for (const r of ordered) {
      await quiesce();
      await r.before?.();
      record(r.key, await r.measure(DURATIONS[r.duration]));
    }
    roundS = (performance.now() - roundStart) / 1000;
    roundsRun = round + 1;
  }

  const rows: Row[] = [];
  const targets: Target[] = [];
  const notes: string[] = [];
  for (const c of cases) {
    const report = await c.report(ctx, results);
    rows.push(...report.rows);
    targets.push(...report.targets);
    notes.push(...report.notes);
  }
  // Target 7: server CPU per request reported for every HTTP run.
  const httpKeys = [...results.samples.keys()].filter((k) => !k.includes("pgbench"));
  const withCpu = httpKeys.filter((k) => results.get(k).every((s) => s.cpuUsPerOp !== undefined));
  targets.push({
    n: 7,
    what: "server CPU µs per request reported, HTTP cases",
    measured: httpKeys.length === 0 ? Number.NaN : withCpu.length / httpKeys.length,
    unit: "×",
    goal: { op: ">=", value: 1 },
    note: `${withCpu.length} of ${httpKeys.length}`,
  });
  await stopAll();

  const elapsed = (performance.now() - started) / 1000;
  const allNotes = [
    ...commonNotes(ctx, elapsed),
    ...(budgetNote ? [budgetNote] : []),
    ...notes,
    ...failureNotes(results),
  ];
  const targetTable = targetsTable(targets);
  const table = markdownTable(rows);
  process.stdout.write(
    `\n## Targets\n\n${targetTable}\n\n${heading(roundsRun)}\n\n${table}\n\n${allNotes.join("\n")}\n`,
  );
  if (WRITE) {
    writeFileSync(
      RESULTS_FILE,
      resultsMarkdown(machine, serviceNode, targetTable, table, allNotes, roundsRun),
    );
    log(`\nwrote ${path.relative(process.cwd(), RESULTS_FILE)}`);
  }
  log(`bench took ${num(elapsed)} s`);
}

/**
 * Until every service started for the bench is idle (at most 15 s): autocannon hangs up at its
 * deadline, but the services finish what was in flight — 50 v1 toasties are 200 picks — and that
 * backlog must not be charged to the next run.
 */
async function quiesce(): Promise<void> {
  const running = (await Promise.allSettled(services.values())).flatMap((s) =>
    s.status === "fulfilled" && s.value.child.exitCode === null ? [s.value] : [],
  );
  const total = () =>
    running.reduce((sum, s) => {
      try {
        return sum + cpuSeconds(s.pid);
      } catch {
        return sum; // exited meanwhile
      }
    }, 0);
  const deadline = Date.now() + 15_000;
  let before = total();
  while (Date.now() < deadline) {
    await sleep(100);
    const now = total();
    // Idle processes still tick now and then (timers, flag polling): under 30 ms in 100 ms.
    if (now - before < 0.03) return;
    before = now;
  }
}

// ---------- cases ----------

/** Every file in bench/cases/ default-exports a case; a deleted file is simply not there. */
async function loadCases(): Promise<BenchCase[]> {
  const files = readdirSync(CASES_DIR)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .sort();
  const all: BenchCase[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(path.join(CASES_DIR, file)).href)) as {
      default?: BenchCase | { default?: BenchCase };
    };
    // tsx hands a CommonJS module's default export over once or twice wrapped.
    const exported = mod.default;
    const found =
      exported && "runs" in exported ? exported : (exported as { default?: BenchCase })?.default;
    if (!found) throw new Error(`bench/cases/${file} has no default-exported case`);
    all.push(found);
  }
  const order = [
    "pick-v1",
    "pick-v2",
    "toastie",
    "instrumentation",
    "chillybin-read",
    "memory",
    "growth",
    "startup",
    "build",
  ];
  all.sort((a, b) => rank(order, a.name) - rank(order, b.name));
  if (flags.cases === undefined) return all.filter((c) => c.byDefault);
  const wanted = flags.cases.split(",").map((c) => c.trim());
  const unknown = wanted.filter((w) => !all.some((c) => c.name === w));
  if (unknown.length > 0) {
    throw new Error(
      `unknown case(s) ${unknown.join(", ")}; there are: ${all.map((c) => c.name).join(", ")}`,
    );
  }
  return all.filter((c) => wanted.includes(c.name));
}

function rank(order: string[], name: string): number {
  const i = order.indexOf(name);
  return i < 0 ? order.length : i;
}

// ---------- context ----------

function createContext(dir: string, profileDir: string): Context {
  const heap = imageHeapSizing(REPO_ROOT);
  const baseEnv = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
    VERSION: "bench",
  };
  const logFile = (name: string) => path.join(dir, `${name}.log`);
  const nodeArgs = (name: string, entry: string, profiled: boolean) => [
    ...(profiled ? flags["node-arg"] : []),
    ...(profiled && flags.profile
      ? [
          "--cpu-prof",
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${name}.${Date.now()}.cpuprofile`,
        ]
      : []),
    entry,
  ];
  const withNodeOptions = (env: Record<string, string>, nodeOptions: string) =>
    nodeOptions ? { ...env, NODE_OPTIONS: nodeOptions } : env;

  const ctx: Context = {
    quick,
    orders: ORDERS,
    baseline: flags.baseline,
    rounds: RUNS,
    durations: DURATIONS,
    repoRoot: REPO_ROOT,
    workDir: dir,
    adminUrl: ADMIN_URL,
    heap,
    log,
    profiled: flags.profile,
    database(name) {
      let db = databases.get(name);
      if (!db) {
        db = createTestDatabase(ADMIN_URL, { prefix: `bench_${name.replaceAll("-", "_")}_` });
        databases.set(name, db);
      }
      return db;
    },
    pool(db) {
      let pool = pools.get(db.name);
      if (!pool) {
        // One connection: the server's max_connections is shared with pgbench's 50 and everyone's tests.
        pool = new pg.Pool({ connectionString: db.url, max: 1 });
        pool.on("error", () => {}); // the database is dropped under it on an interrupted run
        pools.set(db.name, pool);
      }
      return pool;
    },
    async makeRoom(keep) {
      const others = (await Promise.all(databases.values())).filter((d) => d.name !== keep.name);
      if (others.length === 0) return async () => {};
      const admin = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 10_000 });
      admin.on("error", () => {});
      await admin.connect();
      try {
        await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = ANY($1::text[]) AND state = 'idle' AND pid <> pg_backend_pid()
             AND query NOT ILIKE '%LISTEN%' -- a stock-change listener is no pool connection
          `,
          [others.map((d) => d.name)],
        );
      } finally {
        await admin.end();
      }
      return async () => {
        const running = (await Promise.allSettled(services.values())).flatMap((s) =>
          s.status === "fulfilled" && s.value.name.startsWith("chillybin-") ? [s.value] : [],
        );
        await Promise.all(
          running.flatMap((s) =>
            Array.from({ length: 10 }, () =>
              fetch(`${s.url}/ready`, { signal: AbortSignal.timeout(10_000) })
                .then((r) => r.arrayBuffer())
                .catch(() => undefined),
            ),
          ),
        );
      };
    },
    service<T extends Launched>(name: string, start: () => Promise<T>): Promise<T> {
      let s = services.get(name);
      if (!s) {
        s = start();
        services.set(name, s);
      }
      return s as Promise<T>;
    },
    async startChillybin({ name, db, nodeOptions, entry, env = {} }) {
      const main = entry === undefined && name === "chillybin";
      const script = entry ?? path.join(REPO_ROOT, "chillybin", "dist", "index.js");
      const launched = await launch({
        name,
        args: nodeArgs(name, script, main),
        env: withNodeOptions(
          { ...baseEnv, DATABASE_URL: db.url, ...EXTRA_ENV, ...env },
          nodeOptions,
        ),
        logFile: logFile(name),
      });
      return { ...launched, nodeOptions };
    },
    async startJafflr({ name, chillybin, nodeOptions }) {
      const flagsFile = path.join(dir, "flags.json");
      writeFileSync(flagsFile, JSON.stringify(pickV2FlagFile([V2_CUSTOMER]), null, 2));
      const script = path.join(REPO_ROOT, "jafflr", "dist", "index.js");
      const launched = await launch({
        name,
        args: nodeArgs(name, script, name === "jafflr"),
        env: withNodeOptions(
          {
            ...baseEnv,
            CHILLYBIN_URL: chillybin.url,
            COOK_TIME_SCALE: "0",
            // Far more than the connections: nothing queues or is refused, so the grill never limits.
            GRILL_SLOTS: "1000",
            GRILL_QUEUE: "10000",
            FLAGS_FILE: flagsFile,
            ...EXTRA_ENV,
          },
          nodeOptions,
        ),
        logFile: logFile(name),
      });
      return { ...launched, nodeOptions };
    },
    main() {
      mainTrio ??= (async () => {
        const db = await ctx.database("main");
        const chillybin = await ctx.service("chillybin", () =>
          ctx.startChillybin({ name: "chillybin", db, nodeOptions: heap.chillybin }),
        );
        const jafflr = await ctx.service("jafflr", () =>
          ctx.startJafflr({ name: "jafflr", chillybin, nodeOptions: heap.jafflr }),
        );
        return { db, chillybin, jafflr };
      })();
      return mainTrio;
    },
  };
  return ctx;
}

// ---------- report ----------

function heading(rounds: number): string {
  const runs =
    rounds === 1
      ? "1 run each (not repeated: medians of one)"
      : `median of ${rounds} interleaved runs each`;
  return `## Measurements: ${runs}; ${DURATIONS.short} s per run, ${DURATIONS.toastie} s per toastie run`;
}

function commonNotes(ctx: Context, elapsedS: number): string[] {
  return [
    "Notes:",
    `- Load average (1/5/15 min) at the end: ${loadAverage()} on ${os.availableParallelism()} CPUs — other engineers' builds and test suites share this machine. The whole run took ${num(elapsedS)} s.`,
    "- CPU µs/op: user+system CPU of the serving processes (/proc/<pid>/stat) during the run divided by its 2xx answers — jafflr plus chillybin for a toastie, not the load generator or PostgreSQL; on a ratio row, the ratio of those. Much steadier than throughput on a shared machine.",
    "- Throughput counts 2xx answers only; Failed = non-2xx answers + socket errors + timeouts, summed over the runs (pgbench: failed transactions).",
    `- Ratios are median ÷ median from the same run; every run of every case was interleaved round by round (order reversed every other round) ${DURATIONS.warmup > 0 ? "after one unrecorded warm-up round" : "without a warm-up round (--quick)"}, so drift on this shared machine hits both sides of a ratio.`,
    `- Services: the built dist/ of this tree on node ${serviceNode?.version ?? process.version}, NODE_ENV=production, LOG_LEVEL=info into a file, default settings${flags.env.length ? ` except ${flags.env.join(" ")}` : ""}; chillybin ${ctx.heap.chillybin ? `NODE_OPTIONS=${ctx.heap.chillybin}` : "no NODE_OPTIONS"}, jafflr ${ctx.heap.jafflr ? `NODE_OPTIONS=${ctx.heap.jafflr}` : "no NODE_OPTIONS"} (from ${ctx.heap.source}); jafflr with COOK_TIME_SCALE=0, GRILL_SLOTS=1000, GRILL_QUEUE=10000 and a flag file turning pick.v2 on for customer ${V2_CUSTOMER} only.`,
  ];
}

function failureNotes(results: Results): string[] {
  const notes: string[] = [];
  for (const [key, list] of results.samples) {
    if (!list.some((s) => s.failed > 0)) continue;
    const merged: Record<string, number> = {};
    for (const s of list)
      for (const [k, v] of Object.entries(s.statuses)) merged[k] = (merged[k] ?? 0) + v;
    notes.push(`- ${key} failures: ${JSON.stringify(merged)}`);
  }
  return notes;
}

function resultsMarkdown(
  machine: Machine,
  node: ServiceNode,
  targetTable: string,
  table: string,
  notes: string[],
  rounds: number,
): string {
  const docsLink = path
    .relative(path.dirname(RESULTS_FILE), path.join(REPO_ROOT, "docs", "performance.md"))
    .split(path.sep)
    .join("/");
  return [
    "# Benchmark results",
    "",
    `Produced by \`npm run bench\` (bench/run.ts). Absolute numbers on a shared 2-core machine are noise; the ratios measured in the same run, and the server CPU per request, are the result. What the figures mean and what the profiles show: [docs/performance.md](${docsLink}).`,
    "",
    "## Machine",
    "",
    ...machineLines(machine, node),
    "",
    "## Targets",
    "",
    targetTable,
    "",
    heading(rounds),
    "",
    table,
    "",
    ...notes,
    "",
  ].join("\n");
}

// ---------- clean-up ----------

async function stopAll(): Promise<void> {
  const list = [...services.values()];
  services.clear();
  const launched = await Promise.allSettled(list);
  await Promise.allSettled(
    launched.flatMap((l) => (l.status === "fulfilled" ? [l.value.stop()] : [])),
  );
}

async function cleanUp(): Promise<void> {
  killAll();
  await Promise.allSettled([...pools.values()].map((p) => p.end()));
  pools.clear();
  const dbs = await Promise.allSettled([...databases.values()]);
  databases.clear();
  for (const d of dbs) {
    if (d.status !== "fulfilled") continue;
    await d.value
      .drop()
      .catch((err: Error) => log(`could not drop ${d.value.name}: ${err.message}`));
  }
  if (workDir && !keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  else if (workDir)
    log(`kept ${workDir} (logs${flags.profile ? ", CPU profiles in profiles/" : ""})`);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping`);
    keepWorkDir = true;
    cleanUp().finally(() => process.exit(130));
  });
}

main()
  .catch((err: Error) => {
    keepWorkDir = true;
    log(`bench failed: ${err.stack ?? err.message}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    await cleanUp();
  });
