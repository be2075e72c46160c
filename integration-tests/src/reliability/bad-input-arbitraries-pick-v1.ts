/**
 * Random invalid requests for chillybin's v1 `GET /pick` (see bad-input-arbitraries.ts): a valid
 * name and quantity with one poison planted in the query string. Deleted with v1.
 */
import fc from "fast-check";
import {
  encodeQuery,
  type GeneratedRequest,
  NAME,
  type Params,
  QUANTITY_PARAM,
  queryText,
  unknownKey,
  validName,
} from "./bad-input-arbitraries";

const pickParams = fc.tuple(validName, fc.integer({ min: 1, max: 3 })).map(
  ([name, quantity]): Params => [
    ["name", name],
    ["quantity", String(quantity)],
  ],
);
const pickPoison: fc.Arbitrary<(p: Params) => Params> = fc.oneof(
  queryText(6)
    .filter((s) => !QUANTITY_PARAM.test(s))
    .map(
      (quantity) => (p: Params) =>
        p.map(([k, v]): [string, string] => [k, k === "quantity" ? quantity : v]),
    ),
  queryText(40)
    .filter((s) => !NAME.test(s))
    .map(
      (name) => (p: Params) => p.map(([k, v]): [string, string] => [k, k === "name" ? name : v]),
    ),
  fc
    .constantFrom("name", "quantity")
    .map((k) => (p: Params) => [...p, [k, p.find(([n]) => n === k)?.[1] ?? ""]] as Params),
  fc.constant((p: Params) => p.filter(([k]) => k !== "name")),
  fc.tuple(unknownKey(["name", "quantity"]), queryText(8)).map(
    ([k, v]) =>
      (p: Params) =>
        [...p, [k, v]] as Params,
  ),
  fc
    .constantFrom("name[]", "name[x]", "quantity[]")
    .map((k) => (p: Params) => [...p, [k, "1"]] as Params),
);
export const chillybinPick = fc.tuple(pickParams, pickPoison).map(
  ([params, poison]): GeneratedRequest => ({
    service: "chillybin",
    request: { method: "GET", path: `/pick?${encodeQuery(poison(params))}` },
  }),
);

export const INVALID_REQUESTS_PICK_V1 = {
  "chillybin GET /pick": chillybinPick,
} satisfies Record<string, fc.Arbitrary<GeneratedRequest>>;
