/**
 * Reliability 5 — bad input gets a 4xx problem and changes nothing (src/reliability/bad-input.ts),
 * for chillybin's v1 `GET /pick`. Deleted with v1.
 */

import { describeBadInput } from "../src/reliability/bad-input";
import { INVALID_REQUESTS_PICK_V1 } from "../src/reliability/bad-input-arbitraries-pick-v1";
import { CORPUS_PICK_V1 } from "../src/reliability/bad-inputs-pick-v1";

describeBadInput("bad input to v1's GET /pick gets a 4xx problem and changes nothing", {
  corpus: CORPUS_PICK_V1,
  minimum: 25,
  endpoints: ["chillybin /pick"],
  invalidRequests: INVALID_REQUESTS_PICK_V1,
});
