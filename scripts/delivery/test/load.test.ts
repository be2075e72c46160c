// The rehearsal's load generator against a stand-in server: it restocks first (with the admin
// token), counts a toastie or "out of stock" (then restocks) as ok and an error status or a
// dropped connection as failed, and reports once stopped with SIGTERM.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { SCRIPTS } from "./helpers";

test("counts every request without a proper answer, and reports when stopped", async () => {
  let toasties = 0;
  const restocks: string[] = [];
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    if (req.url === "/restock")
      return res.end(restocks.push(`${req.headers.authorization} ${body}`) && "{}");
    toasties += 1;
    if (toasties === 10) child.kill("SIGTERM");
    if (toasties === 3)
      res.socket?.destroy(); // a pod killed mid-request
    else
      res
        .writeHead({ 5: 503, 7: 409 }[toasties] ?? 200)
        .end(toasties === 5 ? "Cold store unavailable" : "{}");
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const env = {
    ...process.env,
    JAFFLR_URL: url,
    CHILLYBIN_URL: url,
    CHILLYBIN_ADMIN_TOKEN: "t0ken",
    LOAD_CONCURRENCY: "1",
  };
  const child = spawn(process.execPath, [join(SCRIPTS, "load", "load.mjs")], { env });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  const [code] = await once(child, "close");
  server.close();
  assert.equal(code, 0, output);
  assert.deepEqual(output.trim().split("\n"), [
    "load: first toastie ok",
    "load: FAILED POST /toastie #3 of worker 1: socket hang up",
    "load: FAILED POST /toastie #5 of worker 1: 503 Cold store unavailable",
    `load: done sent=${toasties} ok=${toasties - 2} failed=2 restocked=2`,
  ]);
  assert.deepEqual(restocks, Array(2).fill('Bearer t0ken {"bread":10000,"cheese":10000}'));
});
