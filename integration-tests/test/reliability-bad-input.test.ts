/**
 * Reliability 5 — bad input gets a 4xx problem and changes nothing (src/reliability/bad-input.ts),
 * for every endpoint of both services but v1's.
 */

import { describeBadInput } from "../src/reliability/bad-input";
import { INVALID_REQUESTS } from "../src/reliability/bad-input-arbitraries";
import { CORPUS, PROTOCOL_ERRORS } from "../src/reliability/bad-inputs";

describeBadInput("bad input gets a 4xx problem and changes nothing", {
  corpus: CORPUS,
  minimum: 60,
  endpoints: [
    "chillybin /",
    "chillybin /v2/pick",
    "chillybin /orders",
    "chillybin /orders/:id",
    "chillybin /restock",
    "chillybin /health",
    "jafflr /",
    "jafflr /toastie",
    "jafflr /ready",
  ],
  protocolErrors: PROTOCOL_ERRORS,
  invalidRequests: INVALID_REQUESTS,
});
