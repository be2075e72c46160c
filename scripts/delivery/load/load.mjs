// The rehearsal's load generator (load.yaml: plain Node in the cluster, so each request takes a
// customer's path among the ready pods): sends toasties while deploy.sh rolls out and counts every
// request without a proper answer. Prints "load: first toastie ok", "load: FAILED <what>" (the first
// 20), and on SIGTERM, once the requests in flight are done, "load: done sent= ok= failed= restocked=".
import http from "node:http";

const env = process.env;
const [JAFFLR, CHILLYBIN] = [
  env.JAFFLR_URL ?? "http://jafflr:7000",
  env.CHILLYBIN_URL ?? "http://chillybin:7001",
];
const TIMEOUT_MS = Number(env.LOAD_TIMEOUT_MS ?? 10_000);
const counts = { sent: 0, ok: 0, failed: 0, restocked: 0 };
let stopping = false;
let first = true;

/** A fresh connection each (agent: false): a kept-alive one would hide how new ones spread. */
function post(url, body, headers = {}) {
  return new Promise((resolve) => {
    const options = {
      method: "POST",
      agent: false,
      timeout: TIMEOUT_MS,
      headers: { "content-type": "application/json", ...headers },
    };
    const req = http.request(url, options, (res) => {
      let text = "";
      res.on("data", (chunk) => {
        text += chunk;
      });
      res.on("end", () => resolve(`${res.statusCode} ${text}`));
      res.on("error", (error) => resolve(error.message));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", (error) => resolve(error.message));
    req.end(JSON.stringify(body));
  });
}

function fail(what) {
  counts.failed += 1;
  if (counts.failed <= 20) console.log(`load: FAILED ${what.slice(0, 300)}`);
}

/** Plenty of stock: a rehearsal must not fail by running out of bread. */
async function restock() {
  const stock = { bread: 10_000, cheese: 10_000 };
  const answer = await post(`${CHILLYBIN}/restock`, stock, {
    authorization: `Bearer ${env.CHILLYBIN_ADMIN_TOKEN ?? ""}`,
  });
  if (answer.startsWith("200 ")) counts.restocked += 1;
  else fail(`POST /restock: ${answer}`);
}

async function worker(id) {
  for (let n = 1; !stopping; n++) {
    counts.sent += 1;
    const answer = await post(`${JAFFLR}/toastie`, {
      customer: `rehearsal-${id}`,
      ingredients: ["cheese"],
      doneness: "light",
    });
    if (answer.startsWith("200 ")) {
      counts.ok += 1;
      if (first) console.log("load: first toastie ok");
      first = false;
    } else if (answer.startsWith("409 ")) {
      counts.ok += 1; // out of stock is a proper answer, not an outage
      await restock();
    } else fail(`POST /toastie #${n} of worker ${id}: ${answer}`);
  }
}

process.on("SIGTERM", () => {
  stopping = true;
});
await restock();
await Promise.all(
  Array.from({ length: Number(env.LOAD_CONCURRENCY ?? 2) }, (_, i) => worker(i + 1)),
);
console.log(
  `load: done sent=${counts.sent} ok=${counts.ok} failed=${counts.failed} restocked=${counts.restocked}`,
);
