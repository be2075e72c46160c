/**
 * Reliability 5 — bad input gets a clear error and changes nothing: a corpus of malformed
 * requests for every endpoint of both services (headers, bodies, query strings, methods,
 * encodings, sizes), then seeded random invalid requests (fast-check). Each must be a 4xx
 * `application/problem+json` answer — never a 5xx, never a stack trace — and leave the stock
 * (GET /) and the orders (SQL) exactly as they were.
 *
 * What is sent is the test file's: every endpoint but v1's in reliability-bad-input.test.ts,
 * chillybin's v1 `GET /pick` in its *pick-v1* sibling.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import type pg from "pg";
import { arrangeClient } from "testkit/http-client";
import type { ServiceProcess } from "testkit/service-process";
import { needsOwnProcesses } from "../stall";
import type { GeneratedRequest } from "./bad-input-arbitraries";
import { ADMIN_TOKEN, type BadInput, type Service } from "./bad-inputs";
import { Harness } from "./harness";
import { type RawReply, send, sendRaw } from "./raw-http";

/** Fixed, so a failure found once is found again; bump it deliberately to explore further. */
const SEED = 20251125;
const RUNS_PER_ENDPOINT = 40;

export interface BadInputs {
  corpus: BadInput[];
  /** The corpus must have at least this many requests and reach each of these endpoints. */
  minimum: number;
  endpoints: string[];
  /** Requests node's HTTP parser rejects before the application. */
  protocolErrors?: BadInput[];
  /** fast-check generators of invalid requests, by endpoint. */
  invalidRequests: Record<string, fc.Arbitrary<GeneratedRequest>>;
}

export function describeBadInput(title: string, inputs: BadInputs) {
  describe(title, needsOwnProcesses, () => {
    const h = new Harness();
    const urls = {} as Record<Service, string>;
    let chillybin: ServiceProcess;
    let pool: pg.Pool;

    before(async () => {
      const db = await h.database();
      pool = h.pool(db.url);
      chillybin = await h.start("chillybin", {
        DATABASE_URL: db.url,
        CHILLYBIN_ADMIN_TOKEN: ADMIN_TOKEN,
      });
      const jafflr = await h.start("jafflr", {
        CHILLYBIN_URL: chillybin.url,
        COOK_TIME_SCALE: "0",
        // The repo's flag file: gita (V2_CUSTOMER) on v2, and after the foxtrot's step 3 everyone.
      });
      urls.chillybin = chillybin.url;
      urls.jafflr = jafflr.url;
      const admin = arrangeClient(chillybin.url, { Authorization: `Bearer ${ADMIN_TOKEN}` });
      // Stock on every shelf, so a request that wrongly got through would show in the snapshot;
      // and one order on the books, so "orders unchanged" compares something.
      await admin.post("/restock", {
        json: {
          bread: 50,
          cheese: 50,
          ham: 50,
          pineapple: 50,
          sheese: 50,
          tomato: 50,
          vegemite: 50,
        },
      });
      await admin.post("/v2/pick", {
        json: { customer: "gita", items: [{ ingredient: "cheese", quantity: 1 }] },
      });
    });

    after(() => h.cleanup());

    /** What must not change: the stock as the API shows it, and the orders as the database holds them. */
    async function snapshot() {
      const stock = await send(chillybin.url, { path: "/" });
      assert.equal(stock.status, 200, `GET / for the snapshot: ${stock.status} ${stock.text}`);
      const { rows } = await pool.query<{ orders: number; items: number }>(
        "SELECT (SELECT count(*)::int FROM orders) AS orders, (SELECT count(*)::int FROM order_items) AS items",
      );
      return { stock: stock.json, ...rows[0] };
    }

    const sendCase = (c: BadInput): Promise<RawReply> =>
      c.raw
        ? sendRaw(urls[c.service], c.raw, 10_000)
        : send(urls[c.service], {
            ...(c.request as NonNullable<BadInput["request"]>),
            timeoutMs: 10_000,
          });

    test(`the corpus has at least ${inputs.minimum} requests and reaches ${inputs.endpoints.join(", ")}`, () => {
      assert.ok(inputs.corpus.length >= inputs.minimum, `${inputs.corpus.length} requests`);
      const reached = new Set(
        inputs.corpus.map((c) => {
          const line = c.raw
            ? (c.raw.toString("latin1").split("\r\n")[0] ?? "")
            : `x ${c.request?.path}`;
          const path = (line.split(" ")[1] ?? "").split("?")[0] as string;
          return `${c.service} ${path.replace(/^\/orders\/.+/, "/orders/:id")}`;
        }),
      );
      for (const endpoint of inputs.endpoints) {
        assert.ok(reached.has(endpoint), `the corpus reaches ${endpoint}`);
      }
    });

    describe("the corpus", () => {
      for (const c of inputs.corpus) {
        const expected = [c.expect].flat();
        test(
          `${c.service}: ${c.name} → ${expected.join("/")}`,
          h.withLogs(async () => {
            const before = await snapshot();
            const reply = await sendCase(c);
            assertProblem(reply, expected, c.request?.method === "HEAD");
            assert.deepEqual(await snapshot(), before, "stock and orders unchanged");
          }),
        );
      }
    });

    const protocolErrors = inputs.protocolErrors ?? [];
    if (protocolErrors.length > 0)
      describe("requests node's HTTP parser rejects before the application", () => {
        for (const c of protocolErrors) {
          test(
            `${c.name} → ${c.expect}`,
            h.withLogs(async () => {
              const before = await snapshot();
              const reply = await sendCase(c);
              assert.equal(reply.status, c.expect, `${reply.status || reply.error} ${reply.text}`);
              assert.doesNotMatch(reply.text, /\n\s+at /, "no stack trace");
              assert.deepEqual(await snapshot(), before, "stock and orders unchanged");
            }),
          );
        }
      });

    describe(`random invalid requests (fast-check, seed ${SEED}, ${RUNS_PER_ENDPOINT} per endpoint)`, () => {
      for (const [endpoint, arbitrary] of Object.entries(inputs.invalidRequests)) {
        test(
          endpoint,
          h.withLogs(async () => {
            await fc.assert(
              fc.asyncProperty(arbitrary, async ({ service, request }) => {
                const before = await snapshot();
                const reply = await send(urls[service], { ...request, timeoutMs: 10_000 });
                assertProblem(reply, undefined, false);
                assert.deepEqual(await snapshot(), before, "stock and orders unchanged");
              }),
              { seed: SEED, numRuns: RUNS_PER_ENDPOINT },
            );
          }),
        );
      }
    });
  });
}

/**
 * A 4xx RFC 9457 problem: the expected status (any 4xx when undefined), problem+json with
 * matching `status` and a `title`, no stack trace; 405 names what is allowed, 401 the scheme.
 */
function assertProblem(reply: RawReply, expected: number[] | undefined, head: boolean) {
  const got = `${reply.status || `no answer (${reply.error})`} ${reply.headers["content-type"] ?? ""} ${reply.text.slice(0, 500)}`;
  assert.ok(reply.status >= 400 && reply.status < 500, `a 4xx, never a 5xx: got ${got}`);
  if (expected)
    assert.ok(expected.includes(reply.status), `expected ${expected.join(" or ")}, got ${got}`);
  assert.match(
    reply.headers["content-type"] ?? "",
    /^application\/problem\+json/,
    `problem+json: ${got}`,
  );
  if (!head) {
    assert.equal(reply.json?.status, reply.status, `the problem's status member: ${got}`);
    assert.equal(typeof reply.json?.title, "string", `the problem has a title: ${got}`);
  }
  assert.doesNotMatch(reply.text, /\n\s+at |node_modules|\.[jt]s:\d+/, `no stack trace: ${got}`);
  if (reply.status === 405) assert.ok(reply.headers.allow, `405 says what is allowed: ${got}`);
  if (reply.status === 401) assert.match(reply.headers["www-authenticate"] ?? "", /^Bearer/, got);
}
