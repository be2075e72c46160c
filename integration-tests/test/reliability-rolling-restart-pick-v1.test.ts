/**
 * Reliability 3 — a rolling restart loses nothing (src/reliability/rolling-restart.ts), with v1
 * traffic: toasties for gordon, whom the flag leaves on v1 (some in the original's query form,
 * some cooking longer), and v1 picks. Deleted with v1.
 */
import { toastie } from "../src/reliability/requests";
import { pickV1 } from "../src/reliability/requests-pick-v1";
import { describeRollingRestart } from "../src/reliability/rolling-restart";

describeRollingRestart("rolling restart of every instance under constant v1 load", {
  v2Customers: ["gita"],
  kinds: ["toastie-v1", "pick-v1"],
  workers: ({ chillybin, jafflr }) => [
    (n) =>
      toastie(jafflr.url, "gordon", ["cheese", "ham"], {
        kind: "toastie-v1",
        queryForm: n % 2 === 0,
      }),
    () =>
      toastie(jafflr.url, "gordon", ["sheese", "tomato"], {
        kind: "toastie-v1",
        doneness: "medium",
      }),
    () => toastie(jafflr.url, "gordon", ["cheese", "vegemite"], { kind: "toastie-v1" }),
    () => pickV1(chillybin.url, "tomato"),
  ],
});
