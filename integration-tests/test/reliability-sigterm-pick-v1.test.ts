/**
 * Reliability 2 — SIGTERM under load (src/reliability/sigterm.ts) with v1 traffic: toasties for
 * gordon, whom the flag leaves on v1 (one GET /pick per ingredient), at three donenesses, and a
 * stream of v1 picks. Deleted with v1.
 */

import { toastie } from "../src/reliability/requests";
import { pickV1 } from "../src/reliability/requests-pick-v1";
import { DONENESSES, describeSigtermUnderLoad } from "../src/reliability/sigterm";

describeSigtermUnderLoad("SIGTERM under load, v1 toasties and picks: jafflr, then chillybin", {
  v2Customers: ["gita"],
  workers: ({ chillybin, jafflr }) => [
    ...DONENESSES.map(
      (doneness) => () =>
        toastie(jafflr.url, "gordon", ["cheese", "tomato"], { kind: "toastie", doneness }),
    ),
    () => pickV1(chillybin.url, "tomato"),
  ],
});
