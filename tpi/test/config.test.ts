import assert from "node:assert/strict";
import childProcess from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, mock } from "node:test";
import { baseEnv, envBool, envInt, envUrl, loadConfig } from "../src/config";
import { z } from "../src/index";

const schema = z.object({
  ...baseEnv({ port: 7001, dir: __dirname }),
  DATABASE_URL: z.string().url(),
  MIGRATE_ON_START: envBool(true),
  GRILL_SLOTS: envInt(4, 1, 64),
  CHILLYBIN_URL: envUrl("http://127.0.0.1:7001"),
});

const ok = { DATABASE_URL: "postgres://postgres@127.0.0.1:5432/x" };

describe("loadConfig", () => {
  it("applies the shared defaults", () => {
    const c = loadConfig(schema, ok);
    assert.equal(c.HOST, "127.0.0.1");
    assert.equal(c.PORT, 7001);
    assert.equal(c.LOG_LEVEL, "info");
    assert.equal(c.SHUTDOWN_TIMEOUT_MS, 25_000);
    assert.equal(c.SHUTDOWN_DELAY_MS, 0);
    assert.equal(c.MIGRATE_ON_START, true);
    assert.equal(c.GRILL_SLOTS, 4);
    assert.equal(c.CHILLYBIN_URL, "http://127.0.0.1:7001");
    assert.match(
      c.VERSION,
      /^1\.0\.0(\+[0-9a-f]+)?$/,
      "version defaults to package version + commit",
    );
  });

  it("parses typed values", () => {
    const c = loadConfig(schema, {
      ...ok,
      PORT: "0",
      MIGRATE_ON_START: "false",
      VERSION: "abc123",
      GRILL_SLOTS: "8",
    });
    assert.equal(c.PORT, 0);
    assert.equal(c.MIGRATE_ON_START, false);
    assert.equal(c.VERSION, "abc123");
    assert.equal(c.GRILL_SLOTS, 8);
  });

  it("treats an empty variable as unset", () => {
    assert.equal(loadConfig(schema, { ...ok, PORT: "" }).PORT, 7001);
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ["missing required", {}, /DATABASE_URL: .*it is not set/],
    [
      "non-numeric port",
      { ...ok, PORT: "abc" },
      /PORT: expected an integer from 0 to 65535, got "abc"/,
    ],
    ["port out of range", { ...ok, PORT: "70000" }, /PORT: .*got "70000"/],
    [
      "float where an integer is needed",
      { ...ok, GRILL_SLOTS: "2.5" },
      /GRILL_SLOTS: expected an integer/,
    ],
    [
      "bad boolean",
      { ...ok, MIGRATE_ON_START: "maybe" },
      /MIGRATE_ON_START: expected true or false, got "maybe"/,
    ],
    ["bad URL", { ...ok, CHILLYBIN_URL: "not a url" }, /CHILLYBIN_URL: expected a URL/],
    ["bad log level", { ...ok, LOG_LEVEL: "loud" }, /LOG_LEVEL: expected one of fatal, error/],
  ];
  for (const [name, env, message] of bad) {
    it(`rejects ${name} with one line naming the variable`, () => {
      assert.throws(
        () => loadConfig(schema, env),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.match(err.message, /^Invalid configuration: /);
          assert.match(err.message, message);
          assert.ok(!err.message.includes("\n"), "a single line");
          return true;
        },
      );
    });
  }

  it("never echoes a secret or a URL's password", () => {
    const secretSchema = z.object({ ADMIN_TOKEN: z.string().min(16), DB: z.string().url() });
    assert.throws(
      () => loadConfig(secretSchema, { ADMIN_TOKEN: "hunter2", DB: "postgres://u:s3cret@ho st/x" }),
      (err: Error) => {
        assert.ok(!err.message.includes("hunter2"), err.message);
        assert.ok(!err.message.includes("s3cret"), err.message);
        assert.match(err.message, /ADMIN_TOKEN: .*a value of 7 characters/);
        return true;
      },
    );
  });

  it("names every bad variable at once", () => {
    assert.throws(
      () => loadConfig(schema, { PORT: "x" }),
      /PORT: .*; DATABASE_URL: |DATABASE_URL: .*; PORT: /,
    );
  });

  it("asks git for the version only when VERSION is unset, and only once", (t) => {
    // A package of its own, so no earlier test has remembered its version.
    const dir = mkdtempSync(join(tmpdir(), "tpi-version-"));
    t.after(() => mock.restoreAll());
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "v", version: "3.2.1" }));
    const git = mock.method(childProcess, "execFileSync", () => Buffer.from("abcdef123456\n"));
    const versioned = z.object(baseEnv({ port: 1, dir }));
    assert.equal(loadConfig(versioned, { VERSION: "from-the-image" }).VERSION, "from-the-image");
    assert.equal(git.mock.callCount(), 0, "no git when VERSION is set");
    assert.equal(loadConfig(versioned, {}).VERSION, "3.2.1+abcdef123456");
    assert.equal(loadConfig(versioned, {}).VERSION, "3.2.1+abcdef123456");
    assert.equal(git.mock.callCount(), 1, "git once, then remembered");
  });
});
