/**
 * HTTP as the wire sees it, for the reliability suite. `send` (node:http, a fresh connection per
 * request) and `sendRaw` (bytes on a socket, for what node:http refuses to send) never throw for
 * what happened: no answer is status 0 with the socket error's code. `send` checks each answer
 * against the service's GET /openapi.json. Then steady load from a few workers, and the books as
 * PostgreSQL holds them (read with SQL, not through the API under test).
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import fc from "fast-check";
import type pg from "pg";
import { checkAgainstOpenApi, type Json } from "testkit/http-client";

export interface RawReply {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  text: string;
  json?: Json;
  /** e.g. ECONNREFUSED, ECONNRESET (before any answer), TIMEOUT. */
  error?: string;
  /** performance.now() when the request started and ended. */
  startedAt: number;
  endedAt: number;
}
export interface SendOptions {
  method?: string;
  /** Path and query, sent as is. */
  path: string;
  /** An object, or [name, value] pairs (a name twice sends it twice). */
  headers?: Record<string, string> | [string, string][];
  body?: string;
}

function parsed(status: number, headers: Record<string, string>, text: string) {
  let json: Json;
  try {
    if (/[/+]json\b/.test(headers["content-type"] ?? "")) json = JSON.parse(text);
  } catch {} // the test sees the text
  return { status, headers, text, json };
}

export async function send(baseUrl: string, options: SendOptions): Promise<RawReply> {
  const { method = "GET", path, body } = options;
  const startedAt = performance.now();
  const given = options.headers ?? {};
  const headers = Array.isArray(given) ? [...given] : Object.entries(given);
  // As curl and fetch do, a POST without a body says Content-Length: 0 (not an empty chunked one).
  if (body !== undefined || method === "POST")
    headers.push(["Content-Length", `${Buffer.byteLength(body ?? "")}`]);
  const url = new URL(baseUrl);
  const reply = await new Promise<Omit<RawReply, "startedAt" | "endedAt">>((resolve) => {
    const failed = (error: NodeJS.ErrnoException) =>
      resolve({ status: 0, headers: {}, text: "", error: error.code ?? error.message });
    const request = http.request({
      host: url.hostname,
      port: url.port,
      method,
      path,
      headers: [["Host", url.host], ...headers].flat(),
      agent: false,
      timeout: 30_000,
    });
    request.once("timeout", () => request.destroy(Object.assign(new Error(), { code: "TIMEOUT" })));
    request.once("error", failed);
    request.once("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk)).once("error", failed);
      response.once("end", () => {
        const head = Object.fromEntries(
          Object.entries(response.headers).map(([k, v]) => [k, `${v}`]),
        );
        resolve(parsed(response.statusCode ?? 0, head, Buffer.concat(chunks).toString("utf8")));
      });
    });
    request.end(body);
  });
  const contentType = reply.headers["content-type"] ?? "";
  await checkAgainstOpenApi(baseUrl, { method, path, contentType, ...reply });
  return { ...reply, startedAt, endedAt: performance.now() };
}

/** Writes `bytes` to a fresh connection and reads the first answer until the server closes. */
export function sendRaw(baseUrl: string, bytes: Buffer): Promise<RawReply> {
  const startedAt = performance.now();
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.end(bytes));
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on("data", (chunk: Buffer) => chunks.push(chunk)).on("error", () => {});
    socket.once("close", () => {
      const data = Buffer.concat(chunks).toString("latin1");
      const [head = "", body = ""] = data.split("\r\n\r\n");
      const [statusLine = "", ...lines] = head.split("\r\n");
      const headers = Object.fromEntries(
        lines.map((l) => [l.split(":")[0]?.toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
      );
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
      let text = body.slice(0, Number(headers["content-length"] ?? body.length));
      if (/chunked/.test(headers["transfer-encoding"] ?? "")) {
        let rest = text;
        text = "";
        for (let size = Number.parseInt(rest, 16); size > 0; size = Number.parseInt(rest, 16)) {
          const start = rest.indexOf("\r\n") + 2;
          text += rest.slice(start, start + size);
          rest = rest.slice(start + size + 2);
        }
      }
      resolve({
        ...parsed(status, headers, status ? text : ""),
        startedAt,
        endedAt: performance.now(),
      });
    });
  });
}

export type Quantities = Record<string, number>;
export interface LoadRequest extends SendOptions {
  /** e.g. "toastie-v2", "pick-v1": for messages and counting. */
  kind: string;
  target: string;
  /** What a 200 takes from stock. */
  takes: Quantities;
}
export interface Outcome extends RawReply {
  request: LoadRequest;
}

export const sent = async (request: LoadRequest): Promise<Outcome> => ({
  ...(await send(request.target, request)),
  request,
});

export function pickV2(target: string, items: Record<string, number>, key?: string): LoadRequest {
  const list = Object.entries(items).map(([ingredient, quantity]) => ({ ingredient, quantity }));
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    ...(key && { "Idempotency-Key": key }),
  };
  const body = JSON.stringify({ customer: "gita", items: list });
  return { kind: "pick-v2", target, method: "POST", path: "/v2/pick", headers, body, takes: items };
}

/** A toastie; `queryForm`: the original's POST /toastie?i=…&customer=… */
export function toastie(
  target: string,
  customer: string,
  ingredients: string[],
  o: { kind?: string; doneness?: string; queryForm?: boolean } = {},
): LoadRequest {
  const takes = total([...ingredients, "bread", "bread"].map((name) => ({ [name]: 1 })));
  const request = { kind: o.kind ?? "toastie", target, method: "POST", takes };
  if (o.queryForm) {
    const query = new URLSearchParams([
      ...ingredients.map((i) => ["i", i]),
      ["customer", customer],
      ...(o.doneness ? [["doneness", o.doneness]] : []),
    ]);
    return { ...request, path: `/toastie?${query}` };
  }
  const body = JSON.stringify({ customer, ingredients, doneness: o.doneness });
  return { ...request, path: "/toastie", headers: { "Content-Type": "application/json" }, body };
}

/** One worker per function, each sending one request after another until stopped. */
export function startLoad(workers: ((n: number) => LoadRequest)[]) {
  const outcomes: Outcome[] = [];
  let running = true;
  const loops = workers.map(async (next) => {
    for (let n = 0; running; n++) {
      const outcome = await sent(next(n));
      outcomes.push(outcome);
      // A refused connection fails in microseconds: do not spin on a service that is gone.
      if (outcome.status === 0) await new Promise((r) => setTimeout(r, 20));
    }
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** "toastie-v2 200 ×12, pick-v1 ECONNREFUSED ×3": a census for assertion messages. */
export function census(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes)
    counts.set(
      `${o.request.kind} ${o.status || o.error}`,
      (counts.get(`${o.request.kind} ${o.status || o.error}`) ?? 0) + 1,
    );
  return [...counts]
    .sort()
    .map(([key, n]) => `${key} ×${n}`)
    .join(", ");
}

export const describeOutcome = (o: Outcome) =>
  `${o.request.kind} ${o.request.method} ${o.request.path} → ${o.status ? `${o.status} ${o.text.slice(0, 300)}` : o.error}`;

export async function readBooks(pool: pg.Pool) {
  const [stock, orders, items] = await Promise.all([
    pool.query<{ name: string; quantity: number }>("SELECT name, quantity FROM ingredients"),
    pool.query<{ id: string }>("SELECT id::text AS id FROM orders"),
    pool.query<{ ingredient: string; n: number }>(
      "SELECT ingredient, sum(quantity)::int AS n FROM order_items GROUP BY ingredient",
    ),
  ]);
  return {
    stock: Object.fromEntries(stock.rows.map((r) => [r.name, r.quantity])) as Quantities,
    orderIds: new Set(orders.rows.map((r) => r.id)),
    orderedItems: Object.fromEntries(items.rows.map((r) => [r.ingredient, r.n])) as Quantities,
  };
}

export function total(all: Quantities[]): Quantities {
  const sum: Quantities = {};
  for (const q of all) for (const [name, n] of Object.entries(q)) sum[name] = (sum[name] ?? 0) + n;
  return sum;
}

export const minus = (before: Quantities, taken: Quantities): Quantities =>
  Object.fromEntries(Object.entries(before).map(([name, n]) => [name, n - (taken[name] ?? 0)]));

/** The items in a seeded random order: the same mix on every run. */
const shuffled = <T>(items: T[], seed: number): T[] => {
  const all = fc.shuffledSubarray(items, { minLength: items.length, maxLength: items.length });
  return fc.sample(all, { seed, numRuns: 1 })[0] ?? items;
};

/**
 * No overselling, ever: all `requests` at once (shuffled, seeded), each taking exactly one cheese
 * and nothing else that runs short, against `cheese` cheeses. Exactly that many succeed whatever
 * the interleaving; the rest are clean "out of stock" problems that took nothing; GET / never
 * shows a quantity below zero; the books (SQL) match the successes to the unit, one order per
 * v2 success.
 */
export async function assertNoOverselling(
  pool: pg.Pool,
  chillybinUrl: string,
  requests: LoadRequest[],
  cheese: number,
) {
  const start = await readBooks(pool);
  let watching = true;
  const negative: string[] = [];
  const watcher = (async () => {
    while (watching) {
      const { json } = await send(chillybinUrl, { path: "/" });
      for (const [name, n] of Object.entries((json ?? {}) as Quantities))
        if (n < 0) negative.push(`${name}=${n}`);
    }
  })();
  const outcomes = await Promise.all(shuffled(requests, 20251125).map(sent));
  watching = false;
  await watcher;
  const ok = (o: Outcome) =>
    o.status === 200 &&
    (o.request.kind === "pick-v1"
      ? o.text === "ok"
      : o.request.kind === "pick-v2"
        ? typeof o.json?.id === "string"
        : o.json?.status === "done");
  // v1 answers 410 for short stock; v1 toasties pick cheese first, so nothing was taken yet.
  const short = (o: Outcome) =>
    o.status === (o.request.kind === "pick-v1" ? 410 : 409) &&
    /^application\/problem\+json/.test(o.headers["content-type"] ?? "") &&
    JSON.stringify(o.json?.short?.map((s: { ingredient: string }) => s.ingredient)) ===
      '["cheese"]' &&
    !o.json?.taken?.length;
  const unexpected = outcomes.filter((o) => !ok(o) && !short(o));
  assert.deepEqual(
    unexpected.map(describeOutcome),
    [],
    `a success or a clean out of stock (${census(outcomes)})`,
  );
  const successes = outcomes.filter(ok);
  assert.equal(successes.length, cheese, `exactly ${cheese} succeed (${census(outcomes)})`);
  for (const o of successes.filter((x) => x.request.kind.startsWith("toastie"))) {
    assert.equal(o.json.pickedVia, o.request.kind === "toastie-v2" ? "v2" : "v1", o.text);
  }
  const books = await readBooks(pool);
  assert.deepEqual(books.stock, minus(start.stock, total(successes.map((o) => o.request.takes))));
  assert.equal(books.stock.cheese, 0, "every cheese was sold");
  assert.deepEqual(negative, [], "GET / never showed a quantity below zero");
  const v2 = successes.filter((o) => o.request.kind.endsWith("v2"));
  const ids = v2.map((o) => String(o.json.id ?? o.json.orderId));
  assert.deepEqual(
    [...books.orderIds].filter((id) => !start.orderIds.has(id)).sort(),
    ids.sort(),
    "one order per v2 success",
  );
  const ordered = total([start.orderedItems, ...v2.map((o) => o.request.takes)]);
  assert.deepEqual(books.orderedItems, ordered, "order items add up to what the v2 successes took");
}
