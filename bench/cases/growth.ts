/**
 * Target 6, cost as work grows: with a million orders in the table, POST /v2/pick and
 * GET /orders?customer=… within 10 % of their empty-table figures; a 10-item v2 order less than
 * 3× a 1-item one.
 *
 * Two chillybins with the same settings, each on its own throwaway database: "big" gets the
 * orders bulk-inserted with generate_series (in the background while the other cases set up
 * and warm up), "empty" is emptied before each of its runs. Both hold the same 20 orders of the
 * customer GET /orders reads, so both answers are the same size.
 */
import type pg from "pg";
import { measuredRow, ratioTarget } from "../figures";
import { type BenchCase, expectOk, JSON_HEADERS, restock, type Service, settle } from "../harness";
import { httpLoad } from "../load";
import { num } from "../report";
import type { TestDatabase } from "../testkit";

const CONNECTIONS = 10;
const READER = "bench-reader";
const READER_ORDERS = 20;
/** Ingredients a 10-item order needs beyond the stock chillybin seeds. */
const EXTRA_INGREDIENTS = ["bench-a", "bench-b", "bench-c", "bench-d", "bench-e"];
const ITEMS_PER_BIG_ORDER = ["bread", "cheese"];

interface Side {
  db: TestDatabase;
  pool: pg.Pool;
  chillybin: Service;
}

let big: Side | undefined;
let empty: Side | undefined;
let loaded: Promise<number> | undefined;
let tenItems: { ingredient: string; quantity: number }[] = [];
let orders = 0;

const growth: BenchCase = {
  name: "growth",
  byDefault: true,
  early: true,
  async setup(ctx) {
    orders = ctx.orders ?? (ctx.quick ? 100_000 : 1_000_000);
    const side = async (name: string): Promise<Side> => {
      const db = await ctx.database(`growth-${name}`);
      const chillybin = await ctx.service(`chillybin-${name}`, () =>
        ctx.startChillybin({ name: `chillybin-${name}`, db, nodeOptions: ctx.heap.chillybin }),
      );
      const pool = ctx.pool(db);
      await pool.query(
        `INSERT INTO ingredients (name, quantity) SELECT unnest($1::text[]), 0 ON CONFLICT (name) DO NOTHING`,
        [EXTRA_INGREDIENTS],
      );
      return { db, pool, chillybin };
    };
    empty = await side("empty");
    big = await side("big");
    const { rows } = await empty.pool.query<{ name: string }>(
      `SELECT name FROM ingredients ORDER BY name COLLATE "C" LIMIT 10`,
    );
    tenItems = rows.map((r) => ({ ingredient: r.name, quantity: 1 }));
    if (tenItems.length < 10)
      throw new Error(`growth: only ${tenItems.length} ingredients for a 10-item order`);
    await resetEmpty(empty);
    await restock(big.pool);
    await expectOk("chillybin GET /orders", `${big.chillybin.url}/orders?customer=${READER}`);
    await expectOk("chillybin POST /v2/pick, 10 items", `${empty.chillybin.url}/v2/pick`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ customer: "bench", items: tenItems }),
    });
    const started = Date.now();
    loaded = bulkLoad(big.pool, orders).then(() => {
      const s = (Date.now() - started) / 1000;
      ctx.log(`  growth: ${orders} orders loaded in ${num(s)} s`);
      return s;
    });
    // An unobserved rejection would end the process before the run awaits it.
    loaded.catch(() => {});
  },
  runs() {
    const sides = () => ({ big: big as Side, empty: empty as Side });
    const pick = (
      side: Side,
      items: { ingredient: string; quantity: number }[],
      durationS: number,
    ) =>
      httpLoad({
        url: `${side.chillybin.url}/v2/pick`,
        method: "POST",
        body: { customer: "bench", items },
        connections: CONNECTIONS,
        durationS,
        processes: [side.chillybin],
      });
    const read = (side: Side, durationS: number) =>
      httpLoad({
        url: `${side.chillybin.url}/orders?customer=${READER}`,
        connections: CONNECTIONS,
        durationS,
        processes: [side.chillybin],
      });
    const oneItem = [{ ingredient: "cheese", quantity: 1 }];
    return [
      {
        key: "growth.empty.pick",
        duration: "short" as const,
        before: () => resetEmpty(sides().empty),
        measure: (d: number) => pick(sides().empty, oneItem, d),
      },
      {
        key: "growth.big.pick",
        duration: "short" as const,
        before: async () => {
          await loaded;
          await restock(sides().big.pool);
        },
        measure: (d: number) => pick(sides().big, oneItem, d),
      },
      {
        key: "growth.empty.orders",
        duration: "short" as const,
        before: () => resetEmpty(sides().empty),
        measure: (d: number) => read(sides().empty, d),
      },
      {
        key: "growth.big.orders",
        duration: "short" as const,
        before: async () => {
          await loaded;
          await settle(sides().big.pool);
        },
        measure: (d: number) => read(sides().big, d),
      },
      {
        key: "growth.empty.pick10",
        duration: "short" as const,
        before: () => resetEmpty(sides().empty),
        measure: (d: number) => pick(sides().empty, tenItems, d),
      },
    ];
  },
  async report(_ctx, results) {
    const count = big
      ? (await big.pool.query<{ n: string }>("SELECT count(*) AS n FROM orders")).rows[0]?.n
      : undefined;
    const n = num(orders);
    const rows = [
      ...measuredRow(
        results,
        "growth",
        "growth.empty.pick",
        "POST /v2/pick (1 item), empty orders table, 10 conns",
      ),
      ...measuredRow(
        results,
        "growth",
        "growth.big.pick",
        `POST /v2/pick (1 item), ${n} orders, 10 conns`,
      ),
      ...measuredRow(
        results,
        "growth",
        "growth.empty.orders",
        `GET /orders?customer=… (${READER_ORDERS} orders), empty table, 10 conns`,
      ),
      ...measuredRow(
        results,
        "growth",
        "growth.big.orders",
        `GET /orders?customer=… (${READER_ORDERS} orders), ${n} orders, 10 conns`,
      ),
      ...measuredRow(
        results,
        "growth",
        "growth.empty.pick10",
        "POST /v2/pick (10 items), empty orders table, 10 conns",
      ),
    ];
    const scale = orders >= 1_000_000 ? "1 million" : `${n} (quick: not 1 million)`;
    const targets = [
      ratioTarget(
        results,
        {
          n: 6,
          what: `POST /v2/pick, ${scale} orders ÷ empty table`,
          goal: { op: ">=", value: 0.9 },
        },
        "growth.big.pick",
        "growth.empty.pick",
      ),
      ratioTarget(
        results,
        {
          n: 6,
          what: `GET /orders?customer=…, ${scale} orders ÷ empty table`,
          goal: { op: ">=", value: 0.9 },
        },
        "growth.big.orders",
        "growth.empty.orders",
      ),
      // Cost per order = time per request at the same concurrency: 1-item rate ÷ 10-item rate.
      ratioTarget(
        results,
        { n: 6, what: "cost of a 10-item v2 order ÷ a 1-item one", goal: { op: "<=", value: 3 } },
        "growth.empty.pick",
        "growth.empty.pick10",
      ),
    ].map((t) =>
      // The CPU ratio of the cost row reads the same way round as its value (10-item ÷ 1-item).
      t.goal.op === "<=" && t.cpuRatio !== undefined ? { ...t, cpuRatio: 1 / t.cpuRatio } : t,
    );
    return {
      rows,
      targets,
      notes: [
        `- growth: the big table got ${n} orders of ${ITEMS_PER_BIG_ORDER.length} items each from 10 000 customers over the past ${num(orders / 86_400)} days (generate_series, FK triggers off for the load, then VACUUM ANALYZE); ${count ?? "?"} orders at the end. Every POST adds an order on both sides; the empty side is truncated (and its reader's ${READER_ORDERS} orders put back) before each of its runs. A 10-item order's cost is the 1-item rate ÷ the 10-item rate at the same connections (CPU column: 10-item ÷ 1-item µs).`,
      ],
    };
  },
};
export default growth;

/** The reader's orders, the same on both sides: newest last, two items each. */
async function addReaderOrders(db: Pick<pg.Pool, "query">): Promise<void> {
  await db.query(
    `WITH o AS (
       INSERT INTO orders (customer, created_at)
       SELECT $1, now() - make_interval(mins => g) FROM generate_series(1, $2) g
       RETURNING id)
     INSERT INTO order_items (order_id, ingredient, quantity)
     SELECT o.id, i, 1 FROM o, unnest($3::text[]) i`,
    [READER, READER_ORDERS, ITEMS_PER_BIG_ORDER],
  );
}

async function resetEmpty(side: Side): Promise<void> {
  await settle(side.pool);
  await side.pool.query("TRUNCATE orders CASCADE");
  await addReaderOrders(side.pool);
  await restock(side.pool);
}

/**
 * A million orders in one statement per table. Foreign-key triggers are off for the load (the
 * rows are consistent by construction), which takes minutes off it on a busy machine.
 */
async function bulkLoad(pool: pg.Pool, n: number): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("SET session_replication_role = replica");
    await client.query("SET synchronous_commit = off");
    await client.query(
      `INSERT INTO orders (customer, created_at)
       SELECT 'customer-' || (g % 10000), now() - make_interval(secs => g + 3600)
       FROM generate_series(1, $1::int) g`,
      [n],
    );
    await client.query(
      `INSERT INTO order_items (order_id, ingredient, quantity)
       SELECT o.id, i, 1 FROM orders o, unnest($1::text[]) i WHERE o.customer <> $2`,
      [ITEMS_PER_BIG_ORDER, READER],
    );
    await client.query("RESET session_replication_role");
    await addReaderOrders(client);
    await client.query("VACUUM ANALYZE orders");
    await client.query("VACUUM ANALYZE order_items");
  } finally {
    client.release();
  }
}
