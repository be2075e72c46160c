import assert from "node:assert/strict";
import { renameSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import net from "node:net";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Features, rateLimitedErrorLog, startFeatures } from "../src/features";
import { closedPort, eventually, flagFileFor, memoryLogger, tempFlagFile } from "./helpers";

/**
 * The flag client with a flag of the tests' own, not one jafflr declares (src/flags.ts): these
 * tests hold whichever flags the product has, none after the foxtrot's step 3.
 */
const FLAG = "test.flag";
const TEST_FLAGS = [FLAG] as const;
/** The start-up warning for a declared flag the source lacks (test/flags.test.ts: jafflr never logs it). */
const MISSING = /not defined in the flag source/;

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A private flag file with the test flag on for exactly these customers. */
function testFlagFile(customers: string[] = ["gita"]): string {
  const temp = tempFlagFile(customers, FLAG);
  cleanups.push(temp.remove);
  return temp.file;
}

async function fileFeatures(file: string) {
  const log = memoryLogger();
  const features = await startFeatures({
    flags: TEST_FLAGS,
    logger: log.logger,
    flagsFile: file,
    appName: "jafflr-test",
    waitMs: 1000,
    filePollMs: 20,
  });
  cleanups.push(() => features.close());
  return { features, ...log };
}

describe("declared flags", () => {
  it("an undeclared flag is a type error, and off (logged once) if forced through", async () => {
    const { features, lines } = await fileFeatures(testFlagFile());
    assert.equal(features.isEnabled(FLAG, "gita"), true, "the declared flag is evaluated");
    // @ts-expect-error: "test.other" is not declared — typecheck fails if this ever compiles.
    assert.equal(features.isEnabled("test.other", "gita"), false);
    // @ts-expect-error: same again, to check the log line is not repeated.
    features.isEnabled("test.other", "gita");
    const logged = lines().filter((l) => l.flag === "test.other");
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.level, "error");
  });

  it("with no flags declared (jafflr after the foxtrot), no name compiles, not even one in the file", async () => {
    const { logger, lines } = memoryLogger();
    const features = await startFeatures({
      flags: [],
      logger,
      flagsFile: testFlagFile(),
      appName: "jafflr-test",
      waitMs: 1000,
    });
    cleanups.push(() => features.close());
    // @ts-expect-error: with no flags declared, isEnabled takes no name at all.
    assert.equal(features.isEnabled(FLAG, "gita"), false);
    assert.deepEqual(
      lines()
        .filter((l) => l.flag !== undefined)
        .map((l) => [l.level, l.flag]),
      [["error", FLAG]],
      "treated as undeclared: off, and logged",
    );
    assert.ok(!lines().some((l) => MISSING.test(String(l.msg))), "nothing declared is missing");
  });

  it("warns once at start about a declared flag the flag source does not define", async () => {
    const { logger, lines } = memoryLogger();
    const features = await startFeatures({
      flags: [FLAG, "test.undefined"],
      logger,
      flagsFile: testFlagFile(),
      appName: "jafflr-test",
      waitMs: 1000,
    });
    cleanups.push(() => features.close());
    const warned = lines().filter((l) => MISSING.test(String(l.msg)));
    assert.deepEqual(
      warned.map((l) => [l.level, l.missing]),
      [["warn", ["test.undefined"]]],
    );
    assert.equal(features.isEnabled("test.undefined", "gita"), false, "it is off");
    // @ts-expect-error: a literal list is taken as its names (startFeatures' `const`), not `string`.
    features.isEnabled("test.other", "gita");
  });
});

describe("flags from the file (no Unleash server)", () => {
  it("evaluates the file's strategy per customer: the flag on for gita only", async () => {
    const { features, lines } = await fileFeatures(testFlagFile(["gita"]));
    assert.equal(features.source, "file");
    assert.equal(features.isEnabled(FLAG, "gita"), true);
    assert.equal(features.isEnabled(FLAG, "gordon"), false);
    assert.equal(features.isEnabled(FLAG, "anonymous"), false);
    assert.ok(!lines().some((l) => MISSING.test(String(l.msg))), "the declared flag is defined");
  });

  it("follows an edit of the file without a restart, and keeps the last good flags on a bad edit", async () => {
    const file = testFlagFile();
    const { features, lines } = await fileFeatures(file);
    assert.equal(features.isEnabled(FLAG, "gordon"), false);

    writeFileSync(file, flagFileFor(FLAG, ["gita", "gordon"]));
    await eventually(() => features.isEnabled(FLAG, "gordon"), "the flag is on for gordon");
    assert.equal(features.isEnabled(FLAG, "gita"), true);

    // An operator's half-written edit: flags stay as they were, one error line per distinct problem.
    writeFileSync(file, '{"features": [');
    await eventually(
      () => lines().some((l) => /flag file unreadable/.test(String(l.msg))),
      "the bad edit is seen",
    );
    assert.equal(features.isEnabled(FLAG, "gordon"), true);

    // An atomic replace (write + rename), as editors and config tools do.
    writeFileSync(`${file}.new`, flagFileFor(FLAG, ["gita"]));
    renameSync(`${file}.new`, file);
    await eventually(() => !features.isEnabled(FLAG, "gordon"), "the flag off for gordon again");
    assert.equal(lines().filter((l) => /flag file unreadable/.test(String(l.msg))).length, 1);
  });

  it("fails start-up on a missing or malformed file instead of running with no flags", async () => {
    const { logger } = memoryLogger();
    const start = (flagsFile: string) =>
      startFeatures({ flags: TEST_FLAGS, logger, flagsFile, appName: "t", waitMs: 10 });
    await assert.rejects(
      start("/nonexistent/features.json"),
      /flag file \/nonexistent\/features.json does not exist/,
    );
    const file = testFlagFile();
    writeFileSync(file, `{"features": [{"name": "${FLAG}"}]}`);
    await assert.rejects(
      start(file),
      /features\[0\] needs a string "name" and a boolean "enabled"/,
    );
  });
});

describe("flags from an Unleash server", { concurrency: true }, () => {
  it("starts within the bounded wait on the bootstrap flags when Unleash is down, logging errors rate-limited", async () => {
    const port = await closedPort();
    const { logger, lines } = memoryLogger();
    const flagsFile = testFlagFile(["gita"]);
    const started = Date.now();
    const features = await startFeatures({
      flags: TEST_FLAGS,
      logger,
      flagsFile,
      appName: "jafflr-test",
      waitMs: 300,
      unleash: { url: `http://127.0.0.1:${port}/api`, refreshMs: 100 },
    });
    cleanups.push(() => features.close());
    assert.ok(Date.now() - started < 30_000, "start-up did not hang");
    assert.equal(features.source, "unleash");
    assert.equal(features.isEnabled(FLAG, "gita"), true, "the file's flags in use");
    assert.equal(features.isEnabled(FLAG, "gordon"), false);
    assert.equal(lines().filter((l) => /did not answer in time/.test(String(l.msg))).length, 1);

    // The client's own retries take ~3 s before a poll counts as failed; then one line, no stack trace.
    const failures = () => lines().filter((l) => /flag source error/.test(String(l.msg)));
    await eventually(() => failures().length > 0, "the failed poll is logged");
    assert.equal(failures().length, 1);
    assert.equal(failures()[0]?.level, "warn");
    assert.match(String(failures()[0]?.err), /ECONNREFUSED/);
  });

  it("logs a burst of flag-source errors once per interval, with a count", () => {
    const { logger, lines } = memoryLogger();
    let clock = 0;
    const log = rateLimitedErrorLog(logger, 60_000, () => clock);
    for (let i = 0; i < 5; i++) {
      log(new Error(`poll ${i}`));
      clock += 10_000;
    }
    clock = 60_001;
    log(new Error("poll 6"));
    assert.deepEqual(
      lines().map((l) => [l.err, l.suppressed]),
      [
        ["poll 0", 0],
        ["poll 6", 4],
      ],
    );
  });

  it("survives close() while a poll is still in flight (the unleash-client destroy trap)", async () => {
    // A broken Unleash: the first poll (awaited by start-up) gets a 404; the next, timer-driven
    // poll is held open; once told to, it answers garbage, which the client retries twice and
    // then reports as an 'error' from a timer callback: unheard after destroy(), a crash.
    const NOT_FOUND = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const sockets = new Set<Socket>();
    let garbage = false;
    let polls = 0;
    const broken = net.createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
      s.once("data", (head) => {
        if (!/^GET \S*\/client\/features/.test(String(head))) return s.end(NOT_FOUND); // metrics registration
        polls++;
        if (polls === 1) s.end(NOT_FOUND);
        else if (garbage) s.end("garbage\r\n\r\n");
      });
    });
    await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
    const { port } = broken.address() as net.AddressInfo;
    cleanups.push(
      () =>
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          broken.close(resolve);
        }),
    );

    const crashes: unknown[] = [];
    const onCrash = (err: unknown) => crashes.push(err);
    process.on("uncaughtException", onCrash);
    process.on("unhandledRejection", onCrash);
    try {
      const { logger } = memoryLogger();
      const features: Features<typeof FLAG> = await startFeatures({
        flags: TEST_FLAGS,
        logger,
        flagsFile: testFlagFile(),
        appName: "jafflr-test",
        waitMs: 100,
        unleash: { url: `http://127.0.0.1:${port}/api`, refreshMs: 100 },
      });
      await eventually(() => polls >= 2, "a timer-driven poll reaches the server");
      await features.close();
      // Now the in-flight poll fails, after close: without the guard this crashes the process.
      garbage = true;
      for (const s of sockets) s.end("garbage\r\n\r\n");
      await eventually(() => polls >= 4, "the client retried twice and gave up");
      await sleep(200);
      await features.close(); // twice is fine
    } finally {
      process.off("uncaughtException", onCrash);
      process.off("unhandledRejection", onCrash);
    }
    assert.deepEqual(crashes, []);
  });
});
