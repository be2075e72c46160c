/**
 * `npm run bench`: the built services against the machine's real PostgreSQL, driven by
 * autocannon and pgbench over loopback, bounded in time. Prints one table of medians with the
 * ratios measured in the same run against their targets, and writes it to bench/results.md.
 *
 *   npm run bench                      # full run: 3 rounds, ~7 min on a busy 2-core machine
 *   npx tsx bench/run.ts --quick       # smoke test: 1 round of 1 s cases, results.md untouched
 *   npx tsx bench/run.ts --cases 1,4 --runs 1 --profile   # a subset, with CPU profiles kept
 *
 * Options:
 *   --quick              1 round of 1 s cases; results.md is left alone unless --write
 *   --runs N             rounds (default 3); every case runs once per round, interleaved
 *   --duration S         seconds per load run (default 5, toasties 8)
 *   --cases 1,2,3,4,5    which cases; "3x" adds case 3 with tracing, access log and metrics
 *                        each switched off (which part of tpi costs what)
 *   --env KEY=VALUE      extra settings for the measured servers, e.g. --env PG_POOL_MAX=20
 *   --node-arg FLAG      a node option for the measured servers, e.g. --node-arg=--trace-gc
 *   --profile            node --cpu-prof for the measured servers; keeps the temp dir
 *                        (summarise with bench/profile-summary.ts)
 *   --write, --no-write  whether to write bench/results.md (default: only full runs)
 *   BENCH_DATABASE_URL   the server to create the bench database on (default: the local one)
 *
 * Absolute numbers on a shared 2-core machine are noise; the ratios are the result.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { pickV2FlagFile } from "testkit/flags";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import { BUILD_FILTERS, type BuildRun, buildSpeed, EDITED_FILE } from "./build";
import { killAll, type Launched, launch } from "./launch";
import { httpLoad, pgbench, run, type Sample } from "./load";
import { describeMachine, loadAverage, type Machine, machineLines } from "./machine";
import { markdownTable, median, num, type Row, verdict } from "./report";

const REPO_ROOT = path.resolve(__dirname, "..");
const RESULTS_FILE = path.join(__dirname, "results.md");
// bench/ runs outside turbo, so no cached task depends on this.
const { BENCH_DATABASE_URL } = process.env;
const ADMIN_URL = BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

// ---------- config ----------

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    duration: { type: "string" },
    cases: { type: "string", default: "1,2,3,4,5" },
    env: { type: "string", multiple: true, default: [] },
    profile: { type: "boolean", default: false },
    "node-arg": { type: "string", multiple: true, default: [] },
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
/** Seconds per measured load run: pick and health cases are steady fast; toasties get longer. */
const DURATION = {
  pick: fixedDuration ?? (quick ? 1 : 5),
  toastie: fixedDuration ?? (quick ? 1 : 8),
  health: fixedDuration ?? (quick ? 1 : 5),
  warmup: quick ? 1 : 2,
};
const CASES = new Set(flags.cases.split(",").map((c) => c.trim()));
const EXTRA_ENV = Object.fromEntries(
  flags.env.map((pair) => {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new Error(`--env expects KEY=VALUE, got ${JSON.stringify(pair)}`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }),
);
const WRITE = flags["no-write"] ? false : (flags.write ?? !quick);
const PICK_CONNECTIONS = [1, 10, 50];
const TOASTIE_CONNECTIONS = 50;
const HEALTH_CONNECTIONS = 10;
/** Enough stock that no run can exhaust it (set with SQL: POST /restock caps levels at 10 000). */
const BOTTOMLESS = 1_000_000_000;
const V1_CUSTOMER = "bench-v1";
const V2_CUSTOMER = "bench-v2";
/** The original's toastie: cheese and vegemite between two slices of bread = 4 picks on v1. */
const TOASTIE_INGREDIENTS = ["cheese", "vegemite"];

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------- state (for clean-up) ----------

let db: TestDatabase | undefined;
let workDir: string | undefined;
let keepWorkDir = flags.profile;
let stock: pg.Pool | undefined;
const servers: Launched[] = [];

async function main(): Promise<void> {
  workDir = mkdtempSync(path.join(os.tmpdir(), "toasties-bench-"));
  const profileDir = path.join(workDir, "profiles");
  if (flags.profile) mkdirSync(profileDir);
  db = await createTestDatabase(ADMIN_URL, { prefix: "bench_" });
  const machine = await describeMachine(db.url);
  log(`bench: ${RUNS} round(s); database ${db.name}; logs in ${workDir}${quick ? " (quick)" : ""}`);
  const samples = new Map<string, Sample[]>();
  const record = (key: string, sample: Sample) => {
    samples.set(key, [...(samples.get(key) ?? []), sample]);
    log(
      `  ${key.padEnd(22)} ${num(sample.perSec).padStart(7)}/s  p99 ${num(sample.p99)} ms  cpu ${num(sample.cpuUsPerOp)} µs/op${sample.failed ? `  FAILED ${sample.failed} ${JSON.stringify(sample.statuses)}` : ""}`,
    );
  };
  const nodeArgs = (name: string, entry: string) => [
    ...flags["node-arg"],
    ...(flags.profile
      ? [
          "--cpu-prof",
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${name}.${Date.now()}.cpuprofile`,
        ]
      : []),
    entry,
  ];
  const baseEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
    VERSION: "bench",
  };
  const logFile = (name: string) => path.join(workDir as string, `${name}.log`);

  const needServices = CASES.has("1") || CASES.has("2") || CASES.has("4");
  const startup = new Map<string, number[]>();
  let chillybin: Launched | undefined;
  let jafflr: Launched | undefined;
  let pickSql: string | undefined;

  if (needServices) {
    // chillybin: the first start applies the migrations; the timed starts find nothing to do.
    const chillybinEnv = {
      ...baseEnv,
      DATABASE_URL: db.url,
      ...EXTRA_ENV,
    };
    const chillybinEntry = path.join(REPO_ROOT, "chillybin", "dist", "index.js");
    // Only the instance under load gets --profile / --node-arg; the timed starts run plain.
    const startChillybin = (name: string, measured = false, env: NodeJS.ProcessEnv = {}) =>
      launch({
        name,
        args: measured ? nodeArgs("chillybin", chillybinEntry) : [chillybinEntry],
        env: { ...chillybinEnv, ...env },
        logFile: logFile(name),
      });
    // Migrates even when --env MIGRATE_ON_START=false is being measured.
    const first = await startChillybin("chillybin-migrate", false, { MIGRATE_ON_START: "true" });
    log(`  chillybin first start (migrations): ready in ${num(first.readyMs)} ms`);
    startup.set("chillybin-migrate", [first.readyMs]);
    await first.stop();
    for (let i = 0; i < RUNS; i++) {
      const s = await startChillybin(`chillybin-start-${i}`);
      addTo(startup, "chillybin", s.readyMs);
      addTo(startup, "chillybin-listening", s.listeningMs);
      await s.stop();
    }
    chillybin = await startChillybin("chillybin", true);
    servers.push(chillybin);
    stock = new pg.Pool({ connectionString: db.url, max: 2 });
    stock.on("error", () => {}); // the database is dropped under it on an interrupted run
    pickSql = pgbenchPickSql();

    const flagsFile = path.join(workDir, "flags.json");
    writeFileSync(flagsFile, JSON.stringify(benchFlags(), null, 2));
    const jafflrEnv = {
      ...baseEnv,
      CHILLYBIN_URL: chillybin.url,
      COOK_TIME_SCALE: "0",
      // Far more than the connections: nothing queues or is refused, so the grill never limits.
      GRILL_SLOTS: "1000",
      GRILL_QUEUE: "10000",
      FLAGS_FILE: flagsFile,
      ...EXTRA_ENV,
    };
    const jafflrEntry = path.join(REPO_ROOT, "jafflr", "dist", "index.js");
    const startJafflr = (name: string, measured = false) =>
      launch({
        name,
        args: measured ? nodeArgs("jafflr", jafflrEntry) : [jafflrEntry],
        env: jafflrEnv,
        logFile: logFile(name),
      });
    for (let i = 0; i < RUNS; i++) {
      const s = await startJafflr(`jafflr-start-${i}`);
      addTo(startup, "jafflr", s.readyMs);
      addTo(startup, "jafflr-listening", s.listeningMs);
      await s.stop();
    }
    jafflr = await startJafflr("jafflr", true);
    servers.push(jafflr);
    await restock(stock);
    await sanityChecks(chillybin.url, jafflr.url);
  }

  // Case 3's apps: tpi's stack vs bare express; `--cases 3x` adds tpi with one part switched off.
  const apps: { key: string; server: Launched }[] = [];
  if (CASES.has("3") || CASES.has("3x")) {
    const appsDir = await compileApps();
    for (const variant of appVariants()) {
      const file = variant.key === "bare" ? "bare" : "instrumented";
      const server = await launch({
        name: `app-${variant.key}`,
        args: nodeArgs(`app-${variant.key}`, path.join(appsDir, `${file}.js`)),
        env: { ...baseEnv, ...EXTRA_ENV, ...variant.env },
        logFile: logFile(`app-${variant.key}`),
        readyPath: "/health",
      });
      servers.push(server);
      apps.push({ key: variant.key, server });
    }
  }

  // ---------- load cases, round-robin so drift hits every measurement alike ----------

  // Each measures the CPU of the processes doing the work (for a toastie: jafflr and chillybin).
  const pick = (server: Launched, connections: number, durationS: number) =>
    httpLoad({
      url: `${server.url}/pick?name=cheese&quantity=1`,
      connections,
      durationS,
      processes: [server],
    });
  const pickV2 = (server: Launched, connections: number, durationS: number) =>
    httpLoad({
      url: `${server.url}/v2/pick`,
      method: "POST",
      body: { ingredient: "cheese", quantity: 1, customer: "bench" },
      connections,
      durationS,
      processes: [server],
    });
  const toastie = (procs: Launched[], customer: string, durationS: number) =>
    httpLoad({
      url: `${procs[0]?.url}/toastie`,
      method: "POST",
      body: { customer, ingredients: TOASTIE_INGREDIENTS, doneness: "light" },
      connections: TOASTIE_CONNECTIONS,
      durationS,
      processes: procs,
    });
  const pgbenchRun = (connections: number, durationS: number) =>
    pgbench({
      databaseUrl: (db as TestDatabase).url,
      script: pickSql as string,
      scriptFile: path.join(workDir as string, "pick.sql"),
      connections,
      durationS,
    });

  // Warm-up (JIT, pools, keep-alive connections); not recorded.
  if (chillybin && jafflr && stock && (CASES.has("1") || CASES.has("2"))) {
    log("warm-up…");
    await restock(stock);
    if (CASES.has("1")) {
      await pick(chillybin, 10, DURATION.warmup);
      await pickV2(chillybin, 10, DURATION.warmup);
    }
    if (CASES.has("2")) {
      await toastie([jafflr, chillybin], V1_CUSTOMER, DURATION.warmup);
      await toastie([jafflr, chillybin], V2_CUSTOMER, DURATION.warmup);
    }
  }
  for (const { server } of apps) {
    await httpLoad({
      url: `${server.url}/hello`,
      connections: HEALTH_CONNECTIONS,
      durationS: DURATION.warmup,
    });
  }

  for (let round = 0; round < RUNS; round++) {
    log(`round ${round + 1}/${RUNS}`);
    // Alternate who goes first: a neighbour's burst should not always land on the same side.
    const ordered = <T>(items: T[]) => (round % 2 === 0 ? items : [...items].reverse());
    if (CASES.has("1") && chillybin && stock) {
      for (const c of PICK_CONNECTIONS) {
        for (const kind of ordered(["v1", "v2", "pgbench"] as const)) {
          await restock(stock);
          const d = DURATION.pick;
          const sample =
            kind === "v1"
              ? await pick(chillybin, c, d)
              : kind === "v2"
                ? await pickV2(chillybin, c, d)
                : await pgbenchRun(c, d);
          record(`pick.${kind}.c${c}`, sample);
        }
      }
    }
    if (CASES.has("2") && jafflr && chillybin && stock) {
      for (const kind of ordered(["v1", "v2"] as const)) {
        await restock(stock);
        const customer = kind === "v1" ? V1_CUSTOMER : V2_CUSTOMER;
        record(`toastie.${kind}`, await toastie([jafflr, chillybin], customer, DURATION.toastie));
      }
    }
    for (const route of ["health", "hello"] as const) {
      for (const { key, server } of ordered(apps)) {
        record(
          `${route}.${key}`,
          await httpLoad({
            url: `${server.url}/${route}`,
            connections: HEALTH_CONNECTIONS,
            durationS: DURATION.health,
            processes: [server],
          }),
        );
      }
    }
  }

  // ---------- case 4: peak memory, read before the processes go ----------
  const peakRss = new Map<string, Memory>();
  for (const server of servers) {
    peakRss.set(server.name, {
      peak: server.peakRssMiB(),
      atReady: server.readyRssMiB,
      file: server.fileRssMiB(),
    });
  }
  await stopServers();
  await stock?.end();
  stock = undefined;

  // ---------- case 5: build speed ----------
  let builds: BuildRun[] | undefined;
  let buildError: string | undefined;
  if (CASES.has("5")) {
    log("build speed (in a throwaway copy of the tree)…");
    try {
      builds = await buildSpeed({
        repoRoot: REPO_ROOT,
        workDir: path.join(workDir, "build"),
        databaseUrl: db.url,
        log,
      });
    } catch (err) {
      // The load cases' numbers are still worth printing.
      buildError = (err as Error).message;
      keepWorkDir = true;
    }
    for (const [i, b] of (builds ?? []).entries()) {
      writeFileSync(path.join(workDir, `build-${i + 1}.log`), b.output);
      if (b.exitCode !== 0) keepWorkDir = true;
    }
  }

  // ---------- report ----------
  const rows = tableRows(samples, peakRss, startup, builds);
  const table = markdownTable(rows);
  const notes = reportNotes(samples, builds, pickSql);
  if (buildError) notes.push(`- Case 5 could not run: ${buildError}`);
  process.stdout.write(`\n${heading()}\n\n${table}\n\n${notes.join("\n")}\n`);
  if (WRITE) {
    writeFileSync(RESULTS_FILE, resultsMarkdown(machine, table, notes));
    log(`\nwrote ${path.relative(process.cwd(), RESULTS_FILE)}`);
  }
  if (builds?.some((b) => b.exitCode !== 0)) {
    log(`\na turbo run failed: its full output is in ${workDir}/build-<n>.log`);
  }
}

// ---------- helpers ----------

/** MiB: peak resident set, resident set when ready, file-backed part at the end. */
interface Memory {
  peak: number | undefined;
  atReady: number | undefined;
  file: number | undefined;
}

interface AppVariant {
  key: string;
  label: string;
  env: Record<string, string>;
}

/** tpi's full stack and bare express; with `--cases 3x`, tpi with each part switched off too. */
function appVariants(): AppVariant[] {
  const variants: AppVariant[] = [
    { key: "tpi", label: "tpi (log+metrics+tracing)", env: {} },
    { key: "bare", label: "bare express", env: {} },
  ];
  if (CASES.has("3x")) {
    variants.push(
      { key: "tpi-notrace", label: "tpi without tracing", env: { BENCH_TRACING: "0" } },
      {
        key: "tpi-nolog",
        label: "tpi without access log (LOG_LEVEL=warn)",
        env: { BENCH_ACCESS_LOG: "0" },
      },
      { key: "tpi-nometrics", label: "tpi without RED metrics", env: { BENCH_METRICS: "0" } },
      {
        key: "tpi-none",
        label: "tpi without tracing, access log and metrics",
        env: { BENCH_TRACING: "0", BENCH_ACCESS_LOG: "0", BENCH_METRICS: "0" },
      },
    );
  }
  return variants;
}

/**
 * Case 3's apps compiled to plain JavaScript, so they run under bare `node` like the services
 * (tsx's loader thread would add its own memory and CPU to the measurement).
 */
async function compileApps(): Promise<string> {
  const tsc = path.join(REPO_ROOT, "node_modules", ".bin", "tsc");
  const { code, stdout, stderr } = await run(tsc, [
    "-p",
    path.join(__dirname, "apps", "tsconfig.json"),
  ]);
  if (code !== 0) throw new Error(`compiling bench/apps failed:\n${stdout}${stderr}`);
  return path.join(__dirname, ".cache", "apps");
}

function addTo(map: Map<string, number[]>, key: string, value: number) {
  map.set(key, [...(map.get(key) ?? []), value]);
}

/**
 * Between runs: wait for the previous run's stragglers (autocannon hangs up at the deadline, the
 * services finish what they had started), then bottomless stock and the dead row versions
 * vacuumed away, so every run starts alike.
 */
async function restock(pool: pg.Pool): Promise<void> {
  await settle(pool);
  // Rows locked in name order, as chillybin locks them, so a late pick cannot deadlock with us.
  await pool.query(
    `UPDATE ingredients SET quantity = $1
     WHERE name IN (SELECT name FROM ingredients ORDER BY name COLLATE "C" FOR UPDATE)`,
    [BOTTOMLESS],
  );
  await pool.query("VACUUM (ANALYZE) ingredients");
}

/** Until no other session of the bench database is running a statement (at most 10 s). */
async function settle(pool: pg.Pool): Promise<void> {
  const deadline = Date.now() + 10_000;
  let quiet = 0;
  while (quiet < 3 && Date.now() < deadline) {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'`,
    );
    quiet = rows[0]?.n === 0 ? quiet + 1 : 0;
    if (quiet < 3) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The statement chillybin's v1 pick runs, read from its source so the comparison stays fair when
 * it changes, with the parameters a `GET /pick?name=cheese&quantity=1` binds.
 */
function pgbenchPickSql(): string {
  const source = readFileSync(path.join(REPO_ROOT, "chillybin", "src", "pick-v1.ts"), "utf8");
  const found = /"(UPDATE ingredients SET quantity = quantity - \$2[^"]*)"/.exec(source)?.[1];
  if (!found) {
    throw new Error(
      "cannot find the v1 pick's UPDATE statement in chillybin/src/pick-v1.ts; update pgbenchPickSql()",
    );
  }
  return `${found.replaceAll("$1", "'cheese'").replaceAll("$2", "1")};`;
}

/** pick.v2 on for the v2 customer only: one jafflr serves both paths, chosen per request. */
function benchFlags() {
  return pickV2FlagFile([V2_CUSTOMER]);
}

/** One request down each path before measuring: a benchmark of error responses proves nothing. */
async function sanityChecks(chillybinUrl: string, jafflrUrl: string): Promise<void> {
  const expect = async (
    what: string,
    response: Promise<Response>,
    check: (body: string) => boolean,
  ) => {
    const r = await response;
    const body = await r.text();
    if (r.status !== 200 || !check(body)) {
      throw new Error(`sanity check failed: ${what} answered ${r.status} ${body.slice(0, 500)}`);
    }
  };
  const json = { "content-type": "application/json" };
  await expect(
    "chillybin GET /pick",
    fetch(`${chillybinUrl}/pick?name=cheese&quantity=1`),
    () => true,
  );
  await expect(
    "chillybin POST /v2/pick",
    fetch(`${chillybinUrl}/v2/pick`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ ingredient: "cheese", quantity: 1, customer: "bench" }),
    }),
    () => true,
  );
  for (const [customer, via] of [
    [V1_CUSTOMER, "v1"],
    [V2_CUSTOMER, "v2"],
  ] as const) {
    await expect(
      `jafflr POST /toastie for ${customer}`,
      fetch(`${jafflrUrl}/toastie`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ customer, ingredients: TOASTIE_INGREDIENTS, doneness: "light" }),
      }),
      (body) => (JSON.parse(body) as { pickedVia?: string }).pickedVia === via,
    );
  }
}

function tableRows(
  samples: Map<string, Sample[]>,
  peakRss: Map<string, Memory>,
  startup: Map<string, number[]>,
  builds: BuildRun[] | undefined,
): Row[] {
  const rows: Row[] = [];
  const perSec = (key: string) => median((samples.get(key) ?? []).map((s) => s.perSec));
  const p99 = (key: string) => median((samples.get(key) ?? []).map((s) => s.p99 ?? Number.NaN));
  const cpu = (key: string) =>
    median((samples.get(key) ?? []).map((s) => s.cpuUsPerOp ?? Number.NaN));
  const failed = (key: string) =>
    (samples.get(key) ?? []).reduce((sum, s) => sum + s.failed, 0).toString();
  const measured = (c: string, key: string, measurement: string, unit: string) => {
    if (!samples.has(key)) return;
    const isPgbench = key.startsWith("pick.pgbench");
    rows.push({
      case: c,
      measurement,
      value: `${num(perSec(key))} ${unit}`,
      p99: isPgbench
        ? `(mean ${num(median((samples.get(key) ?? []).map((s) => s.p50 ?? Number.NaN)))})`
        : num(p99(key)),
      cpu: num(cpu(key)),
      failed: failed(key),
    });
  };
  const ratio = (c: string, measurement: string, a: string, b: string, target?: number) => {
    if (!samples.has(a) || !samples.has(b)) return;
    const value = perSec(a) / perSec(b);
    const cpuRatio = cpu(a) / cpu(b);
    rows.push({
      case: c,
      measurement,
      value: `${num(value)}×`,
      cpu: Number.isFinite(cpuRatio) ? `${num(cpuRatio)}×` : "",
      target: target === undefined ? "(info)" : `≥ ${target}×`,
      result:
        target === undefined
          ? undefined
          : verdict(Number.isFinite(value) ? value >= target : undefined),
    });
  };

  for (const c of PICK_CONNECTIONS) {
    const conns = `${c} conn${c === 1 ? "" : "s"}`;
    measured("1", `pick.v1.c${c}`, `chillybin GET /pick (v1), ${conns}`, "req/s");
    measured("1", `pick.v2.c${c}`, `chillybin POST /v2/pick, ${conns}`, "req/s");
    measured("1", `pick.pgbench.c${c}`, `pgbench, the same UPDATE, ${conns}`, "tps");
    ratio(
      "1",
      `v1 / pgbench, ${conns}`,
      `pick.v1.c${c}`,
      `pick.pgbench.c${c}`,
      c === 10 ? 0.7 : undefined,
    );
    ratio("1", `v2 / pgbench, ${conns}`, `pick.v2.c${c}`, `pick.pgbench.c${c}`);
  }
  measured(
    "2",
    "toastie.v1",
    `jafflr POST /toastie via v1 (4 picks), ${TOASTIE_CONNECTIONS} conns`,
    "toasties/s",
  );
  measured(
    "2",
    "toastie.v2",
    `jafflr POST /toastie via v2 (1 call), ${TOASTIE_CONNECTIONS} conns`,
    "toasties/s",
  );
  ratio("2", "toasties/s v2 / v1", "toastie.v2", "toastie.v1", 3);

  const h = HEALTH_CONNECTIONS;
  measured("3", "health.bare", `GET /health, bare express, ${h} conns`, "req/s");
  measured("3", "health.tpi", `GET /health, tpi (log+metrics+tracing), ${h} conns`, "req/s");
  ratio("3", "/health tpi / bare (≤ 10% cost)", "health.tpi", "health.bare", 0.9);
  measured("3", "hello.bare", `GET /hello, bare express, ${h} conns`, "req/s");
  measured("3", "hello.tpi", `GET /hello (traced), tpi, ${h} conns`, "req/s");
  ratio("3", "/hello (traced) tpi / bare", "hello.tpi", "hello.bare", 0.9);
  // The ablation: which part of tpi costs what (each variant / bare, same run).
  for (const variant of appVariants().filter((v) => v.key.startsWith("tpi-"))) {
    for (const route of ["health", "hello"]) {
      measured("3x", `${route}.${variant.key}`, `GET /${route}, ${variant.label}`, "req/s");
      ratio("3x", `  ↳ / bare`, `${route}.${variant.key}`, `${route}.bare`);
    }
  }

  const mb = (mib: number | undefined) => (mib === undefined ? Number.NaN : (mib * 2 ** 20) / 1e6);
  for (const name of ["chillybin", "jafflr", "app-tpi", "app-bare"]) {
    if (!peakRss.has(name)) continue;
    const service = name === "chillybin" || name === "jafflr";
    const { peak, atReady, file } = peakRss.get(name) ?? {};
    const value = mb(peak);
    rows.push({
      case: "4",
      measurement: `peak RSS (VmHWM), ${service ? name : `case 3 ${name.slice(4)} app`} (${num(mb(atReady))} MB when ready; ${num(mb(file))} MB file-backed)`,
      value: `${num(value)} MB`,
      target: service ? "≤ 120 MB" : "(info)",
      result: service ? verdict(Number.isFinite(value) ? value <= 120 : undefined) : undefined,
    });
  }
  const startRow = (key: string, measurement: string) => {
    const values = startup.get(key);
    if (!values) return;
    rows.push({
      case: "4",
      measurement: `${measurement} (${values.length === 1 ? "1 start" : `median of ${values.length}`})`,
      value: `${num(median(values))} ms`,
      target: "(reported)",
    });
  };
  startRow("chillybin", "start-up to ready, chillybin, migrations applied");
  startRow("chillybin-listening", "  ↳ of which spawn → listening");
  startRow("jafflr", "start-up to ready, jafflr");
  startRow("jafflr-listening", "  ↳ of which spawn → listening");
  startRow("chillybin-migrate", "first start incl. migrating an empty database, chillybin");

  for (const [i, b] of (builds ?? []).entries()) {
    const onlyJafflr = b.executed.length > 0 && b.executed.every((t) => t.startsWith("jafflr#"));
    const expectation = [
      { target: "(reported)", ok: undefined },
      { target: "all cached", ok: b.total > 0 && b.cached === b.total },
      { target: "only jafflr's tasks run", ok: onlyJafflr },
    ][i];
    const failures = b.failed.length > 0 ? `; FAILED ${b.failed.join(" ")}` : "";
    rows.push({
      case: "5",
      measurement: `turbo run build test, ${b.label}`,
      value: `${num(b.wallS)} s`,
      failed: b.exitCode === 0 ? "0" : `exit ${b.exitCode}`,
      target: expectation?.target,
      result: expectation?.ok === undefined ? undefined : verdict(expectation.ok),
    });
    rows.push({
      case: "5",
      measurement: `  ↳ cached ${b.cached}/${b.total}; ran: ${b.executed.join(" ") || "nothing"}${failures}`,
      value: "",
    });
  }
  return rows;
}

function heading(): string {
  const rounds =
    RUNS === 1 ? "1 run each (not repeated: medians of one)" : `median of ${RUNS} runs each`;
  return `## Results: ${rounds}; ${DURATION.pick} s per pick/health run, ${DURATION.toastie} s per toastie run`;
}

function reportNotes(
  samples: Map<string, Sample[]>,
  builds: BuildRun[] | undefined,
  pickSql: string | undefined,
): string[] {
  const notes = [
    "Notes:",
    `- Load average (1/5/15 min) at the end: ${loadAverage()} on ${os.availableParallelism()} CPUs — other engineers' test suites share this machine.`,
    "- CPU µs/op: user+system CPU of the serving processes (/proc/<pid>/stat) during the run divided by its 2xx answers — jafflr plus chillybin for a toastie, not the load generator or PostgreSQL; on a ratio row, the ratio of those. Much steadier than throughput on a shared machine.",
    "- Throughput counts 2xx answers only; Failed = non-2xx answers + socket errors + timeouts, summed over the runs (pgbench: failed transactions).",
    "- Ratios are median / median from the same run; cases were interleaved round by round (order alternating) so drift on this shared machine hits both sides of a ratio.",
    `- Case 1: pgbench -n -M prepared -c N -j min(N,2) running \`${pickSql ?? "(case not run)"}\` — chillybin's v1 statement from chillybin/src/pick-v1.ts with the parameters GET /pick?name=cheese&quantity=1 binds. Services run with their default settings${flags.env.length ? ` except ${flags.env.join(" ")}` : ""} (chillybin's PG_POOL_MAX default is 10). Stock is set to ${BOTTOMLESS} with SQL (POST /restock caps levels at 10 000) and the table vacuumed before every run. POST /v2/pick sends no Idempotency-Key: each request is a new order row.`,
    `- Case 2: one jafflr, COOK_TIME_SCALE=0, GRILL_SLOTS=1000, GRILL_QUEUE=10000; a flag file turns pick.v2 on for customer ${V2_CUSTOMER} only, so v1 = customer ${V1_CUSTOMER} (GET /pick for cheese, vegemite, bread, bread) and v2 = one POST /v2/pick for the same toastie.`,
    `- Case 3: two processes with the same express settings and routes: tpi's createHttpApp + serve (tpi/register tracing, request id, access log at info to a file, RED metrics) vs plain express. /health is not traced (tpi's sampler drops probe spans), /hello is. No OTLP exporter is configured (as in this repo's default runs), so spans are created and sampled but not serialised or sent.`,
    "- Case 4: VmHWM of the load-test instances (chillybin across cases 1-2, jafflr across case 2) just before they are stopped. VmHWM includes the file-backed pages (RssFile: mostly the node binary, shared by every node process on the host), shown beside it. Start-up = spawn → /ready 200 (polled every 5 ms), VERSION set as in production.",
    `- Case 5: in a throwaway copy of the working tree: cold = --force; then nothing changed; then one line appended to ${EDITED_FILE}. Filters: ${BUILD_FILTERS.join(", ")}; tests run against the bench database's server.`,
  ];
  const split = (key: string) => {
    const list = samples.get(key) ?? [];
    const names = Object.keys(list[0]?.cpuUsPerOpBy ?? {});
    return names
      .map((n) => `${n} ${num(median(list.map((s) => s.cpuUsPerOpBy?.[n] ?? Number.NaN)))} µs`)
      .join(" + ");
  };
  if (samples.has("toastie.v1") && samples.has("toastie.v2")) {
    notes.push(
      `- CPU per toastie by process (median): v1 ${split("toastie.v1")}; v2 ${split("toastie.v2")}.`,
    );
  }
  const failures = [...samples].filter(([, list]) => list.some((s) => s.failed > 0));
  for (const [key, list] of failures) {
    const merged: Record<string, number> = {};
    for (const s of list)
      for (const [k, v] of Object.entries(s.statuses)) merged[k] = (merged[k] ?? 0) + v;
    notes.push(`- ${key} failures: ${JSON.stringify(merged)}`);
  }
  for (const b of builds ?? []) {
    if (b.failedTests.length > 0) {
      const shown = b.failedTests.slice(0, 4).join("; ");
      const more = b.failedTests.length > 4 ? ` … and ${b.failedTests.length - 4} more` : "";
      notes.push(`- Failing tests in "${b.label}": ${shown}${more}`);
    }
  }
  if (builds?.some((b) => b.failed.length > 0)) {
    notes.push(
      "- A failed task is never cached, so it runs again in the next build run: a MISS on the unchanged run then comes from that failure, not from the cache.",
    );
  }
  return notes;
}

function resultsMarkdown(machine: Machine, table: string, notes: string[]): string {
  return [
    "# Benchmark results",
    "",
    "Produced by `npm run bench` (bench/run.ts). Absolute numbers on a shared 2-core machine are noise; the ratios measured in the same run are the result.",
    "",
    "## Machine",
    "",
    ...machineLines(machine),
    "",
    heading(),
    "",
    table,
    "",
    ...notes,
    "",
  ].join("\n");
}

async function stopServers(): Promise<void> {
  const list = servers.splice(0);
  await Promise.allSettled(list.map((s) => s.stop()));
}

async function cleanUp(): Promise<void> {
  killAll();
  await stock?.end().catch(() => {});
  await db?.drop().catch((err: Error) => log(`could not drop ${db?.name}: ${err.message}`));
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
    await stopServers();
    await cleanUp();
  });
