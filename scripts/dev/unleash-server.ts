/**
 * A real Unleash server on demand, for the Unleash flag test (`npm run test:unleash -w integration-tests`).
 * unleash-server is ~190 MB, so no workspace depends on it (every `npm ci` would pay): the first
 * use installs it into <repo>/.cache/unleash-server. It runs on a database of its own, with an
 * admin token and a backend token (jafflr's) made at start-up. 7.5.1 is the newest release that
 * runs on Node 20.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { launchService, REPO_ROOT } from "testkit/service-process";

const VERSION = "7.5.1";
const CACHE = path.join(REPO_ROOT, ".cache", "unleash-server");
const FEATURES = "/api/admin/projects/default/features";
// Started by launchService, as the services are: it prints their listening line, and exits when
// the IPC channel closes (we are gone), so a crashed run leaves no Unleash behind.
const STARTER = `import { start } from "unleash-server";
process.on("disconnect", () => process.exit(0));
const { DB, PORT, ADMIN, CLIENT } = process.env;
const token = (tokenName, type, environment, secret) => ({ tokenName, type, environment, projects: ["*"], secret });
const unleash = await start({
  db: { connectionString: DB, ssl: false, pool: { min: 0, max: 4 } },
  server: { host: "127.0.0.1", port: Number(PORT), enableRequestLogger: false },
  logLevel: "warn", versionCheck: { enable: false },
  authentication: { type: "open-source", enableApiToken: true, createAdminUser: false,
    initApiTokens: [token("admin", "admin", "*", ADMIN), token("jafflr", "backend", "development", CLIENT)] },
});
console.log(JSON.stringify({ msg: "listening", url: "http://127.0.0.1:" + unleash.server.address().port }));
`;

function install(): void {
  if (existsSync(path.join(CACHE, "node_modules", "unleash-server", "package.json"))) return;
  console.error(`installing unleash-server@${VERSION} into ${CACHE} (first use only, ~190 MB)`);
  // Without the npm_* variables of an `npm run -w …`, which would make this an install of the repo.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  const args = ["install", "--prefix", CACHE, `unleash-server@${VERSION}`, "--no-save"];
  const npm = spawnSync("npm", [...args, "--no-audit", "--no-fund"], { env, encoding: "utf8" });
  if (npm.status !== 0)
    throw new Error(
      `Could not install unleash-server@${VERSION} (it needs the npm registry once): ${npm.stderr ?? npm.error}`,
    );
}

export type UnleashServer = Awaited<ReturnType<typeof startUnleashServer>>;

/** apiUrl and clientToken are what jafflr's UNLEASH_URL and UNLEASH_API_TOKEN take. */
export async function startUnleashServer(options: { databaseUrl: string; port?: number }) {
  install();
  const entry = path.join(CACHE, "start.mjs");
  writeFileSync(entry, STARTER);
  const secret = randomBytes(12).toString("hex");
  const [adminToken, clientToken] = [`*:*.admin-${secret}`, `*:development.jafflr-${secret}`];
  const lines: string[] = [];
  // A clean environment: Unleash reads DATABASE_URL, PORT, LOG_LEVEL… which tests may have set.
  const { child, exited, url } = await launchService({
    name: "Unleash",
    entry,
    env: {
      ...{ PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: "production" },
      ...{ SEND_TELEMETRY: "false", CHECK_VERSION: "false", DB: options.databaseUrl },
      ...{ PORT: String(options.port ?? 0), ADMIN: adminToken, CLIENT: clientToken },
    },
    onLine: (line) => lines.push(line),
    waitForReady: false,
    timeoutMs: 90_000,
  }).catch((error: Error) => Promise.reject(new Error(`${error.message}\n${lines.join("\n")}`)));
  const call = async (method: string, pathname: string, body?: unknown) => {
    const response = await fetch(`${url}${pathname}`, {
      method,
      headers: { authorization: adminToken, "content-type": "application/json" },
      body: JSON.stringify(body), // undefined for none
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok && response.status !== 404)
      throw new Error(`Unleash ${method} ${pathname}: ${response.status} ${text}`);
    return response.status === 404 ? undefined : JSON.parse(text || "null");
  };
  const env_ = (flag: string) => `${FEATURES}/${encodeURIComponent(flag)}/environments/development`;
  /** One flexibleRollout strategy at 100 % for `userId IN [...]`, as jafflr's flag file has. */
  const setUserIds = async (flag: string, userIds: string[]) => {
    const at = `${env_(flag)}/strategies`;
    const [current, ...others]: { id: string }[] = (await call("GET", at)) ?? [];
    // Replaced in place: a flag with no strategy at all would be on for everyone meanwhile.
    await call(current ? "PUT" : "POST", current ? `${at}/${current.id}` : at, {
      name: "flexibleRollout",
      parameters: { rollout: "100", stickiness: "default", groupId: flag },
      constraints: [{ contextName: "userId", operator: "IN", values: userIds }],
    });
    for (const old of others) await call("DELETE", `${at}/${old.id}`);
  };
  return {
    apiUrl: `${url}/api`,
    clientToken,
    admin: {
      setUserIds,
      async enableForUsers(flag: string, userIds: string[]) {
        if (!(await call("GET", `${FEATURES}/${encodeURIComponent(flag)}`)))
          await call("POST", FEATURES, { name: flag, type: "release" });
        await setUserIds(flag, userIds);
        await call("POST", `${env_(flag)}/on`);
      },
    },
    logs: () => lines.join("\n"),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited.finally(() => clearTimeout(timer));
    },
  };
}

// `tsx scripts/dev/unleash-server.ts install`: the download alone, so CI fetches it beside other work.
if (require.main === module && process.argv[2] === "install") install();
