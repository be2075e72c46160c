/**
 * Reliability 2 — SIGTERM under load (src/reliability/sigterm.ts) with v2 traffic: toasties for
 * gita, whom the flag puts on v2 (and the foxtrot's step 3, everyone), at three donenesses, and a
 * stream of v2 orders with Idempotency-Keys.
 */
import { randomUUID } from "node:crypto";
import { pickV2, toastie } from "../src/reliability/requests";
import { DONENESSES, describeSigtermUnderLoad } from "../src/reliability/sigterm";

describeSigtermUnderLoad("SIGTERM under load: jafflr, then chillybin", {
  workers: ({ chillybin, jafflr }) => [
    ...DONENESSES.map(
      (doneness) => () =>
        toastie(jafflr.url, "gita", ["cheese", "vegemite"], { kind: "toastie", doneness }),
    ),
    (n) =>
      pickV2(
        chillybin.url,
        `stream-${n}`,
        [
          { ingredient: "cheese", quantity: 1 },
          { ingredient: "bread", quantity: 2 },
        ],
        randomUUID(),
      ),
  ],
});
