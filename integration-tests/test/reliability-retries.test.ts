/**
 * Reliability 6 — retries are safe: jafflr's v2 pick is retried when chillybin's answer is lost
 * (connection dropped after the order committed) or too slow (jafflr gives up waiting), always
 * with the same Idempotency-Key — so the customer gets their toastie and the books show exactly
 * one order and one set of picks. A proxy between the two services loses the answers.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { actClient, arrangeClient, type Client } from "testkit/http-client";
import type { ServiceProcess } from "testkit/service-process";
import { Harness } from "../src/reliability/harness";
import { type Books, minus, readBooks, toastieTakes } from "../src/reliability/ledger";
import { type Exchange, type LossyProxy, startLossyProxy } from "../src/reliability/lossy-proxy";
import { needsOwnProcesses } from "../src/stall";

/** jafflr gives up on one attempt after this long (then retries). */
const ATTEMPT_TIMEOUT_MS = 2_000;
const GITAS_TOASTIE = { customer: "gita", ingredients: ["cheese", "vegemite"] };

describe(
  "retries are safe: a lost or late answer from chillybin never picks twice",
  needsOwnProcesses,
  () => {
    const h = new Harness();
    let chillybin: ServiceProcess;
    let proxy: LossyProxy;
    let jafflr: Client;
    let pool: pg.Pool;

    before(async () => {
      const db = await h.database();
      pool = h.pool(db.url);
      chillybin = await h.start("chillybin", { DATABASE_URL: db.url });
      proxy = await startLossyProxy(chillybin.url);
      h.defer("close the lossy proxy", () => proxy.close());
      const service = await h.start("jafflr", {
        CHILLYBIN_URL: proxy.url,
        CHILLYBIN_TIMEOUT_MS: String(ATTEMPT_TIMEOUT_MS),
        CHILLYBIN_RETRIES: "3",
        COOK_TIME_SCALE: "0",
        // The repo's flag file: gita is on v2 (and after the foxtrot's step 3, everyone is).
      });
      jafflr = actClient(service.url);
      await arrangeClient(chillybin.url).post("/restock", {
        json: { cheese: 20, vegemite: 20, bread: 40 },
      });
    });

    after(() => h.cleanup());

    /** Orders gita's toastie with `fault` on the first v2 pick; returns the reply, the v2 attempts and the books before. */
    async function toastieWithFault(fault: { drop?: boolean; delayMs?: number }) {
      const before = await readBooks(pool);
      const mark = proxy.exchanges.length;
      proxy.next("/v2/pick", fault);
      const reply = await jafflr.post("/toastie", { json: GITAS_TOASTIE });
      const attempts = proxy.exchanges.slice(mark).filter((e) => e.path === "/v2/pick");
      return { reply, attempts, before };
    }

    /** One more order, whose id the customer was told, and exactly one toastie's worth of stock gone. */
    async function assertPickedOnce(before: Books, orderId: string) {
      const after = await readBooks(pool);
      assert.equal(after.orders, before.orders + 1, "exactly one order was recorded");
      assert.ok(after.orderIds.has(orderId), `order ${orderId} exists`);
      assert.deepEqual(
        after.stock,
        minus(before.stock, toastieTakes(GITAS_TOASTIE.ingredients)),
        "one toastie's worth of stock was taken, once",
      );
    }

    function assertSameOrderEveryAttempt(attempts: Exchange[]) {
      const keys = new Set(attempts.map((a) => a.headers["idempotency-key"]));
      assert.equal(keys.size, 1, `one Idempotency-Key for every attempt: ${[...keys].join(", ")}`);
      assert.ok([...keys][0], "the attempts carry an Idempotency-Key");
      assert.equal(
        new Set(attempts.map((a) => a.body)).size,
        1,
        "every attempt sends the same order",
      );
    }

    test(
      "the answer is lost after chillybin committed: jafflr retries with the same key, the customer gets 200, one order",
      h.withLogs(async () => {
        const { reply, attempts, before } = await toastieWithFault({ drop: true });

        assert.equal(reply.status, 200, `${reply.status} ${reply.text}`);
        assert.equal(reply.body.pickedVia, "v2");
        assert.ok(attempts.length >= 2, `jafflr tried again (${attempts.length} attempt(s))`);
        const [lost, ...retries] = attempts as [Exchange, ...Exchange[]];
        assert.equal(lost.fate, "dropped");
        assert.equal(
          lost.status,
          200,
          `chillybin placed the order the first time: ${lost.responseBody}`,
        );
        const placed = JSON.parse(lost.responseBody);
        assertSameOrderEveryAttempt(attempts);
        const last = retries.at(-1) as Exchange;
        assert.equal(last.status, 200, last.responseBody);
        assert.equal(last.responseHeaders["idempotent-replayed"], "true", "the retry was a replay");
        assert.equal(JSON.parse(last.responseBody).id, placed.id, "the replay is the first order");
        assert.equal(String(reply.body.orderId), String(placed.id), "the customer got that order");
        await assertPickedOnce(before, String(placed.id));
      }),
    );

    test(
      "the answer comes too late: jafflr gives up on the attempt, retries with the same key, one order",
      h.withLogs(async () => {
        const { reply, attempts, before } = await toastieWithFault({
          delayMs: ATTEMPT_TIMEOUT_MS + 1_500,
        });

        assert.equal(reply.status, 200, `${reply.status} ${reply.text}`);
        assert.equal(reply.body.pickedVia, "v2");
        assert.ok(attempts.length >= 2, `jafflr tried again (${attempts.length} attempt(s))`);
        const [late] = attempts as [Exchange];
        assert.equal(late.fate, "delayed");
        assert.equal(late.status, 200, late.responseBody);
        const placed = JSON.parse(late.responseBody);
        assertSameOrderEveryAttempt(attempts);
        assert.equal(String(reply.body.orderId), String(placed.id), "the customer got that order");
        await assertPickedOnce(before, String(placed.id));
      }),
    );

    test(
      "the customer retries with their own Idempotency-Key: same order again, nothing picked twice; another order under that key is refused",
      h.withLogs(async () => {
        const before = await readBooks(pool);
        const key = randomUUID();
        const headers = { "Idempotency-Key": key };
        const first = await jafflr.post("/toastie", { json: GITAS_TOASTIE, headers });
        assert.equal(first.status, 200, `${first.status} ${first.text}`);
        const again = await jafflr.post("/toastie", { json: GITAS_TOASTIE, headers });
        assert.equal(again.status, 200, `${again.status} ${again.text}`);
        assert.equal(again.body.orderId, first.body.orderId, "the retry is the same order");
        await assertPickedOnce(before, String(first.body.orderId));

        const afterRetry = await readBooks(pool);
        const different = await jafflr.post("/toastie", {
          json: { customer: "gita", ingredients: ["cheese", "ham"] },
          headers,
        });
        assert.equal(different.status, 422, `${different.status} ${different.text}`);
        assert.match(different.contentType, /^application\/problem\+json/);
        assert.deepEqual(await readBooks(pool), afterRetry, "nothing taken for the refused order");
      }),
    );
  },
);
