// The rehearsal's load generator: sends toasties through jafflr's Service while deploy.sh rolls
// out, and counts every request that did not get a proper answer. It runs inside the cluster (the
// pod of load.yaml, on the jafflr image's node: plain Node, no dependencies), so each request
// takes the path a customer's does: the Service picks among the ready pods.
//
// Output, one line each: "load: first toastie ok" once; "load: FAILED <what>" per failure (the
// first 20); on SIGTERM, after the requests in flight have finished, "load: done sent=N ok=N
// failed=N restocked=N" and exit 0.
import http from "node:http";

const JAFFLR_URL = process.env.JAFFLR_URL ?? "http://jafflr:7000";
const CHILLYBIN_URL = process.env.CHILLYBIN_URL ?? "http://chillybin:7001";
const ADMIN_TOKEN = process.env.CHILLYBIN_ADMIN_TOKEN ?? "";
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY ?? 2);
const TIMEOUT_MS = Number(process.env.LOAD_TIMEOUT_MS ?? 10_000);
/** Enough for thousands of toasties: a rehearsal must not fail by running out of bread. */
const STOCK = { bread: 10_000, cheese: 10_000 };

const counts = { sent: 0, ok: 0, failed: 0, restocked: 0 };
let stopping = false;
let reportedFirst = false;

/**
 * One request on a fresh connection (agent: false): a kept-alive connection would stay on one pod
 * and hide how the Service spreads new connections while pods come and go.
 */
function request(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers, agent: false, timeout: TIMEOUT_MS }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode, text }));
      res.on("error", (error) => resolve({ error: error.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", (error) => resolve({ error: error.message }));
    req.end(body);
  });
}

const json = (value) => ({
  headers: { "content-type": "application/json" },
  body: JSON.stringify(value),
});

async function restock() {
  const answer = await request(`${CHILLYBIN_URL}/restock`, {
    method: "POST",
    ...json(STOCK),
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (answer.status !== 200)
    fail(`POST /restock: ${answer.error ?? `${answer.status} ${answer.text}`}`);
  else counts.restocked += 1;
}

function fail(what) {
  counts.failed += 1;
  if (counts.failed <= 20) console.log(`load: FAILED ${what.slice(0, 300)}`);
}

async function worker(id) {
  let n = 0;
  while (!stopping) {
    n += 1;
    counts.sent += 1;
    const answer = await request(`${JAFFLR_URL}/toastie`, {
      method: "POST",
      ...json({ customer: `rehearsal-${id}`, ingredients: ["cheese"], doneness: "light" }),
    });
    if (answer.status === 200) {
      counts.ok += 1;
      if (!reportedFirst) {
        reportedFirst = true;
        console.log("load: first toastie ok");
      }
    } else if (answer.status === 409) {
      // Out of stock is a proper answer, not an outage: restock and carry on.
      counts.ok += 1;
      await restock();
    } else {
      fail(
        `POST /toastie #${n} of worker ${id}: ${answer.error ?? `${answer.status} ${answer.text}`}`,
      );
    }
  }
}

process.on("SIGTERM", () => {
  stopping = true;
});

await restock();
await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => worker(i + 1)));
console.log(
  `load: done sent=${counts.sent} ok=${counts.ok} failed=${counts.failed} restocked=${counts.restocked}`,
);
