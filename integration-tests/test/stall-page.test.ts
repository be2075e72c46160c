/**
 * The stall page's server side between real processes, without a browser: jafflr's
 * GET /stall/events carries chillybin's stock and picks (from chillybin's GET /events, watched
 * once per jafflr, counted by a TCP proxy in front of chillybin), survives a dropped upstream
 * connection, and ends cleanly when jafflr drains on SIGTERM. The page itself is tested in
 * integration-tests/browser/ (real Chromium, its own npm script).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pickV2FlagFile } from "testkit/flags";
import { actClient, arrangeClient } from "testkit/http-client";
import { type ServiceProcess, startService } from "testkit/service-process";
import { TcpProxy } from "testkit/tcp-proxy";
import { createTestDatabase, type TestDatabase } from "testkit/test-db";
import type { Snapshot } from "../../jafflr/src/page/hub";
import type { MeterPoint } from "../../jafflr/src/page/meter";
import type { Stock } from "../../jafflr/src/page/upstream";
import { openStallStream } from "../../jafflr/test/stall-stream";
import { eventually, needsOwnProcesses, serviceEnv } from "../src/stall";

const EVENTS = "GET /events";

describe("the stall page's event stream, jafflr beside a real chillybin", needsOwnProcesses, () => {
  let db: TestDatabase;
  let chillybin: ServiceProcess;
  // In front of chillybin: counts and cuts jafflr's GET /events connections.
  let relay: TcpProxy;
  let jafflr: ServiceProcess;
  let dir: string;

  before(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), "stall-page-"));
    const flagsFile = path.join(dir, "features.json");
    await writeFile(flagsFile, JSON.stringify(pickV2FlagFile(["gita"])));
    chillybin = await startService("chillybin", serviceEnv({ DATABASE_URL: db.url }));
    const target = new URL(chillybin.url);
    relay = new TcpProxy({ host: target.hostname, port: Number(target.port) });
    await relay.open();
    jafflr = await startService(
      "jafflr",
      serviceEnv({
        CHILLYBIN_URL: relay.url,
        FLAGS_FILE: flagsFile,
        COOK_TIME_SCALE: "0",
        // A stream that held up the drain would hit this deadline and make jafflr exit 1.
        SHUTDOWN_TIMEOUT_MS: "10000",
      }),
    );
  });

  after(async () => {
    await jafflr?.stop();
    await relay?.close();
    await chillybin?.stop();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cold = () => arrangeClient(chillybin.url);
  const metric = async (name: string) => {
    const text = (await arrangeClient(jafflr.url).get("/metrics")).text;
    const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return Number(line?.split(" ").at(-1));
  };

  it("a page sees chillybin's stock, then a restock made straight at chillybin", async () => {
    await cold().post("/restock");
    const page = await openStallStream(jafflr.url);
    try {
      await page.nextEvent<Snapshot>("snapshot");
      const first = await page.nextEvent<Stock>("stock");
      assert.equal(first.cheese, 10, JSON.stringify(first));
      await cold().post("/restock", { json: { cheese: 3 } });
      const after = await page.next((m) => m.event === "stock" && JSON.parse(m.data).cheese === 3);
      assert.equal(JSON.parse(after.data).cheese, 3);
    } finally {
      page.close();
    }
  });

  it("several pages share one upstream stream; with no page open there is none", async () => {
    const pages = await Promise.all([1, 2, 3].map(() => openStallStream(jafflr.url)));
    try {
      // The first page's snapshot comes before the watch has heard chillybin; a page that
      // connects after that gets the stock in its snapshot instead of as a stock event.
      for (const page of pages) {
        await page.next(
          (m) => m.event === "stock" || (m.event === "snapshot" && JSON.parse(m.data).stock),
        );
      }
      assert.equal(relay.connections(EVENTS), 1, "one GET /events to chillybin for three pages");
      assert.equal(await metric("stall_chillybin_watching"), 1);
    } finally {
      for (const page of pages) page.close();
    }
    await eventually(() => (relay.connections(EVENTS) === 0 ? true : undefined), {
      timeoutMs: 10_000,
      message: () => `${relay.connections(EVENTS)} event streams still open to chillybin`,
    });
    assert.equal(await metric("stall_chillybin_watching"), 0);
  });

  // v2 only: this file outlives foxtrot step 3 (v1's picks are on the page's meter in the
  // browser suite, and v1 itself in the *pick-v1* suites).
  it("every pick reaches the meter, by dialect: one v2 pick for gita's toastie", async () => {
    await cold().post("/restock");
    const page = await openStallStream(jafflr.url);
    try {
      await page.nextEvent("stock");
      const act = actClient(jafflr.url);
      const gita = await act.post("/toastie", {
        json: { customer: "gita", ingredients: ["cheese"] },
      });
      assert.equal(gita.status, 200, gita.text);
      const seen = { v1: 0, v2: 0 };
      await page.next((m) => {
        if (m.event !== "meter") return false;
        const p = JSON.parse(m.data) as MeterPoint;
        seen.v1 += p.v1;
        seen.v2 += p.v2;
        return seen.v2 > 0;
      });
      assert.deepEqual(seen, { v1: 0, v2: 1 });
    } finally {
      page.close();
    }
  });

  it("a dropped upstream connection: the page hears so, then jafflr reconnects and the stock flows again", async () => {
    const page = await openStallStream(jafflr.url);
    try {
      await page.nextEvent("stock");
      const before = relay.connections(EVENTS, "seen");
      relay.cut(EVENTS);
      const lost = await page.nextEvent<{ connected: boolean }>("cold");
      assert.equal(lost.connected, false);
      const back = await page.nextEvent<{ connected: boolean }>("cold", 15_000);
      assert.equal(back.connected, true);
      await page.nextEvent("stock");
      assert.equal(relay.connections(EVENTS, "seen"), before + 1);
      await cold().post("/restock", { json: { ham: 4 } });
      await page.next((m) => m.event === "stock" && JSON.parse(m.data).ham === 4);
    } finally {
      page.close();
    }
  });

  it("SIGTERM ends every page's stream and does not hold up jafflr's drain", async () => {
    const pages = await Promise.all([1, 2].map(() => openStallStream(jafflr.url)));
    for (const page of pages) await page.nextEvent("snapshot");
    const exit = await jafflr.stop("SIGTERM", 20_000);
    await Promise.all(pages.map((p) => p.ended));
    assert.equal(exit.code, 0, `jafflr exited ${JSON.stringify(exit)}:\n${jafflr.logs()}`);
    assert.match(jafflr.logs(), /shutdown complete/);
  });
});
