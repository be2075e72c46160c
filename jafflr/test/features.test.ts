/**
 * The flag client, with a flag of the tests' own (jafflr's own list, src/flags.ts, empties at the
 * foxtrot's step 3).
 */
import assert from "node:assert/strict";
import { renameSync, writeFileSync } from "node:fs";
import net from "node:net";
import { after, describe, it } from "node:test";
import { DEFAULT_FLAGS_FILE } from "../src/config";
import { startFeatures } from "../src/features";
import { FLAGS } from "../src/flags";
import {
  closedPort,
  eventually,
  flagConfig,
  flagFileFor,
  memoryLogger,
  tempFlagFile,
} from "./helpers";

const FLAG = "test.flag";
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function flagFile(customers = ["gita"]) {
  const temp = tempFlagFile(customers, FLAG);
  cleanups.push(temp.remove);
  return temp.file;
}

async function start(flagsFile: string, url?: string) {
  const log = memoryLogger();
  const features = await startFeatures([FLAG], flagConfig(flagsFile, url), log.logger);
  cleanups.push(() => features.close());
  const said = (msg: RegExp) => log.lines().filter((l) => msg.test(String(l.msg)));
  return { features, said };
}

describe("flags from the file", () => {
  it("evaluates per customer and follows edits without a restart; a bad edit keeps the last good flags", async () => {
    const file = flagFile(["gita"]);
    const { features, said } = await start(file);
    assert.deepEqual(
      ["gita", "gordon"].map((c) => features.isEnabled(FLAG, c)),
      [true, false],
    );
    writeFileSync(file, flagFileFor(FLAG, ["gita", "gordon"]));
    await eventually(() => features.isEnabled(FLAG, "gordon"), "on for gordon", 1000);
    writeFileSync(file, '{"features": [');
    await eventually(() => said(/flag file unreadable/).length === 1, "the bad edit is logged");
    assert.equal(features.isEnabled(FLAG, "gordon"), true);
    // An atomic replace (write + rename), as editors and config tools do.
    writeFileSync(`${file}.new`, flagFileFor(FLAG, ["gita"]));
    renameSync(`${file}.new`, file);
    await eventually(() => !features.isEnabled(FLAG, "gordon"), "off for gordon again", 1000);
    assert.equal(said(/flag file unreadable/).length, 1, "once per bad edit");
    // A customer's first answer and each change are logged, not every question.
    const told = said(/^flag test\.flag is/).map((l) => l.msg);
    const gordon = ["off", "now on", "now off"].map(
      (on) => `flag ${FLAG} is ${on} for customer "gordon"`,
    );
    assert.deepEqual(told, [`flag ${FLAG} is on for customer "gita"`, ...gordon]);
  });

  it("fails start-up on a missing or malformed file instead of running with no flags", async () => {
    await assert.rejects(
      start("/nonexistent/features.json"),
      /flag file \/nonexistent\S* cannot be read/,
    );
    const file = flagFile();
    writeFileSync(file, `{"features": [{"name": "${FLAG}"}]}`);
    await assert.rejects(start(file), /not in Unleash client-features format/);
  });

  it("warns at start about a declared flag the source lacks; jafflr's flags are all in its flag file", async () => {
    const { said } = await start(tempFlagFile(["gita"], "other.flag").file);
    assert.deepEqual(said(/not defined in the flag source/)[0]?.missing, [FLAG]);
    const repo = memoryLogger();
    const jafflr = await startFeatures(FLAGS, flagConfig(DEFAULT_FLAGS_FILE), repo.logger);
    await jafflr.close();
    assert.ok(!repo.lines().some((l) => /not defined/.test(String(l.msg))));
  });
});

describe("flags from an Unleash server", () => {
  it("starts within the bounded wait on the file's flags when Unleash is down; poll errors rate-limited", async () => {
    const url = `http://127.0.0.1:${await closedPort()}/api`;
    const { features, said } = await start(flagFile(["gita"]), url);
    assert.deepEqual(
      ["gita", "gordon"].map((c) => features.isEnabled(FLAG, c)),
      [true, false],
    );
    assert.equal(said(/did not answer in time/).length, 1);
    // The client's own retries take ~3 s before a poll counts as failed; then one line a minute.
    await eventually(() => said(/flag source error/).length > 0, "the failed poll is logged");
    assert.match(String(said(/flag source error/)[0]?.err), /ECONNREFUSED/);
    assert.equal(said(/flag source error/).length, 1);
  });

  it("survives close() while a poll is in flight (destroy() mid-poll would crash the process)", async () => {
    // The first poll (awaited by start-up) gets a 404; the next is held open until after close().
    const NOT_FOUND = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const held: net.Socket[] = [];
    let polls = 0;
    const broken = net.createServer((s) => {
      s.on("error", () => {});
      s.once("data", (head) => {
        if (!/^GET \S*\/client\/features/.test(String(head))) return s.end(NOT_FOUND); // metrics
        if (++polls === 1 || held.length > 0)
          s.end(held.length > 0 ? "garbage\r\n\r\n" : NOT_FOUND);
        else held.push(s);
      });
    });
    await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => broken.close(resolve)));
    const url = `http://127.0.0.1:${(broken.address() as net.AddressInfo).port}/api`;
    const { features } = await start(flagFile(), url);
    await eventually(() => held.length === 1, "a timer-driven poll is on the wire");
    await features.close();
    for (const s of held) s.end("garbage\r\n\r\n"); // it fails after close: retried, then reported
    await eventually(() => polls >= 4, "the client retried and gave up");
    await features.close(); // twice is fine
  });
});
