import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type EmbeddedDb, startThrowawayDb } from "local-dev/embedded-db";
import pg from "pg";
import { withDatabase } from "testkit/db-url";
import { createTestDatabase, dropDatabasesWithPrefix, ensureDatabase } from "testkit/test-db";

// The server `npm test` runs against when one is given (CI's real PostgreSQL), else our own.
let server: EmbeddedDb | undefined;
let adminUrl: string;

before(async () => {
  const given = process.env.TEST_ADMIN_DATABASE_URL ?? process.env.DATABASE_URL;
  if (given) {
    adminUrl = given;
  } else {
    server = await startThrowawayDb();
    adminUrl = server.url;
  }
});

after(async () => {
  await server?.destroy();
});

async function databases(prefix: string): Promise<string[]> {
  const client = new pg.Client(adminUrl);
  await client.connect();
  try {
    const result = await client.query<{ datname: string }>(
      "select datname from pg_database where starts_with(datname, $1) order by datname",
      [prefix],
    );
    return result.rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

test("creates a fresh, uniquely named database and drops it, even with connections open", async () => {
  const first = await createTestDatabase(adminUrl, { prefix: "t_" });
  const second = await createTestDatabase(adminUrl, { prefix: "t_" });
  try {
    assert.match(first.name, /^t_[0-9a-f]{12}$/);
    assert.notEqual(first.name, second.name);
    assert.equal(first.url, withDatabase(adminUrl, first.name));

    const client = new pg.Client(first.url);
    client.on("error", () => {}); // the forced drop terminates this session
    await client.connect();
    const { rows } = await client.query("select current_database() as db");
    assert.deepEqual(rows, [{ db: first.name }]);

    await first.drop(); // WITH (FORCE): the open connection does not keep it alive
    await first.drop(); // and a second drop is harmless
    assert.deepEqual(await databases(first.name), []);
    await client.end().catch(() => {});
  } finally {
    await first.drop();
    await second.drop();
  }
  assert.deepEqual(await databases(second.name), []);
});

test("drops exactly the databases with a prefix (what a crashed run left behind)", async () => {
  const prefix = `t_sweep${process.pid}_`;
  const left = [
    await createTestDatabase(adminUrl, { prefix }),
    await createTestDatabase(adminUrl, { prefix }),
  ];
  const other = await createTestDatabase(adminUrl, { prefix: `t_sweep${process.pid}y_` });
  try {
    const dropped = await dropDatabasesWithPrefix(adminUrl, prefix);
    assert.deepEqual(dropped.sort(), left.map((db) => db.name).sort());
    assert.deepEqual(await databases(prefix), []);
    assert.deepEqual(await databases(other.name), [other.name], "other databases are untouched");
  } finally {
    await other.drop();
    for (const db of left) await db.drop();
  }
});

test("ensureDatabase creates a database once", async () => {
  const name = `t_ensure${process.pid}`;
  try {
    assert.equal(await ensureDatabase(adminUrl, name), true);
    assert.equal(await ensureDatabase(adminUrl, name), false);
    assert.deepEqual(await databases(name), [name]);
  } finally {
    await dropDatabasesWithPrefix(adminUrl, name);
  }
});

test("without a server to use, it says how to get one", async () => {
  await assert.rejects(createTestDatabase(""), /run them with `npm test`/);
});

test("an unreachable server is reported with the password masked", async () => {
  const url = "postgres://postgres:hunter2@127.0.0.1:1/postgres";
  await assert.rejects(createTestDatabase(url), (error: Error) => {
    assert.match(
      error.message,
      /Cannot connect to PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres/,
    );
    assert.doesNotMatch(error.message, /hunter2/);
    return true;
  });
});
