/**
 * The flags jafflr declares (src/flags.ts) against the repo's flag file and the source. Written
 * to hold before and after the foxtrot's step 3 (which deletes `pick.v2` from the file, the
 * source and FLAGS at once), so jafflr never starts with a flag its flag file lacks.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DEFAULT_FLAGS_FILE } from "../src/config";
import { parseFlagFile, startFeatures } from "../src/features";
import { FLAGS } from "../src/flags";
import { memoryLogger } from "./helpers";

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

function repoFlagNames(): Set<string> {
  const doc = parseFlagFile(readFileSync(DEFAULT_FLAGS_FILE, "utf8"), DEFAULT_FLAGS_FILE);
  return new Set(doc.features.map((f) => f.name));
}

describe("flag names", () => {
  it("every flag the source asks for is declared and exists in the repo's flag file", () => {
    assert.deepEqual(
      [...'x.isEnabled("pick.v2", c) && y.isEnabled( "b", c)'.matchAll(ASKS)].map((m) => m[1]),
      ["pick.v2", "b"],
      "the scan finds isEnabled calls",
    );
    const inFile = repoFlagNames();
    for (const name of flagsAskedFor()) {
      assert.ok((FLAGS as readonly string[]).includes(name), `${name} is not in FLAGS`);
      assert.ok(inFile.has(name), `${name} is missing from ${DEFAULT_FLAGS_FILE}`);
    }
  });

  it("every flag jafflr declares is defined in the repo's flag file", () => {
    const inFile = repoFlagNames();
    const undefinedFlags = FLAGS.filter((name) => !inFile.has(name));
    assert.deepEqual(
      undefinedFlags,
      [],
      `declared in src/flags.ts, missing from ${DEFAULT_FLAGS_FILE}`,
    );
  });

  it("jafflr starts on the repo's flag file without warning about an undefined flag", async () => {
    const { logger, lines } = memoryLogger();
    const features = await startFeatures({
      flags: FLAGS,
      logger,
      flagsFile: DEFAULT_FLAGS_FILE,
      appName: "jafflr-test",
      waitMs: 1000,
    });
    await features.close();
    // The message as src/features.ts logs it; test/features.test.ts shows it is logged when due.
    const warned = lines().filter((l) => /not defined in the flag source/.test(String(l.msg)));
    assert.deepEqual(warned, []);
  });
});
