import { randomUUID } from "node:crypto";
import type { Response } from "express";
import { clip, HttpProblem, invalidRequest, parseRequest, promClient, z } from "tpi";
import type { AppDeps } from "./app";
import { DONENESS, type Slot } from "./grill";
import { pickV1 } from "./pick-v1";
import { type Picked, pickV2 } from "./pick-v2";
import { problem } from "./problems";

// A toastie: read and check the order (chillybin's rules and words), queue for the grill, pick
// its ingredients from chillybin, cook. "sheese" counts as cheese: it is the dairy-free one.

const CUSTOMER_RULE =
  "customer must be 1-64 printable characters, not blank, no leading or trailing spaces";
const quote = (input: unknown) => JSON.stringify(clip(String(input)));

/** chillybin's rule: 1-64 code points, no control, format or separator characters (the emoji ZWJ aside), no outer spaces. */
export function isValidCustomer(s: string): boolean {
  const printable = /^[^\p{C}\p{Zl}\p{Zp}]+$/u.test(s.replaceAll("\u200d", ""));
  return [...s].length <= 64 && s.trim() === s && printable;
}

const doneness = z.enum(DONENESS, {
  error: ({ input }) =>
    `doneness must be one of ${DONENESS.join(", ")}${typeof input === "string" ? `, got ${quote(input)}` : ""}`,
});
const name = z
  .string({ error: "each ingredient must be a string" })
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, {
    error: ({ input }) =>
      `${quote(input)} is not an ingredient name: use 1-32 lowercase letters, digits, - or _, starting with a letter`,
  });
const ingredients = (what: string) =>
  z
    .array(name, {
      error: ({ input }) =>
        input === undefined
          ? "name at least one ingredient, including cheese"
          : `${what} must be a list of ingredient names`,
    })
    .min(1, `${what} must have 1 to 10 ingredients, got 0`)
    .max(10, {
      error: ({ input }) => `${what} must have 1 to 10 ingredients, got ${(input as []).length}`,
    })
    // Only once every name is valid: "no cheese" about a list of typos would mislead.
    .refine((names) => names.some((n) => n === "cheese" || n === "sheese"), {
      error: "No cheese on this toastie: add cheese or sheese",
      when: (payload) => payload.issues.length === 0,
    });
const customer = z.string({ error: CUSTOMER_RULE }).refine(isValidCustomer, CUSTOMER_RULE);
const order = { doneness: doneness.default("light"), customer: customer.default("anonymous") };

export const ToastieOrderBody = z
  .strictObject({ ingredients: ingredients("ingredients"), ...order })
  .openapi("ToastieOrder");
/** The original's query form, `?i=cheese&i=vegemite`: one `i` is a string, more an array. */
export const ToastieOrderQuery = z.strictObject({
  i: z.preprocess((v) => (typeof v === "string" ? [v] : v), ingredients("i")),
  ...order,
});
export const Toastie = z
  .strictObject({
    status: z.literal("done"),
    customer: z.string(),
    ingredients: z.array(z.string()).openapi({ description: "With two slices of bread." }),
    doneness,
    pickedVia: z.enum(["v1", "v2"]),
    orderId: z.string().optional().openapi({ description: "chillybin's order id (v2)." }),
  })
  .openapi("Toastie");
export type ToastieOrder = z.output<typeof ToastieOrderBody>;

/** From a JSON body or the query string (the legacy GET's only form), never both; one 400 for all. */
export function parseToastieOrder({ query, body }: { query: object; body?: unknown }) {
  if (body === undefined || (body?.constructor === Object && Object.keys(body).length === 0)) {
    const { i, ...rest } = parseRequest(ToastieOrderQuery, query, "query", "customer, i, doneness");
    return { ...rest, ingredients: i };
  }
  const first = Object.keys(query)[0];
  const both = "send the order either as a JSON body or in the query string, not both";
  if (first !== undefined) throw invalidRequest([{ parameter: clip(first), detail: both }]);
  const like = 'the body must be a JSON object like {"ingredients":["cheese"]}';
  if (body?.constructor !== Object) throw invalidRequest([{ pointer: "", detail: like }]);
  return parseRequest(ToastieOrderBody, body, "body", "customer, ingredients, doneness");
}

/** Exactly one header of 1-255 visible ASCII characters, passed on to chillybin. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function parseIdempotencyKey(key: string | string[] | undefined) {
  if (key === undefined || (typeof key === "string" && IDEMPOTENCY_KEY.test(key))) return key;
  const detail = "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)";
  throw invalidRequest([{ header: "Idempotency-Key", detail }]);
}

/** What became of a checked toastie; no `pickedVia` when it failed before picking. */
export type ToastieOutcome = Omit<ToastieOrder, "doneness"> & {
  doneness: string;
  at: string;
  status: number;
  pickedVia?: "v1" | "v2";
  orderId?: string;
  problem?: { title: string; detail?: string };
};

/** Serves one checked order on `res`: POST /toastie's and the legacy GET's. */
export function toastieServer(deps: AppDeps) {
  const { logger, chillybin, grill } = deps;
  const served = new promClient.Counter({
    name: "toasties_total",
    help: "Toasties served, by how their ingredients were picked.",
    labelNames: ["picked_via"],
    registers: [deps.metrics.registry],
  });

  return async (res: Response, order: ToastieOrder, idempotencyKey: string = randomUUID()) => {
    const { customer, doneness } = order;
    let [picked, slot, failure]: [Picked?, Slot?, unknown?] = [];
    // A customer who hangs up while queued leaves the queue before anything is picked for them.
    const gone = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) gone.abort(new HttpProblem(499, "Client Closed Request"));
    });
    try {
      // While chillybin is known to be unreachable the answer is quick and nothing queues for it.
      const { reachable, reason = "no answer", checkedAt: at } = chillybin.reachability;
      const down = `chillybin could not be reached (${reason}, at ${at}); nothing was cooked.`;
      const retryAfter = chillybin.retryAfterSeconds;
      if (!reachable) throw problem("cold-store-unavailable", down, { retryAfter });
      slot = await grill.reserve(gone.signal);
      const ingredients = [...order.ingredients, "bread", "bread"]; // as the original did
      const pick = deps.features.isEnabled("pick.v2", order.customer) ? pickV2 : pickV1;
      picked = await pick(chillybin, { customer, ingredients, idempotencyKey });
      if (picked.problem) throw picked.problem;
      await slot.cook(doneness);
      served.inc({ picked_via: picked.via });
      logger.info({ customer, pickedVia: picked.via, doneness }, "toastie done");
      const { via: pickedVia, orderId } = picked;
      const done = { status: "done", customer, ingredients, doneness, pickedVia, orderId } as const;
      res.json(done satisfies z.input<typeof Toastie>);
    } catch (err) {
      failure = err;
    } finally {
      slot?.release();
    }
    const p = failure instanceof HttpProblem ? failure : undefined;
    const status = p?.status ?? (failure === undefined ? 200 : 500);
    const title = p?.title ?? "Internal Server Error";
    deps.onToastie?.({
      ...{ ...order, at: new Date().toISOString(), status },
      ...(picked && { pickedVia: picked.via }),
      ...(picked?.orderId && { orderId: picked.orderId }),
      ...(status !== 200 && { problem: { title, detail: p?.options.detail } }),
    });
    if (failure !== undefined) throw failure;
  };
}
