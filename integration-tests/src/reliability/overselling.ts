/**
 * Reliability 1 — no overselling, ever: 500 requests at once against 100 cheeses. Every request
 * takes exactly one cheese and nothing else runs short, so exactly 100 succeed whatever the
 * interleaving; the rest are clean "out of stock" answers, and the books (read with SQL) match
 * the successes to the unit. The mix of requests is the test file's: v2 orders and toasties in
 * reliability-overselling.test.ts, v1 picks and toasties in its *pick-v1* sibling.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { arrangeClient } from "testkit/http-client";
import type { ServiceProcess } from "testkit/service-process";
import { needsOwnProcesses } from "../stall";
import { Harness } from "./harness";
import { minus, type Quantities, readBooks, total } from "./ledger";
import type { LoadRequest } from "./load";
import { census, describe as describeOutcome, type Outcome } from "./load";
import { send } from "./raw-http";
import { shuffled } from "./seeded";

export const REQUESTS = 500;
const CHEESE = 100;
const PLENTY = 10_000;

export interface OversellingMix {
  /** The i-th of the REQUESTS requests (they are shuffled, seeded, before being sent). */
  request(i: number, services: { chillybin: ServiceProcess; jafflr: ServiceProcess }): LoadRequest;
  /** pick.v2 on for exactly these customers (a private copy of the flag file); default: the repo's file. */
  v2Customers?: string[];
}

export function describeOverselling(title: string, mix: OversellingMix) {
  describe(title, needsOwnProcesses, () => {
    const h = new Harness();
    let chillybin: ServiceProcess;
    let jafflr: ServiceProcess;
    let pool: pg.Pool;

    before(async () => {
      const db = await h.database();
      pool = h.pool(db.url);
      const flags = mix.v2Customers ? { FLAGS_FILE: await h.flagFile(mix.v2Customers) } : {};
      // Generous timeouts: on a busy shared box a request queued behind 250 others must wait for a
      // pool connection rather than be turned away — this test is about correctness, not latency.
      chillybin = await h.start("chillybin", {
        DATABASE_URL: db.url,
        PG_CONNECT_TIMEOUT_MS: "30000",
        PG_STATEMENT_TIMEOUT_MS: "30000",
      });
      jafflr = await h.start("jafflr", {
        CHILLYBIN_URL: chillybin.url,
        CHILLYBIN_TIMEOUT_MS: "30000",
        COOK_TIME_SCALE: "0",
        GRILL_SLOTS: "32",
        GRILL_QUEUE: String(REQUESTS),
        ...flags,
      });
    });

    after(() => h.cleanup());

    test(
      "exactly as many succeed as the stock allows, the rest are clean 409/410s, and the books match to the unit",
      h.withLogs(async () => {
        const initial: Quantities = {
          cheese: CHEESE,
          bread: PLENTY,
          ham: PLENTY,
          tomato: PLENTY,
          vegemite: PLENTY,
        };
        await arrangeClient(chillybin.url).post("/restock", { json: initial });
        const start = await readBooks(pool);
        assert.equal(start.orders, 0);

        const requests = shuffled(
          Array.from({ length: REQUESTS }, (_, i) => mix.request(i, { chillybin, jafflr })),
          20251125,
        );

        // Watch the stock from outside while the storm runs: it never goes below zero.
        let watching = true;
        const seenNegative: string[] = [];
        const watcher = (async () => {
          while (watching) {
            const reply = await send(chillybin.url, { path: "/" });
            if (reply.status === 200) {
              for (const [name, n] of Object.entries(reply.json as Quantities)) {
                if (n < 0) seenNegative.push(`${name}=${n}`);
              }
            }
            await new Promise((r) => setTimeout(r, 25));
          }
        })();

        const outcomes: Outcome[] = await Promise.all(
          requests.map(async (request) => ({ ...(await send(request.target, request)), request })),
        );
        watching = false;
        await watcher;

        const unexpected = outcomes.filter((o) => !isSuccess(o) && !isOutOfStock(o));
        assert.deepEqual(
          unexpected.map(describeOutcome),
          [],
          `every answer is a success or a clean "out of stock" (${census(outcomes)})`,
        );
        const serverErrors = outcomes.filter((o) => o.status >= 500 || o.status === 0);
        assert.equal(serverErrors.length, 0, "no 5xx and no dropped connections");

        const successes = outcomes.filter(isSuccess);
        assert.equal(
          successes.length,
          CHEESE,
          `every request takes one cheese and nothing else runs short, so exactly ${CHEESE} succeed (${census(outcomes)})`,
        );
        for (const o of successes.filter((s) => s.request.kind.startsWith("toastie"))) {
          assert.equal(o.json.pickedVia, o.request.kind === "toastie-v2" ? "v2" : "v1", o.text);
        }

        const books = await readBooks(pool);
        assert.deepEqual(
          books.stock,
          minus(start.stock, total(successes.map((o) => o.request.takes))),
          "the stock is exactly the restocked levels minus what the successful requests took",
        );
        assert.equal(books.stock.cheese, 0, "every cheese was sold");
        assert.deepEqual(
          Object.entries(books.stock).filter(([, n]) => n < 0),
          [],
          "no quantity below zero",
        );
        assert.deepEqual(seenNegative, [], "GET / never showed a quantity below zero");

        const v2Successes = successes.filter(
          (o) => o.request.kind === "pick-v2" || o.request.kind === "toastie-v2",
        );
        assert.equal(books.orders, v2Successes.length, "one order per v2 success, no more");
        assert.deepEqual(
          books.orderIds,
          new Set(v2Successes.map((o) => String(o.json.id ?? o.json.orderId))),
          "the orders are exactly the ones the v2 successes were told about",
        );
        assert.deepEqual(
          books.orderedItems,
          total(v2Successes.map((o) => o.request.takes)),
          "order items add up to what the v2 successes took",
        );
      }),
    );
  });
}

function isSuccess(o: Outcome): boolean {
  if (o.status !== 200) return false;
  switch (o.request.kind) {
    case "pick-v1":
      return o.text === "ok";
    case "pick-v2":
      return typeof o.json?.id === "string";
    default:
      return o.json?.status === "done";
  }
}

/** The only acceptable failure: short of cheese, as a problem naming it, nothing taken. */
function isOutOfStock(o: Outcome): boolean {
  const expected = o.request.kind === "pick-v1" ? 410 : 409;
  if (o.status !== expected || !o.headers["content-type"]?.startsWith("application/problem+json"))
    return false;
  const short = o.json?.short as { ingredient: string }[] | undefined;
  const onlyCheese = short?.length === 1 && short[0]?.ingredient === "cheese";
  // v1 toasties pick cheese first, so when it is short nothing has been taken yet.
  const takenNothing = o.json?.taken === undefined || o.json.taken.length === 0;
  return onlyCheese && takenNothing;
}
