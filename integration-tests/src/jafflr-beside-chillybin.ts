/**
 * jafflr and chillybin as real processes, with the lossy proxy between them so a test can see
 * what jafflr sent and lose an answer on the way back; jafflr's flags from a file the test may
 * rewrite. Shared by jafflr-chillybin.test.ts and its v1 twin, jafflr-chillybin-pick-v1.test.ts.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pickV2FlagFile } from "testkit/flags";
import { actClient, arrangeClient } from "testkit/http-client";
import { type ServiceProcess, startService } from "testkit/service-process";
import { createTestDatabase } from "testkit/test-db";
import { type LossyProxy, startLossyProxy } from "./reliability/lossy-proxy";
import { serviceEnv } from "./stall";

export type Stock = Record<string, number>;

export interface JafflrBesideChillybin {
  chillybin: ServiceProcess;
  jafflr: ServiceProcess;
  proxy: LossyProxy;
  /** The request under test, to jafflr. */
  act: ReturnType<typeof actClient>;
  /** Setting the scene, straight at chillybin. */
  arrange: {
    restock(levels: Stock): Promise<void>;
    stock(): Promise<Stock>;
    orders(
      customer: string,
    ): Promise<{ id: string; items: { ingredient: string; quantity: number }[] }[]>;
  };
  /** Rewrites jafflr's flag file: pick.v2 on for exactly these customers. */
  setV2For(customers: string[]): Promise<void>;
  /** What jafflr sent to chillybin since the last call, as "METHOD /path", /health checks left out. */
  sent(): string[];
  stop(): Promise<void>;
}

export async function startJafflrBesideChillybin(): Promise<JafflrBesideChillybin> {
  const db = await createTestDatabase();
  const dir = await mkdtemp(path.join(tmpdir(), "jafflr-flags-"));
  const flagsFile = path.join(dir, "features.json");
  const setV2For = (customers: string[]) =>
    writeFile(flagsFile, JSON.stringify(pickV2FlagFile(customers)));
  await setV2For(["gita"]);
  const chillybin = await startService("chillybin", serviceEnv({ DATABASE_URL: db.url }));
  const proxy = await startLossyProxy(chillybin.url);
  const jafflr = await startService(
    "jafflr",
    serviceEnv({
      CHILLYBIN_URL: proxy.url,
      FLAGS_FILE: flagsFile,
      FLAGS_POLL_MS: "20",
      COOK_TIME_SCALE: "0",
      CHILLYBIN_RETRIES: "2",
    }),
  );
  const cold = arrangeClient(chillybin.url);
  let seen = 0;
  return {
    chillybin,
    jafflr,
    proxy,
    act: actClient(jafflr.url),
    arrange: {
      async restock(levels) {
        await cold.post("/restock", { json: levels });
      },
      async stock() {
        return (await cold.get("/")).body as Stock;
      },
      async orders(customer) {
        return (await cold.get(`/orders?customer=${encodeURIComponent(customer)}`)).body.orders;
      },
    },
    setV2For,
    sent() {
      const fresh = proxy.exchanges.slice(seen);
      seen = proxy.exchanges.length;
      return fresh.filter((e) => e.path !== "/health").map((e) => `${e.method} ${e.path}`);
    },
    async stop() {
      await jafflr.stop();
      await proxy.close();
      await chillybin.stop();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
