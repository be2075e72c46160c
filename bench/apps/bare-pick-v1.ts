/**
 * The floor under v1's GET /pick (issue 13 target 1): what a bare Node server reaches running
 * exactly chillybin's v1 statement. node:http and a pg.Pool (max 10, like chillybin's) — no
 * express, no tpi, no tracing, no logging, no validation beyond what the statement needs.
 *
 * Its one argument is the `text` of chillybin's `pick-one` query, read from
 * chillybin/src/pick-v1.ts by bench/cases/pick-v1.ts, run as a named (prepared) statement with
 * the parameters chillybin binds; DATABASE_URL is the database.
 * A *pick-v1* file: foxtrot step 3 deletes it with v1.
 */
import http from "node:http";
import pg from "pg";

const sql = process.argv[2];
const databaseUrl = process.env.DATABASE_URL;
if (!sql || !databaseUrl) {
  process.stderr.write("usage: DATABASE_URL=… node bare-pick-v1.js '<pick statement>'\n");
  process.exit(2);
}

const pool = new pg.Pool({
  connectionString: databaseUrl,
  max: 10, // chillybin's PG_POOL_MAX default
  idleTimeoutMillis: 30_000,
  keepAlive: true,
  application_name: "bench-bare-pick-v1",
});
pool.on("error", () => {}); // an idle connection lost: the pool opens another on the next query

const QUANTITY = /^(100|[1-9][0-9]?)$/;

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function pick(query: URLSearchParams, res: http.ServerResponse): void {
  const ingredient = query.get("name");
  const quantityParam = query.get("quantity") ?? "";
  if (!ingredient || !QUANTITY.test(quantityParam)) {
    send(res, 400, "bad request");
    return;
  }
  const quantity = Number(quantityParam);
  pool
    .query({
      name: "pick-one",
      text: sql as string,
      values: [
        ingredient,
        quantity,
        JSON.stringify({ pick: { via: "v1", items: [{ ingredient, quantity }] } }),
      ],
    })
    .then(
      ({ rows }) => send(res, rows.length > 0 ? 200 : 410, rows.length > 0 ? "ok" : "gone"),
      () => send(res, 503, "unavailable"),
    );
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (req.method === "GET" && url.pathname === "/pick") {
    pick(url.searchParams, res);
  } else if (req.method === "GET" && url.pathname === "/ready") {
    pool.query("SELECT 1").then(
      () => send(res, 200, "ok"),
      () => send(res, 503, "unavailable"),
    );
  } else {
    send(res, 404, "not found");
  }
});
server.requestTimeout = 120_000;
server.keepAliveTimeout = 5_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.stdout.write(
    `${JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${port}` })}\n`,
  );
});
process.once("SIGTERM", () => {
  server.close(() => {
    pool.end().finally(() => process.exit(0));
  });
  server.closeIdleConnections();
});
