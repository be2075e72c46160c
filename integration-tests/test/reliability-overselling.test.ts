/**
 * Reliability 1 — no overselling (src/reliability/overselling.ts) with v2 traffic: half v2
 * multi-item orders at chillybin (some with an Idempotency-Key), half toasties for gita, whom the
 * flag puts on v2 (and the foxtrot's step 3, everyone) — shuffled, seeded.
 */
import { randomUUID } from "node:crypto";
import { describeOverselling } from "../src/reliability/overselling";
import { pickV2, toastie } from "../src/reliability/requests";

describeOverselling("no overselling: 500 concurrent v2 orders and toasties against 100 cheeses", {
  request: (i, { chillybin, jafflr }) =>
    i % 2 === 0
      ? pickV2(
          chillybin.url,
          `order-${i}`,
          [
            { ingredient: "cheese", quantity: 1 },
            { ingredient: "ham", quantity: 1 + (i % 3) },
            { ingredient: "bread", quantity: 2 },
          ],
          i % 4 === 0 ? randomUUID() : undefined,
        )
      : toastie(jafflr.url, "gita", ["cheese", "vegemite"], {
          kind: "toastie-v2",
          queryForm: i % 4 === 1,
        }),
});
