/**
 * What a bench case is and what it gets to work with.
 *
 * Every file in bench/cases/ default-exports one BenchCase; bench/run.ts finds them by listing
 * that directory, so deleting a case file (foxtrot step 3 deletes bench/cases/pick-v1.ts)
 * removes its measurements and targets without touching anything else.
 */
import type pg from "pg";
import type { Launched } from "./launch";
import type { Sample } from "./load";
import type { Row } from "./report";
import type { TestDatabase } from "./testkit";

/** How long each kind of load run lasts, in seconds. */
export interface Durations {
  /** pick, health, reads, growth cases */
  short: number;
  /** toasties: several hops each, so a longer run for a steady median */
  toastie: number;
  /** the unrecorded warm-up round */
  warmup: number;
}

/** One timed load run, repeated once per round, interleaved with every other case's runs. */
export interface LoadRun {
  /** Where its samples are kept, e.g. "pick.v1.c10". */
  key: string;
  duration: keyof Omit<Durations, "warmup">;
  /** Brings the database to the same state before every run (restock, empty a table, …). */
  before?: () => Promise<void>;
  measure: (durationS: number) => Promise<Sample>;
}

/** One line of the targets table: an issue-13 target and what this run measured. */
export interface Target {
  /** The target number (1–7), for ordering and reference. */
  n: number;
  what: string;
  /** The measured figure (a ratio, MB, …), NaN when it could not be measured. */
  measured: number;
  unit: "×" | "MB" | "cases";
  /** `>=`: measured must reach goal; `<=`: measured must stay at or under it. */
  goal: { op: ">=" | "<="; value: number };
  /** The CPU-per-request ratio beside a throughput ratio (steadier on a busy machine). */
  cpuRatio?: number;
  note?: string;
}

export interface Report {
  rows: Row[];
  targets: Target[];
  notes: string[];
}

export interface BenchCase {
  /** The --cases selector and the first column of the measurements table. */
  name: string;
  /** Whether a plain `npm run bench` runs it (build speed, for one, is opt-in). */
  byDefault: boolean;
  /** Set up before the others (it starts slow background work, e.g. a bulk load). */
  early?: boolean;
  /** Starts what it needs (through the context, so services are shared) and sanity-checks it. */
  setup(ctx: Context): Promise<void>;
  /** The runs of one round. */
  runs(ctx: Context): LoadRun[];
  /** After the last round, while every service still runs (memory is read from /proc). */
  report(ctx: Context, results: Results): Promise<Report> | Report;
}

export class Results {
  readonly samples = new Map<string, Sample[]>();

  add(key: string, sample: Sample): void {
    this.samples.set(key, [...(this.samples.get(key) ?? []), sample]);
  }

  has(key: string): boolean {
    return this.samples.has(key);
  }

  get(key: string): Sample[] {
    return this.samples.get(key) ?? [];
  }
}

/** A chillybin or jafflr started for the bench, with how it was started. */
export interface Service extends Launched {
  /** NODE_OPTIONS it runs with ("" = none). */
  nodeOptions: string;
}

export interface HeapSizing {
  chillybin: string;
  jafflr: string;
  /** Where the options were read from, for the report. */
  source: string;
  /** The containers' memory limits, e.g. {chillybin: "256Mi"}. */
  limits: Record<string, string>;
}

export interface Context {
  quick: boolean;
  /** --orders: the growth case's big table size (default 1 000 000; quick 100 000). */
  orders: number | undefined;
  /** --baseline: the commit "today's" chillybin is built from (default in ../baseline). */
  baseline: string | undefined;
  rounds: number;
  durations: Durations;
  repoRoot: string;
  workDir: string;
  adminUrl: string;
  heap: HeapSizing;
  log(line: string): void;
  /** A throwaway database on the bench server, created on first use, dropped at the end. */
  database(name: string): Promise<TestDatabase>;
  /**
   * Makes room on the server for `connections` more (pgbench's 50): closes the idle connections
   * of every other bench database's services. The returned function opens them again (ten
   * concurrent /ready calls to each of those services), so no later run pays for reconnecting.
   */
  makeRoom(keep: TestDatabase): Promise<() => Promise<void>>;
  /** A one-connection pool on a bench database (closed at the end). */
  pool(db: TestDatabase): pg.Pool;
  /**
   * A service started once and shared by every case that asks for it by the same name, stopped
   * at the end; `start` runs only the first time.
   */
  service<T extends Launched>(name: string, start: () => Promise<T>): Promise<T>;
  /** chillybin from this tree on a database (migrated on start), with the given NODE_OPTIONS. */
  startChillybin(opts: {
    name: string;
    db: TestDatabase;
    nodeOptions: string;
    /** A different build's dist/index.js (the baseline), default this tree's. */
    entry?: string;
    env?: Record<string, string>;
  }): Promise<Service>;
  /** jafflr from this tree in front of a chillybin, with the bench's flag file. */
  startJafflr(opts: { name: string; chillybin: Launched; nodeOptions: string }): Promise<Service>;
  /** Only the main instances are profiled with --profile (one profile per service). */
  profiled: boolean;
  /** The shared main instances: every chillybin/jafflr case runs against these. */
  main(): Promise<{ db: TestDatabase; chillybin: Service; jafflr: Service }>;
}

/** The customers the bench's flag file routes: pick.v2 on for V2 only. */
export const V1_CUSTOMER = "bench-v1";
export const V2_CUSTOMER = "bench-v2";
/** The original's toastie: cheese and vegemite between two slices of bread (4 picks on v1). */
export const TOASTIE_INGREDIENTS = ["cheese", "vegemite"];
export const TOASTIE_CONNECTIONS = 50;
/** Enough stock that no run can exhaust it (set with SQL: POST /restock caps levels at 10 000). */
export const BOTTOMLESS = 1_000_000_000;

/**
 * Between runs: wait for the previous run's stragglers (autocannon hangs up at the deadline, the
 * services finish what they had started), then bottomless stock and the dead row versions
 * vacuumed away, so every run starts alike.
 */
export async function restock(pool: pg.Pool): Promise<void> {
  await settle(pool);
  // Rows locked in name order, as chillybin locks them, so a late pick cannot deadlock with us.
  await pool.query(
    `UPDATE ingredients SET quantity = $1
     WHERE name IN (SELECT name FROM ingredients ORDER BY name COLLATE "C" FOR UPDATE)`,
    [BOTTOMLESS],
  );
  await pool.query("VACUUM (ANALYZE) ingredients");
}

/** Until no other session of the database is running a statement (at most 10 s). */
export async function settle(pool: pg.Pool): Promise<void> {
  const deadline = Date.now() + 10_000;
  let quiet = 0;
  while (quiet < 3 && Date.now() < deadline) {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
         AND query NOT ILIKE 'LISTEN%'`,
    );
    quiet = rows[0]?.n === 0 ? quiet + 1 : 0;
    if (quiet < 3) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** One request before measuring: a benchmark of error responses proves nothing. */
export async function expectOk(
  what: string,
  url: string,
  init: RequestInit & { check?: (body: string) => boolean } = {},
): Promise<string> {
  const { check, ...request } = init;
  const r = await fetch(url, { ...request, signal: AbortSignal.timeout(10_000) });
  const body = await r.text();
  if (r.status < 200 || r.status > 299 || (check && !check(body))) {
    throw new Error(`sanity check failed: ${what} answered ${r.status} ${body.slice(0, 500)}`);
  }
  return body;
}

export const JSON_HEADERS = { "content-type": "application/json" };

/** "1 conn", "10 conns". */
export function conns(n: number): string {
  return `${n} conn${n === 1 ? "" : "s"}`;
}
