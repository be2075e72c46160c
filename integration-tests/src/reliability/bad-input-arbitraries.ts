/**
 * fast-check generators of random *invalid* requests for the property-based half of the
 * bad-input suite. Each one starts from a plausible request (real ingredient names, sane
 * quantities, real customers) and plants at least one "poison" that validation must catch — a
 * bad field, an unknown key, a wrong type, broken JSON, a wrong media type — so every request is
 * wrong by construction, whatever else the generator chose. The property: a 4xx problem, and
 * nothing changed.
 */
import fc from "fast-check";
import { ADMIN_TOKEN, type Service } from "./bad-inputs";
import type { SendOptions } from "./raw-http";

export interface GeneratedRequest {
  service: Service;
  request: SendOptions;
}

export const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
export const QUANTITY_PARAM = /^(100|[1-9][0-9]?)$/;
const NAMES = ["bread", "cheese", "ham", "pineapple", "sheese", "tomato", "vegemite"];
const DONENESS = ["light", "medium", "well-done", "burnt"];

export const validName = fc.constantFrom(...NAMES);
const validQuantity = fc.integer({ min: 1, max: 3 });
const validCustomer = fc.constantFrom("gita", "gordon", "anna-maria", "Ω chef 👩‍🍳", "o'brien");

/** Any JSON value that is not an integer from 1 to 100. */
const badQuantity = fc.oneof(
  fc.integer({ max: 0 }),
  fc.integer({ min: 101 }),
  fc.double({ noInteger: true }),
  fc.string({ maxLength: 4 }),
  fc.constantFrom(null, true, false, [], {}, [1], "1", 1e308, -1e-7),
);

/** Anything that is not a 1-32 character lower-case ingredient name. */
const badName = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !NAME.test(s)),
  fc.constantFrom(
    "",
    "Cheese",
    " cheese",
    "cheese ",
    "cheese'; DROP TABLE ingredients; --",
    "ch\u0000eese",
    "chee\nse",
    "a".repeat(33),
    "../cheese",
    "1cheese",
  ),
  fc.integer(),
  fc.constantFrom(null, true, {}, ["cheese"]),
);

/** Anything that is not 1-64 printable characters without surrounding spaces. */
const badCustomer = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    " gita",
    "gita ",
    "gi\u0000ta",
    "gita\r\nX-Admin: 1",
    "\u202e",
    "\u2028",
    "\u0007",
  ),
  fc.string({ unit: "grapheme", minLength: 65, maxLength: 80 }).filter((s) => [...s].length > 64),
  fc.string({ unit: "binary", maxLength: 10 }).map((s) => `${s}\u0001`),
  fc.integer(),
  fc.constantFrom(null, true, [], {}, ["gita"]),
);

/**
 * A field name the endpoint does not know. Never `__proto__` (an object literal would swallow
 * it) and no brackets: the query parser reads `[limit]` as `limit` (bracketed names have their
 * own, deliberate poisons).
 */
export const unknownKey = (known: string[]) =>
  fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((k) => !known.includes(k) && k !== "__proto__" && !/[[\]]/.test(k));

/** A JSON body that is not an object. */
const notAnObject = fc.oneof(
  fc.array(fc.jsonValue(), { maxLength: 3 }),
  fc.string({ maxLength: 10 }),
  fc.integer(),
  fc.constant(null),
);

const jsonPost = (
  path: string,
  body: string,
  contentType = "application/json",
  extra: Record<string, string> = {},
): SendOptions => ({
  method: "POST",
  path,
  headers: { "Content-Type": contentType, ...extra },
  body,
});

/** Serialised `value` with one of the body-level poisons, or as is when the poison is in the value. */
const bodyPoison = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constant((text: string) => ({ text, contentType: "application/json" })),
  },
  {
    weight: 1,
    arbitrary: fc.nat().map((cut) => (text: string) => ({
      text: text.slice(0, 1 + (cut % (text.length - 1))), // any proper prefix of an object is broken JSON
      contentType: "application/json",
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "application/json; charset=latin1",
      )
      .map((contentType) => (text: string) => ({ text, contentType })),
  },
);

// ── chillybin POST /v2/pick ──

const v2Order = fc.record({
  customer: validCustomer,
  items: fc.array(fc.record({ ingredient: validName, quantity: validQuantity }), {
    minLength: 1,
    maxLength: 4,
  }),
});

type Order = { customer: unknown; items: unknown; [key: string]: unknown };

const v2FieldPoison: fc.Arbitrary<(o: Order) => unknown> = fc.oneof(
  badCustomer.map((customer) => (o: Order) => ({ ...o, customer })),
  fc.tuple(fc.nat(), badQuantity).map(([k, quantity]) => (o: Order) => {
    const items = [...(o.items as object[])];
    items[k % items.length] = { ...(items[k % items.length] as object), quantity };
    return { ...o, items };
  }),
  fc.tuple(fc.nat(), badName).map(([k, ingredient]) => (o: Order) => {
    const items = [...(o.items as object[])];
    items[k % items.length] = { ...(items[k % items.length] as object), ingredient };
    return { ...o, items };
  }),
  fc.tuple(unknownKey(["customer", "items"]), fc.jsonValue()).map(([key, value]) => (o: Order) => ({
    ...o,
    [key]: value,
  })),
  fc
    .oneof(
      fc.constant([]),
      badName,
      fc
        .integer({ min: 21, max: 25 })
        .map((n) => Array(n).fill({ ingredient: "cheese", quantity: 1 })),
    )
    .map((items) => (o: Order) => ({ ...o, items })),
  notAnObject.map((value) => () => value),
  // The original's one-ingredient form, with a bad quantity.
  fc.tuple(validName, badQuantity).map(([ingredient, quantity]) => (o: Order) => ({
    customer: o.customer,
    ingredient,
    quantity,
  })),
);

const chillybinV2 = fc
  .tuple(v2Order, v2FieldPoison, bodyPoison, fc.option(fc.uuid(), { nil: undefined }))
  .map(([order, poison, encode, key]): GeneratedRequest => {
    const { text, contentType } = encode(JSON.stringify(poison(order)));
    return {
      service: "chillybin",
      request: jsonPost("/v2/pick", text, contentType, key ? { "Idempotency-Key": key } : {}),
    };
  });

// ── chillybin POST /restock (with the admin token: only validation stands in the way) ──

const restockLevels = fc.dictionary(validName, fc.integer({ min: 0, max: 100 }), {
  minKeys: 1,
  maxKeys: 4,
});
const restockPoison: fc.Arbitrary<(levels: Record<string, unknown>) => unknown> = fc.oneof(
  fc
    .tuple(
      validName,
      fc.oneof(
        fc.integer({ max: -1 }),
        fc.integer({ min: 10_001 }),
        fc.double({ noInteger: true }),
        fc.constantFrom(null, "10", true, [], {}),
      ),
    )
    .map(([name, level]) => (levels: Record<string, unknown>) => ({ ...levels, [name]: level })),
  fc
    .tuple(
      badName.filter((n): n is string => typeof n === "string" && n !== "__proto__"),
      fc.integer({ min: 0, max: 100 }),
    )
    .map(([name, level]) => (levels: Record<string, unknown>) => ({ ...levels, [name]: level })),
  notAnObject.map((value) => () => value),
  fc.constant(() => ({})),
);
const chillybinRestock = fc
  .tuple(restockLevels, restockPoison, bodyPoison)
  .map(([levels, poison, encode]): GeneratedRequest => {
    const { text, contentType } = encode(JSON.stringify(poison(levels)));
    return {
      service: "chillybin",
      request: jsonPost("/restock", text, contentType, { Authorization: `Bearer ${ADMIN_TOKEN}` }),
    };
  });

// ── query strings: chillybin GET /pick and GET /orders, jafflr POST /toastie?… ──

export type Params = [string, string][];
export const encodeQuery = (params: Params) =>
  params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
/** Query-string text for a poison: any valid Unicode (a lone surrogate cannot be percent-encoded). */
export const queryText = (maxLength: number) => fc.string({ unit: "grapheme", maxLength });

const ordersPoison: fc.Arbitrary<Params> = fc.oneof(
  queryText(6)
    .filter((s) => !QUANTITY_PARAM.test(s))
    .map((limit): Params => [["limit", limit]]),
  fc.constantFrom<Params>(
    [["customer", ""]],
    [["customer", " gita"]],
    [["customer", "x".repeat(65)]],
    [["customer[]", "gita"]],
    [
      ["limit", "5"],
      ["limit", "6"],
    ],
  ),
  fc.tuple(unknownKey(["customer", "limit"]), queryText(8)).map(([k, v]): Params => [[k, v]]),
);
const chillybinOrders = ordersPoison.map(
  (params): GeneratedRequest => ({
    service: "chillybin",
    request: { method: "GET", path: `/orders?${encodeQuery(params)}` },
  }),
);

// ── jafflr POST /toastie: JSON body and query form ──

const toastieOrder = fc.record(
  {
    customer: validCustomer,
    ingredients: fc.array(validName, { maxLength: 4 }).map((rest) => ["cheese", ...rest]),
    doneness: fc.constantFrom(...DONENESS),
  },
  { requiredKeys: ["ingredients"] },
);
type Toastie = {
  customer?: unknown;
  ingredients: unknown;
  doneness?: unknown;
  [key: string]: unknown;
};

const toastiePoison: fc.Arbitrary<(t: Toastie) => unknown> = fc.oneof(
  badCustomer.map((customer) => (t: Toastie) => ({ ...t, customer })),
  fc
    .oneof(
      fc.string({ maxLength: 10 }).filter((s) => !DONENESS.includes(s)),
      fc.integer(),
      fc.constantFrom(null, true, ["light"]),
    )
    .map((doneness) => (t: Toastie) => ({ ...t, doneness })),
  fc.tuple(fc.nat(), badName).map(([k, name]) => (t: Toastie) => {
    const ingredients = [...(t.ingredients as unknown[])];
    ingredients[k % ingredients.length] = name;
    return { ...t, ingredients };
  }),
  fc
    .array(fc.constantFrom("bread", "ham", "tomato", "vegemite", "pineapple"), {
      minLength: 1,
      maxLength: 4,
    })
    .map((ingredients) => (t: Toastie) => ({ ...t, ingredients })), // no cheese
  fc
    .oneof(
      fc.constant([]),
      fc.integer({ min: 11, max: 14 }).map((n) => Array(n).fill("cheese")),
      fc.constantFrom("cheese", 7, null, {}),
    )
    .map((ingredients) => (t: Toastie) => ({ ...t, ingredients })),
  fc
    .tuple(unknownKey(["customer", "ingredients", "doneness"]), fc.jsonValue())
    .map(([key, value]) => (t: Toastie) => ({
      ...t,
      [key]: value,
    })),
  notAnObject.filter((v) => !(Array.isArray(v) && v.length === 0)).map((value) => () => value),
);
const jafflrToastieJson = fc
  .tuple(toastieOrder, toastiePoison, bodyPoison)
  .map(([order, poison, encode]): GeneratedRequest => {
    const { text, contentType } = encode(JSON.stringify(poison(order)));
    return { service: "jafflr", request: jsonPost("/toastie", text, contentType) };
  });

const toastieParams = fc
  .tuple(toastieOrder)
  .map(
    ([t]): Params => [
      ...(t.ingredients as string[]).map((i): [string, string] => ["i", i]),
      ...(t.customer === undefined ? [] : [["customer", String(t.customer)] as [string, string]]),
      ...(t.doneness === undefined ? [] : [["doneness", String(t.doneness)] as [string, string]]),
    ],
  );
const toastieQueryPoison: fc.Arbitrary<(p: Params) => Params> = fc.oneof(
  queryText(40)
    .filter((s) => !NAME.test(s))
    .map((name) => (p: Params) => [...p, ["i", name]] as Params),
  fc
    .constantFrom("doneness", "customer")
    .map((k) => (p: Params) => [...p, [k, "light"], [k, "burnt"]] as Params),
  fc
    .constantFrom("i[x]", "doneness[]", "customer[a]")
    .map((k) => (p: Params) => [...p, [k, "cheese"]] as Params),
  fc.tuple(unknownKey(["i", "customer", "doneness"]), queryText(8)).map(
    ([k, v]) =>
      (p: Params) =>
        [...p, [k, v]] as Params,
  ),
  fc.constant((p: Params) => p.filter(([k]) => k !== "i").concat([["i", "ham"]])),
);
const jafflrToastieQuery = fc.tuple(toastieParams, toastieQueryPoison).map(
  ([params, poison]): GeneratedRequest => ({
    service: "jafflr",
    request: { method: "POST", path: `/toastie?${encodeQuery(poison(params))}` },
  }),
);

/** Every generator, by endpoint. */
export const INVALID_REQUESTS = {
  "chillybin POST /v2/pick": chillybinV2,
  "chillybin POST /restock": chillybinRestock,
  "chillybin GET /orders": chillybinOrders,
  "jafflr POST /toastie (JSON)": jafflrToastieJson,
  "jafflr POST /toastie (query)": jafflrToastieQuery,
} satisfies Record<string, fc.Arbitrary<GeneratedRequest>>;
