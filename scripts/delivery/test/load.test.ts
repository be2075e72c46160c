// The rehearsal's load generator (load/load.mjs) against a stand-in HTTP server: it restocks
// first, counts proper answers (a toastie, or out of stock) as ok and everything else — an error
// status, a dropped connection — as failed, and reports once stopped with SIGTERM.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { REPO_ROOT } from "./fixture-repo";

const LOAD = join(REPO_ROOT, "scripts", "delivery", "load", "load.mjs");

let server: Server;
let toasties = 0;
const restocks: string[] = [];
let reachedTen: () => void;
const tenToasties = new Promise<void>((done) => {
  reachedTen = done;
});

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      if (req.url === "/restock") {
        restocks.push(`${req.headers.authorization} ${body}`);
        res.end("{}");
        return;
      }
      toasties += 1;
      if (toasties === 10) reachedTen();
      if (toasties === 3)
        res.socket?.destroy(); // a pod killed mid-request
      else if (toasties === 5) res.writeHead(503).end('{"title":"Cold store unavailable"}');
      else if (toasties === 7) res.writeHead(409).end('{"title":"Out of stock"}');
      else res.end('{"status":"done"}');
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
});
after(() => new Promise<void>((done) => server.close(() => done())));

test("counts every request without a proper answer, and reports when stopped", async () => {
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const child = spawn(process.execPath, [LOAD], {
    env: {
      ...process.env,
      JAFFLR_URL: url,
      CHILLYBIN_URL: url,
      CHILLYBIN_ADMIN_TOKEN: "t0ken",
      LOAD_CONCURRENCY: "1",
      LOAD_TIMEOUT_MS: "5000",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  await tenToasties;
  child.kill("SIGTERM");
  const [code] = await once(child, "close"); // "exit" may come before the last output is read
  assert.equal(code, 0, output);
  const lines = output.trim().split("\n");
  assert.equal(lines[0], "load: first toastie ok");
  assert.match(output, /^load: FAILED POST \/toastie #3 of worker 1: socket hang up$/m);
  assert.match(
    output,
    /^load: FAILED POST \/toastie #5 of worker 1: 503 .*Cold store unavailable/m,
  );
  const done = /^load: done sent=(\d+) ok=(\d+) failed=(\d+) restocked=(\d+)$/.exec(
    lines.at(-1) ?? "",
  );
  assert.ok(done, output);
  const [sent, ok, failed, restocked] = done.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
  ];
  assert.equal(failed, 2);
  assert.equal(sent, ok + failed);
  assert.equal(sent, toasties, "every request sent was answered or counted before the report");
  // Restocked at the start and after the out-of-stock answer, with the admin token.
  assert.equal(restocked, 2);
  assert.deepEqual(restocks, [
    'Bearer t0ken {"bread":10000,"cheese":10000}',
    'Bearer t0ken {"bread":10000,"cheese":10000}',
  ]);
});
