import assert from "node:assert/strict";
import childProcess from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it, mock } from "node:test";
import { baseEnv, envBool, envInt, envNumber, envUrl, loadConfig } from "../src/config";
import { z } from "../src/index";

const schema = z.object({
  ...baseEnv({ port: 7001, dir: __dirname }),
  DB: z.string().url(),
  ...{ MIGRATE: envBool(true), SLOTS: envInt(4, 1, 64), SCALE: envNumber(1, 0, 10) },
  ...{ UPSTREAM: envUrl("http://[::1]:1"), OPTIONAL: envUrl() },
  ADMIN_TOKEN: z.string().min(16),
});
/** "A=1 B=2" → { A: "1", B: "2" }, over a valid environment. */
const env = (vars: string) => ({
  ...{ DB: "postgres://u@h/x", ADMIN_TOKEN: "0123456789abcdef" },
  ...Object.fromEntries(vars.split(" ").map((v) => v.split("="))),
});
const good: [string, Record<string, unknown>][] = [
  ["", { HOST: "127.0.0.1", PORT: 7001, LOG_LEVEL: "info", SHUTDOWN_TIMEOUT_MS: 25_000 }],
  ["", { SHUTDOWN_DELAY_MS: 0, MIGRATE: true, SLOTS: 4, SCALE: 1, UPSTREAM: "http://[::1]:1" }],
  ["PORT=0 MIGRATE=No SLOTS=8 SCALE=0.5 VERSION=abc", { PORT: 0, MIGRATE: false, SLOTS: 8 }],
  ["PORT= MIGRATE=yes SCALE=0.5 VERSION=abc", { PORT: 7001, MIGRATE: true, SCALE: 0.5 }],
];
for (const [vars, expected] of good) {
  it(`loadConfig reads "${vars}" as ${JSON.stringify(expected)}`, () => {
    const config = loadConfig(schema, env(vars));
    assert.deepEqual({ ...config, ...expected }, config);
    assert.match(config.VERSION, /^(1\.0\.0(\+[0-9a-f]{12})?|abc)$/);
  });
}

const bad: [string, RegExp][] = [
  ["DB=", /^Invalid configuration: DB: .*it is not set$/],
  ["PORT=abc", /PORT: expected an integer from 0 to 65535, got "abc"/],
  ["PORT=70000", /PORT: .*got "70000"/],
  ["SLOTS=2.5", /SLOTS: expected an integer from 1 to 64/],
  ["MIGRATE=maybe", /MIGRATE: expected true or false, got "maybe"/],
  ["UPSTREAM=nope", /UPSTREAM: expected a URL/],
  ["LOG_LEVEL=loud", /LOG_LEVEL: expected one of fatal, error/],
  ["ADMIN_TOKEN=hunter2 DB=pg://u:s3cret@h^/x", /DB: .*u:\*\*\*@.*; ADMIN_TOKEN: .*7 char/],
  ["PORT=x SLOTS=0", /PORT: .*; SLOTS: /],
];
for (const [vars, message] of bad) {
  it(`loadConfig rejects "${vars}" in one line, secrets masked`, () => {
    const check = (e: Error) => message.test(e.message) && !/\n|hunter2|s3cret/.test(e.message);
    assert.throws(() => loadConfig(schema, env(vars)), check);
  });
}

it("asks git for the version only when VERSION is unset, and only once", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tpi-version-")); // no test has remembered its version
  writeFileSync(join(dir, "package.json"), JSON.stringify({ version: "3.2.1" }));
  const git = mock.method(childProcess, "execFileSync", () => Buffer.from("abcdef123456\n"));
  t.after(() => git.mock.restore());
  const version = (env = {}) => loadConfig(z.object(baseEnv({ port: 1, dir })), env).VERSION;
  assert.deepEqual([version({ VERSION: "image" }), git.mock.callCount()], ["image", 0]);
  const commit = "3.2.1+abcdef123456";
  assert.deepEqual([version(), version(), git.mock.callCount()], [commit, commit, 1]);
});
