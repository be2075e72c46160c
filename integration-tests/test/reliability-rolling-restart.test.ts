/**
 * Reliability 3 — a rolling restart loses nothing (src/reliability/rolling-restart.ts), with v2
 * traffic: toasties for gita, whom the flag puts on v2 (and the foxtrot's step 3, everyone), some
 * cooking longer, and v2 orders with Idempotency-Keys.
 */
import { randomUUID } from "node:crypto";
import { pickV2, toastie } from "../src/reliability/requests";
import { describeRollingRestart } from "../src/reliability/rolling-restart";

describeRollingRestart("rolling restart of every instance under constant load", {
  kinds: ["toastie-v2", "pick-v2"],
  workers: ({ chillybin, jafflr }) => [
    () => toastie(jafflr.url, "gita", ["cheese", "vegemite"], { kind: "toastie-v2" }),
    () => toastie(jafflr.url, "gita", ["cheese", "ham"], { kind: "toastie-v2" }),
    (n) =>
      toastie(jafflr.url, "gita", ["sheese", "tomato"], {
        kind: "toastie-v2",
        doneness: "medium",
        queryForm: n % 2 === 0,
      }),
    (n) =>
      pickV2(
        chillybin.url,
        `rolling-${n}`,
        [
          { ingredient: "cheese", quantity: 1 },
          { ingredient: "bread", quantity: 1 },
        ],
        randomUUID(),
      ),
  ],
});
