/**
 * Reliability 4 — dependency faults, each healed without restarting the service that suffered:
 * - PostgreSQL stops (an embedded server this file starts on its own port and data directory,
 *   never the machine's shared one): chillybin answers 503 problems with Retry-After, `/ready`
 *   fails, the process stays up — and it serves again once Postgres is back on the same port.
 * - chillybin crashes (SIGKILL): jafflr answers 503 and stays ready (readiness must not
 *   cascade), and recovers by itself when a new chillybin comes up on the same port.
 * - Unleash is unreachable: jafflr still starts (bounded wait) and serves with the flag file's
 *   flags, without filling its log with errors.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type EmbeddedDb, startThrowawayDb } from "local-dev/embedded-db";
import type pg from "pg";
import { actClient, arrangeClient, type Client, type Reply } from "testkit/http-client";
import { freePort, type ServiceProcess } from "testkit/service-process";
import { Harness, waitFor } from "../src/reliability/harness";
import { minus, readBooks, toastieTakes } from "../src/reliability/ledger";
import { type Env, needsOwnProcesses } from "../src/stall";

describe("dependency faults", needsOwnProcesses, () => {
  const h = new Harness();
  let postgres: EmbeddedDb;
  let pool: pg.Pool;
  let chillybinEnv: Env;
  let chillybin: ServiceProcess;
  let jafflr: ServiceProcess;
  let flags: string;
  let cold: Client;
  let grill: Client;

  before(async () => {
    postgres = await startThrowawayDb();
    h.defer("destroy the embedded PostgreSQL", () => postgres.destroy());
    const db = await h.database(postgres.url);
    pool = h.pool(db.url);
    // Default timeouts: a stopped server refuses connections at once, so the 503s come quickly.
    chillybinEnv = { DATABASE_URL: db.url };
    chillybin = await h.start("chillybin", chillybinEnv);
    flags = await h.flagFile(["gita"]);
    jafflr = await h.start("jafflr", {
      CHILLYBIN_URL: chillybin.url,
      COOK_TIME_SCALE: "0",
      FLAGS_FILE: flags,
    });
    cold = actClient(chillybin.url);
    grill = actClient(jafflr.url);
    await arrangeClient(chillybin.url).post("/restock", {
      json: { cheese: 50, vegemite: 50, bread: 100 },
    });
  });

  after(() => h.cleanup());

  const gitasToastie = () =>
    grill.post("/toastie", { json: { customer: "gita", ingredients: ["cheese", "vegemite"] } });
  const gordonsToastie = () => grill.post("/toastie?i=cheese&i=vegemite&customer=gordon");

  test(
    "PostgreSQL stops: chillybin answers 503 + Retry-After and is not ready; it recovers by itself when Postgres is back",
    h.withLogs(async () => {
      const before = await readBooks(pool);
      const pid = chillybin.child.pid;
      await postgres.stop();
      try {
        const answers: [string, Reply][] = [
          ["GET /", await cold.get("/")],
          ["GET /pick", await cold.get("/pick?name=cheese&quantity=1")],
          [
            "POST /v2/pick",
            await cold.post("/v2/pick", {
              json: { customer: "gita", items: [{ ingredient: "cheese", quantity: 1 }] },
              headers: { "Idempotency-Key": "outage-1" },
            }),
          ],
          ["GET /orders", await cold.get("/orders")],
          ["POST /restock", await cold.post("/restock", { json: { cheese: 1 } })],
          // The whole chain: jafflr passes the cold store's trouble on as its own 503.
          ["jafflr v2 toastie", await gitasToastie()],
          ["jafflr v1 toastie", await gordonsToastie()],
        ];
        for (const [what, reply] of answers) assertUnavailable(what, reply);

        const ready = await cold.get("/ready");
        assert.equal(
          ready.status,
          503,
          `/ready while Postgres is down: ${ready.status} ${ready.text}`,
        );
        assert.match(ready.text, /database/, "/ready names the failing check");
        const health = await cold.get("/health");
        assert.equal(health.status, 200, "chillybin itself stays alive (liveness)");
      } finally {
        await postgres.start(); // same data directory, same port
      }

      await waitFor(async () => ((await cold.get("/ready")).status === 200 ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 100,
        message: () => "chillybin did not become ready again after Postgres came back",
      });
      assert.equal(chillybin.child.pid, pid, "the same process");
      assert.equal(chillybin.child.exitCode, null, "chillybin never exited");
      const during = await readBooks(pool);
      assert.deepEqual(during, before, "nothing changed while Postgres was down");

      const pick = await cold.get("/pick?name=cheese&quantity=1");
      assert.equal(pick.status, 200, `${pick.status} ${pick.text}`);
      const toastie = await gitasToastie();
      assert.equal(toastie.status, 200, `${toastie.status} ${toastie.text}`);
      assert.deepEqual(
        (await readBooks(pool)).stock,
        minus(before.stock, { cheese: 2, vegemite: 1, bread: 2 }),
      );
    }),
  );

  test(
    "chillybin crashes: jafflr answers 503 + Retry-After and stays ready, and recovers by itself when chillybin is back on its port",
    h.withLogs(async () => {
      const before = await readBooks(pool);
      const port = chillybin.port;
      chillybin.kill(); // SIGKILL: no graceful goodbye, jafflr's pooled connections just die
      await chillybin.exited;

      assertUnavailable("v2 toastie", await gitasToastie());
      assertUnavailable("v1 toastie", await gordonsToastie());
      const ready = await grill.get("/ready");
      assert.equal(
        ready.status,
        200,
        `jafflr /ready without chillybin: ${ready.status} ${ready.text}`,
      );
      assert.equal((await grill.get("/health")).status, 200, "jafflr itself stays alive");

      chillybin = await h.start("chillybin", { ...chillybinEnv, PORT: String(port) });
      await waitFor(
        async () => ((await grill.get("/")).body.chillybin.reachable ? true : undefined),
        {
          timeoutMs: 20_000,
          intervalMs: 100,
          message: () => "jafflr did not see chillybin back",
        },
      );
      assert.equal(jafflr.child.exitCode, null, "jafflr was not restarted");
      assert.deepEqual(
        await readBooks(pool),
        before,
        "nothing was picked while chillybin was down",
      );

      const v2 = await gitasToastie();
      assert.equal(v2.status, 200, `${v2.status} ${v2.text}`);
      assert.equal(v2.body.pickedVia, "v2");
      const v1 = await gordonsToastie(); // v1 until the foxtrot's step 3
      assert.equal(v1.status, 200, `${v1.status} ${v1.text}`);
      const takes = toastieTakes(["cheese", "vegemite"]);
      assert.deepEqual(
        (await readBooks(pool)).stock,
        minus(minus(before.stock, takes), takes),
        "two toasties' worth taken, once each",
      );
    }),
  );

  test(
    "Unleash unreachable: jafflr starts within its bounded wait and serves with the flag file's flags, quietly",
    h.withLogs(async () => {
      const nobody = await freePort();
      const unleashless = await h.start(
        "jafflr",
        {
          CHILLYBIN_URL: chillybin.url,
          COOK_TIME_SCALE: "0",
          FLAGS_FILE: flags,
          UNLEASH_URL: `http://127.0.0.1:${nobody}/api`,
          UNLEASH_API_TOKEN: "default:development.reliability-test",
          UNLEASH_REFRESH_MS: "200",
          FLAGS_WAIT_MS: "1000",
        },
        { timeoutMs: 20_000 }, // it must not wait for Unleash forever
      );
      const client = actClient(unleashless.url);

      const v2 = await client.post("/toastie", {
        json: { customer: "gita", ingredients: ["cheese"] },
      });
      assert.equal(v2.status, 200, `${v2.status} ${v2.text}`);
      assert.equal(v2.body.pickedVia, "v2", "gita is on pick.v2 in the flag file");
      // (gordon, off in the file, goes via v1: that is flags-file-pick-v1.test.ts's to check.)
      const v1 = await client.post("/toastie", {
        json: { customer: "gordon", ingredients: ["cheese"] },
      });
      assert.equal(v1.status, 200, `${v1.status} ${v1.text}`);

      // Several refresh intervals of failed polls later: still serving, and no error per poll.
      await new Promise((r) => setTimeout(r, 1_000));
      const again = await client.post("/toastie", {
        json: { customer: "gita", ingredients: ["cheese"] },
      });
      assert.equal(again.body?.pickedVia, "v2", `${again.status} ${again.text}`);
      const logs = unleashless.logs();
      const fallbackNotes = logs.match(/did not answer in time/g) ?? [];
      assert.equal(fallbackNotes.length, 1, "the fallback to the flag file is logged once");
      const pollErrors = logs.split("\n").filter((l) => /flag source error/.test(l));
      assert.ok(pollErrors.length <= 1, `failed polls are rate-limited:\n${pollErrors.join("\n")}`);
      assert.doesNotMatch(logs, /\n\s+at .+\(.+:\d+:\d+\)/, "no stack traces in the log");
    }),
  );
});

/** 503 problem+json with a Retry-After in seconds, and no stack trace. */
function assertUnavailable(what: string, reply: Reply) {
  assert.equal(reply.status, 503, `${what}: ${reply.status} ${reply.error ?? reply.text}`);
  assert.match(reply.contentType, /^application\/problem\+json/, `${what}: ${reply.contentType}`);
  assert.equal(reply.body.status, 503, `${what}: ${reply.text}`);
  const retryAfter = reply.headers.get("retry-after");
  assert.match(
    retryAfter ?? "",
    /^\d+$/,
    `${what}: Retry-After is a number of seconds, got ${retryAfter}`,
  );
  assert.doesNotMatch(reply.text, /\n\s+at /, `${what}: no stack trace in the answer`);
}
