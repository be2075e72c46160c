/**
 * v1 only — deleted by the foxtrot's step 3 with src/pick-v1.ts. The original arm: one
 * GET /pick per ingredient, never re-sent once it may have arrived, and a failure midway says
 * what was already taken.
 */
import assert from "node:assert/strict";
import type http from "node:http";
import { after, describe, it } from "node:test";
import request from "supertest";
import { createMetrics, type HttpProblem } from "tpi";
import { ChillybinClient } from "../src/chillybin-client";
import { pickV1 } from "../src/pick-v1";
import type { Picked } from "../src/pick-v2";
import {
  buildJafflr,
  closedPort,
  faultServer,
  memoryLogger,
  metricValue,
  standInChillybin,
  tempFlagFile,
} from "./helpers";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

function client(baseUrl: string) {
  const metrics = createMetrics({ service: "jafflr", version: "test" });
  const c = new ChillybinClient({
    baseUrl,
    connectTimeoutMs: 1_000,
    timeoutMs: 2_000,
    retries: 2,
    version: "test",
    registry: metrics.registry,
    logger: memoryLogger().logger,
    backoffBaseMs: 5,
    backoffMaxMs: 20,
  });
  cleanups.push(() => c.close());
  return { c, metrics };
}

async function server(
  handle: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void,
) {
  const s = await faultServer(handle);
  cleanups.push(s.close);
  return s;
}

const order = (...ingredients: string[]) => ({
  customer: "gordon",
  ingredients,
  idempotencyKey: "unused",
});

function problemOf(picked: Picked): HttpProblem {
  assert.equal(picked.ok, false, "expected a problem");
  assert.equal(picked.via, "v1");
  return (picked as Extract<Picked, { ok: false }>).problem;
}

describe("pickV1", () => {
  it("picks each ingredient in order, one at a time", async () => {
    const ok = await server((_req, res) => res.end("ok"));
    assert.deepEqual(await pickV1(client(ok.url).c, order("cheese", "ham", "bread", "bread")), {
      via: "v1",
      ok: true,
    });
    assert.deepEqual(
      ok.requests.map((r) => `${r.method} ${r.url}`),
      [
        "GET /pick?name=cheese&quantity=1",
        "GET /pick?name=ham&quantity=1",
        "GET /pick?name=bread&quantity=1",
        "GET /pick?name=bread&quantity=1",
      ],
    );
  });

  it("is not retried once the request was sent (GET /pick changes stock), and says what was taken", async () => {
    const dropSecond = await server((req, res, n) => {
      if (n === 1) res.end("ok");
      else req.socket.destroy();
    });
    const p = problemOf(
      await pickV1(client(dropSecond.url).c, order("cheese", "vegemite", "bread")),
    );
    assert.equal(p.status, 503);
    assert.deepEqual(
      dropSecond.requests.map((r) => r.url),
      ["/pick?name=cheese&quantity=1", "/pick?name=vegemite&quantity=1"],
    );
    assert.deepEqual(p.options.extensions?.taken, ["cheese"]);
    assert.equal(p.options.extensions?.failedAt, "vegemite");
    assert.match(p.options.detail ?? "", /Already taken before vegemite failed .*: cheese\./);
  });

  it("is retried when the connection was refused (the request never left)", async () => {
    const { c, metrics } = client(`http://127.0.0.1:${await closedPort()}`);
    const p = problemOf(await pickV1(c, order("cheese")));
    assert.equal(p.status, 503);
    assert.deepEqual(p.options.extensions?.taken, []);
    assert.equal(
      await metricValue(metrics, "chillybin_client_requests_total", {
        route: "/pick",
        outcome: "network_error",
      }),
      3,
    );
  });

  it("the original's 410 Gone → 409 out-of-stock; an unknown name → 422; no /pick route → 502", async () => {
    const gone = await server((_req, res, n) => {
      if (n === 1) return res.end("ok");
      res.writeHead(410, { "Content-Type": "application/problem+json" });
      res.end(
        JSON.stringify({
          title: "Gone",
          short: [{ ingredient: "vegemite", requested: 1, available: 0 }],
        }),
      );
    });
    const short = problemOf(await pickV1(client(gone.url).c, order("cheese", "vegemite")));
    assert.equal(short.status, 409);
    assert.equal(short.title, "Out of stock");
    assert.deepEqual(short.options.extensions?.taken, ["cheese"]);
    assert.deepEqual(short.options.extensions?.short, [
      { ingredient: "vegemite", requested: 1, available: 0 },
    ]);

    const unknown = await server((_req, res) => {
      res.writeHead(422, { "Content-Type": "application/problem+json" });
      res.end(JSON.stringify({ unknown: ["caviar"] }));
    });
    const u = problemOf(await pickV1(client(unknown.url).c, order("caviar")));
    assert.equal(u.status, 422);
    assert.deepEqual(u.options.extensions?.unknown, ["caviar"]);

    const deleted = await server((_req, res) => {
      res.writeHead(404, { "Content-Type": "application/problem+json" });
      res.end(JSON.stringify({ title: "Not Found" }));
    });
    assert.equal(problemOf(await pickV1(client(deleted.url).c, order("cheese"))).status, 502);
  });

  it("a customer the flag leaves on v1 gets a v1 toastie, told to the page hook", async () => {
    const cold = await standInChillybin();
    const flags = tempFlagFile(["gita"]);
    const seen: unknown[] = [];
    const jafflr = await buildJafflr({
      chillybinUrl: cold.url,
      flagsFile: flags.file,
      onToastie: (o) => seen.push(o),
    });
    cleanups.push(cold.close, flags.remove, jafflr.close);
    const res = await request(jafflr.app).post("/toastie?i=cheese&customer=gordon");
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.pickedVia, "v1");
    assert.equal(res.body.orderId, undefined);
    assert.equal(cold.requests.length, 3);
    assert.equal((seen[0] as { pickedVia?: string }).pickedVia, "v1");
  });
});
