import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { actClient } from "testkit/http-client";
import { freePorts } from "testkit/net";
import { REPO_ROOT } from "testkit/service-process";

/**
 * `npm start` as a newcomer runs it, minus the build: the stall script on a fresh embedded
 * PostgreSQL (no DATABASE_URL), both services up, then Ctrl-C stops everything cleanly.
 */
describe("npm start (scripts/dev/stall.ts) on the embedded PostgreSQL", () => {
  const dir = mkdtempSync(join(tmpdir(), "stall-test-"));
  chmodSync(dir, 0o755); // PostgreSQL runs as the postgres user, who must reach the data folder
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("serves both /health endpoints, then shuts down on SIGINT with exit code 0", async () => {
    const [pgPort, chillybinPort, jafflrPort] = await freePorts(3);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      EMBEDDED_PG_PORT: String(pgPort),
      EMBEDDED_PG_DATA: join(dir, "pg"),
      CHILLYBIN_PORT: String(chillybinPort),
      JAFFLR_PORT: String(jafflrPort),
    };
    delete env.DATABASE_URL;
    const child = spawn(join(REPO_ROOT, "node_modules", ".bin", "tsx"), ["scripts/dev/stall.ts"], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c) => {
      output += c;
    });
    child.stderr.on("data", (c) => {
      output += c;
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      const chillybin = actClient(`http://127.0.0.1:${chillybinPort}`);
      const jafflr = actClient(`http://127.0.0.1:${jafflrPort}`);
      let statuses: number[] = [];
      for (let i = 0; i < 600 && child.exitCode === null; i++) {
        statuses = [(await chillybin.get("/health")).status, (await jafflr.get("/health")).status];
        if (statuses.every((s) => s === 200)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(statuses, [200, 200], `both services answer /health\n${output}`);
      const stock = await chillybin.get("/");
      assert.equal((stock.body as Record<string, number>).cheese, 10, "migrated and seeded");
    } finally {
      child.kill("SIGINT");
    }
    assert.equal(await exited, 0, output);
    assert.match(output, /stopped/);
    const gone = await actClient(`http://127.0.0.1:${jafflrPort}`).get("/health");
    assert.equal(gone.status, 0, "nothing is left listening");
  });
});
