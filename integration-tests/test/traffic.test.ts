/**
 * `npm run traffic` against a real stall: it stops after its toasties or minutes, or on Ctrl-C,
 * restocks as it goes, and its tally is what jafflr counted (true before foxtrot step 3 and after).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "testkit/service-process";
import { needsOwnProcesses, type Stall, startStall } from "../src/stall";

const TALLY =
  /^traffic: ordered (\d+), done (\d+) \(via v1 (\d+), via v2 (\d+)\), failed (\d+), restocked (\d+)×/gm;

describe("npm run traffic", needsOwnProcesses, () => {
  let s: Stall;
  before(async () => {
    s = await startStall();
  });
  after(() => s?.stop());

  /** traffic.ts with `args`, Ctrl-C'd once `interrupt` says so: its exit code, output and tallies. */
  async function traffic(args: string[], interrupt = (_output: string) => false) {
    const ports = { JAFFLR_PORT: String(s.jafflr.port), CHILLYBIN_PORT: String(s.chillybin.port) };
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/dev/traffic.ts", ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...ports },
    });
    after(() => child.exitCode ?? child.kill("SIGKILL"));
    let [output, interrupted] = ["", false];
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (chunk) => {
        output += chunk;
        if (!interrupted && interrupt(output)) interrupted = child.kill("SIGINT"); // once: twice kills
      });
    }
    // "close", not "exit": by then its output is all read.
    const [code] = await once(child, "close", { signal: AbortSignal.timeout(60_000) }).catch(() => {
      throw new Error(`traffic did not stop:\n${output}`);
    });
    const tallies = [...output.matchAll(TALLY)].map((m) => m.slice(1).map(Number));
    const [ordered, done, v1, v2, failed, restocks] = tallies.at(-1) ?? [];
    const last = { ordered, done, v1, v2, failed, restocks };
    return { code, output, tallies, last, stopped: /; stopped\n$/.test(output) };
  }

  /** jafflr's own count of toasties served, by how they were picked. */
  const served = async () => {
    const text = (await s.grill.get("/metrics")).text;
    const lines = text.matchAll(/^toasties_total\{[^}]*picked_via="(v\d)"[^}]*\} (\d+)/gm);
    return {
      v1: 0,
      v2: 0,
      ...Object.fromEntries([...lines].map(([, via, n]) => [via, Number(n)])),
    };
  };

  test("stops after its toasties, restocking as it goes; its tally is what jafflr served", async () => {
    const was = await served();
    const run = await traffic(["--rate", "50", "--toasties", "14", "--every", "0.1"]);
    assert.deepEqual([run.code, run.stopped, run.tallies.length >= 2], [0, true, true], run.output);
    const { ordered, done, v1 = 0, v2 = 0, failed, restocks = 0 } = run.last;
    assert.deepEqual([ordered, done, v1 + v2, failed], [14, 14, 14, 0], run.output);
    assert.ok(v2 >= 3, "gita's three toasties at least went through v2");
    assert.ok(restocks >= 1, "28 slices of bread from a store of 10: restocked");
    const now = await served();
    assert.deepEqual({ v1: now.v1 - was.v1, v2: now.v2 - was.v2 }, { v1, v2 });
  });

  test("stops after its minutes, and on Ctrl-C once its orders in flight are answered", async () => {
    const timed = await traffic(["--rate", "20", "--minutes", "0.01"]);
    const ctrlC = await traffic(["--rate", "20", "--every", "0.1"], (out) =>
      out.includes("traffic: ordered"),
    );
    for (const { code, stopped, last, output } of [timed, ctrlC]) {
      assert.deepEqual([code, stopped, last.done, last.failed], [0, true, last.ordered, 0], output);
      assert.ok((last.ordered ?? 0) > 0, output);
    }
  });
});
