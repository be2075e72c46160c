/**
 * Reliability 1 — no overselling (src/reliability/overselling.ts) with v1 in the mix, as the stall
 * runs between the foxtrot's steps 2 and 3: a quarter each of v1 picks, v2 multi-item orders (some
 * with an Idempotency-Key), v1 toasties (some in the original's query form) and v2 toasties —
 * shuffled, seeded. Deleted with v1.
 */
import { randomUUID } from "node:crypto";
import { describeOverselling } from "../src/reliability/overselling";
import { pickV2, toastie } from "../src/reliability/requests";
import { pickV1 } from "../src/reliability/requests-pick-v1";

const V2_CUSTOMERS = ["gita", "hamish"];

describeOverselling(
  "no overselling: 500 concurrent picks, orders and toasties (v1 and v2) against 100 cheeses",
  {
    v2Customers: V2_CUSTOMERS,
    request(i, { chillybin, jafflr }) {
      switch (i % 4) {
        case 0:
          return pickV1(chillybin.url, "cheese", 1);
        case 1:
          return pickV2(
            chillybin.url,
            `order-${i}`,
            [
              { ingredient: "cheese", quantity: 1 },
              { ingredient: "ham", quantity: 1 + (i % 3) },
              { ingredient: "bread", quantity: 2 },
            ],
            i % 8 === 1 ? randomUUID() : undefined,
          );
        case 2:
          return toastie(jafflr.url, "gordon", ["cheese", "tomato"], {
            kind: "toastie-v1",
            queryForm: i % 8 === 2,
          });
        default:
          return toastie(jafflr.url, V2_CUSTOMERS[i % 2] as string, ["cheese", "vegemite"], {
            kind: "toastie-v2",
          });
      }
    },
  },
);
