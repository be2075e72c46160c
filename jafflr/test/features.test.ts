import assert from "node:assert/strict";
import { readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import net from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_FLAGS_FILE } from "../src/config";
import {
  type Features,
  FLAGS,
  parseFlagFile,
  rateLimitedErrorLog,
  startFeatures,
} from "../src/features";
import { closedPort, eventually, memoryLogger, pickV2For, tempFlagFile } from "./helpers";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function fileFeatures(file: string) {
  const log = memoryLogger();
  const features = await startFeatures({
    logger: log.logger,
    flagsFile: file,
    appName: "jafflr-test",
    waitMs: 1000,
    filePollMs: 20,
  });
  cleanups.push(() => features.close());
  return { features, ...log };
}

/** The flags src/ asks for: the names in `isEnabled("…"` calls. */
function flagsAskedFor(): string[] {
  const src = join(__dirname, "..", "src");
  return readdirSync(src, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".ts"))
    .flatMap((f) => [...readFileSync(join(src, f), "utf8").matchAll(ASKS)])
    .map((m) => m[1] as string);
}
const ASKS = /isEnabled\(\s*"([^"]+)"/g;

describe("flag names", () => {
  // Checked from the source rather than FLAGS, so the foxtrot's step 3 (the flag leaves the
  // file and the code at once) keeps this green.
  it("every flag the source asks for is declared and exists in the repo's flag file", () => {
    assert.deepEqual(
      [...'x.isEnabled("pick.v2", c) && y.isEnabled( "b", c)'.matchAll(ASKS)].map((m) => m[1]),
      ["pick.v2", "b"],
      "the scan finds isEnabled calls",
    );
    const doc = parseFlagFile(readFileSync(DEFAULT_FLAGS_FILE, "utf8"), DEFAULT_FLAGS_FILE);
    const inFile = new Set(doc.features.map((f) => f.name));
    for (const name of flagsAskedFor()) {
      assert.ok((FLAGS as readonly string[]).includes(name), `${name} is not in FLAGS`);
      assert.ok(inFile.has(name), `${name} is missing from ${DEFAULT_FLAGS_FILE}`);
    }
  });

  it("an undeclared flag is a type error, and off (logged once) if forced through", async () => {
    const { features, lines } = await fileFeatures(DEFAULT_FLAGS_FILE);
    // @ts-expect-error: "pick.v3" is not a FlagName — typecheck fails if this ever compiles.
    assert.equal(features.isEnabled("pick.v3", "gita"), false);
    // @ts-expect-error: same again, to check the log line is not repeated.
    features.isEnabled("pick.v3", "gita");
    const logged = lines().filter((l) => l.flag === "pick.v3");
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.level, "error");
  });
});

describe("flags from the file (no Unleash server)", () => {
  it("evaluates the file's strategy per customer: pick.v2 on for gita only", async () => {
    const temp = tempFlagFile(["gita"]);
    cleanups.push(temp.remove);
    const { features } = await fileFeatures(temp.file);
    assert.equal(features.source, "file");
    assert.equal(features.isEnabled("pick.v2", "gita"), true);
    assert.equal(features.isEnabled("pick.v2", "gordon"), false);
    assert.equal(features.isEnabled("pick.v2", "anonymous"), false);
  });

  it("follows an edit of the file without a restart, and keeps the last good flags on a bad edit", async () => {
    const temp = tempFlagFile();
    cleanups.push(temp.remove);
    const { features, lines } = await fileFeatures(temp.file);
    assert.equal(features.isEnabled("pick.v2", "gordon"), false);

    writeFileSync(temp.file, pickV2For(["gita", "gordon"]));
    await eventually(() => features.isEnabled("pick.v2", "gordon"), "gordon moves to v2");
    assert.equal(features.isEnabled("pick.v2", "gita"), true);

    // An operator's half-written edit: flags stay as they were, one error line per distinct problem.
    writeFileSync(temp.file, '{"features": [');
    await eventually(
      () => lines().some((l) => /flag file unreadable/.test(String(l.msg))),
      "the bad edit is seen",
    );
    assert.equal(features.isEnabled("pick.v2", "gordon"), true);

    // An atomic replace (write + rename), as editors and config tools do.
    writeFileSync(`${temp.file}.new`, pickV2For(["gita"]));
    renameSync(`${temp.file}.new`, temp.file);
    await eventually(() => !features.isEnabled("pick.v2", "gordon"), "gordon back on v1");
    assert.equal(lines().filter((l) => /flag file unreadable/.test(String(l.msg))).length, 1);
  });

  it("fails start-up on a missing or malformed file instead of running with no flags", async () => {
    const { logger } = memoryLogger();
    await assert.rejects(
      startFeatures({ logger, flagsFile: "/nonexistent/features.json", appName: "t", waitMs: 10 }),
      /flag file \/nonexistent\/features.json does not exist/,
    );
    const temp = tempFlagFile();
    cleanups.push(temp.remove);
    writeFileSync(temp.file, '{"features": [{"name": "pick.v2"}]}');
    await assert.rejects(
      startFeatures({ logger, flagsFile: temp.file, appName: "t", waitMs: 10 }),
      /features\[0\] needs a string "name" and a boolean "enabled"/,
    );
  });
});

describe("flags from an Unleash server", { concurrency: true }, () => {
  it("starts within the bounded wait on the bootstrap flags when Unleash is down, logging errors rate-limited", async () => {
    const port = await closedPort();
    const { logger, lines } = memoryLogger();
    const temp = tempFlagFile(["gita"]);
    cleanups.push(temp.remove);
    const started = Date.now();
    const features = await startFeatures({
      logger,
      flagsFile: temp.file,
      appName: "jafflr-test",
      waitMs: 300,
      unleash: { url: `http://127.0.0.1:${port}/api`, refreshMs: 100 },
    });
    cleanups.push(() => features.close());
    assert.ok(Date.now() - started < 30_000, "start-up did not hang");
    assert.equal(features.source, "unleash");
    assert.equal(features.isEnabled("pick.v2", "gita"), true, "the file's flags in use");
    assert.equal(features.isEnabled("pick.v2", "gordon"), false);
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
      const features: Features = await startFeatures({
        logger,
        flagsFile: DEFAULT_FLAGS_FILE,
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
