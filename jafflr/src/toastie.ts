import { randomUUID } from "node:crypto";
import type { Response } from "express";
import { clip, HttpProblem, invalidRequest, parseRequest, promClient, z } from "tpi";
import type { AppDeps } from "./app";
import { DONENESS, type Slot } from "./grill";
import { pickV1 } from "./pick-v1";
import { type Picked, pickV2 } from "./pick-v2";
import { problem } from "./problems";

// A toastie: read and check the order (chillybin's rules and words), queue for the grill, pick
// the ingredients (v1 or v2, as the `pick.v2` flag says for this customer), cook.

const CUSTOMER_RULE =
  "customer must be 1-64 printable characters, not blank, no leading or trailing spaces";
const NAME_RULE = "1-32 lowercase letters, digits, - or _, starting with a letter";
const quote = (input: unknown) => JSON.stringify(clip(String(input)));

/** chillybin's rule: 1-64 code points, no control, format or separator characters (the emoji ZWJ aside), no outer spaces. */
export function isValidCustomer(s: string): boolean {
  const printable = /^[^\p{C}\p{Zl}\p{Zp}]+$/u.test(s.replaceAll("\u200d", ""));
  return [...s].length <= 64 && s.trim() === s && printable;
}

const customer = z.string({ error: CUSTOMER_RULE }).refine(isValidCustomer, CUSTOMER_RULE);
const doneness = z.enum(DONENESS, {
  error: ({ input }) =>
    `doneness must be one of ${DONENESS.join(", ")}${typeof input === "string" ? `, got ${quote(input)}` : ""}`,
});
const name = z
  .string({ error: "each ingredient must be a string" })
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, {
    error: ({ input }) => `${quote(input)} is not an ingredient name: use ${NAME_RULE}`,
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
const order = {
  doneness: doneness.default("light"),
  customer: customer.default("anonymous"),
};

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

/** From a JSON body or the query string, never both; one 400 lists all that is wrong. */
export function parseToastieOrder({ query, body }: { query: object; body: unknown }) {
  const empty = body?.constructor === Object && Object.keys(body).length === 0;
  if (body === undefined || empty) return parseQueryOrder(query);
  const first = Object.keys(query)[0];
  if (first !== undefined) {
    const detail = "send the order either as a JSON body or in the query string, not both";
    throw invalidRequest([{ parameter: clip(first), detail }]);
  }
  if (body?.constructor !== Object) {
    const detail = 'the body must be a JSON object like {"ingredients":["cheese"]}';
    throw invalidRequest([{ pointer: "", detail }]);
  }
  return parseRequest(ToastieOrderBody, body, "body", "customer, ingredients, doneness");
}

/** The query form only: the legacy GET /toastie reads nothing else. */
export function parseQueryOrder(query: object): ToastieOrder {
  const { i, ...rest } = parseRequest(ToastieOrderQuery, query, "query", "customer, i, doneness");
  return { ...rest, ingredients: i };
}

/** Exactly one header of 1-255 visible ASCII characters, passed on to chillybin. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function parseIdempotencyKey(header: string | string[] | undefined) {
  if (header === undefined || (typeof header === "string" && IDEMPOTENCY_KEY.test(header))) {
    return header;
  }
  const detail = "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)";
  throw invalidRequest([{ header: "Idempotency-Key", detail }]);
}

export type { ToastieOutcome } from "./app";

type Deps = Pick<AppDeps, "logger" | "features" | "chillybin" | "grill" | "onToastie">;

/** Serves one checked order on `res`: POST /toastie's and the legacy GET's. */
export type ServeToastie = (res: Response, order: ToastieOrder, key?: string) => Promise<void>;

export function toastieServer(deps: Deps & { registry: promClient.Registry }): ServeToastie {
  const { logger, chillybin, grill } = deps;
  const served = new promClient.Counter({
    name: "toasties_total",
    help: "Toasties served, by how their ingredients were picked.",
    labelNames: ["picked_via"],
    registers: [deps.registry],
  });

  return async (res, order, idempotencyKey = randomUUID()) => {
    const { customer, doneness } = order;
    let picked: Picked | undefined;
    let slot: Slot | undefined;
    let failure: unknown;
    // A customer who hangs up while queued leaves the queue before anything is picked for them.
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort(new HttpProblem(499, "Client Closed Request"));
    };
    res.once("close", onClose);
    try {
      // While chillybin is known to be unreachable the answer is quick and nothing queues for it.
      const { reachable, reason = "no answer", checkedAt } = chillybin.reachability;
      if (!reachable) {
        const detail = `chillybin could not be reached (${reason}, at ${checkedAt}); nothing was cooked.`;
        throw problem("cold-store-unavailable", detail, {
          retryAfter: chillybin.retryAfterSeconds,
        });
      }
      slot = await grill.reserve(gone.signal);
      const ingredients = [...order.ingredients, "bread", "bread"]; // as the original did
      // The foxtrot's one decision, per request so a flag flip applies at once.
      const pick = deps.features.isEnabled("pick.v2", order.customer) ? pickV2 : pickV1;
      picked = await pick(chillybin, { customer, ingredients, idempotencyKey });
      if (!picked.ok) throw picked.problem;
      await slot.cook(doneness);
      served.inc({ picked_via: picked.via });
      logger.info({ customer, pickedVia: picked.via, doneness }, "toastie done");
      const done = {
        status: "done" as const,
        customer,
        ingredients,
        doneness,
        pickedVia: picked.via,
      };
      res.json({ ...done, orderId: picked.orderId } satisfies z.input<typeof Toastie>);
    } catch (err) {
      failure = err;
    } finally {
      slot?.release();
      res.off("close", onClose);
    }
    const p = failure instanceof HttpProblem ? failure : undefined;
    const status = p?.status ?? (failure === undefined ? 200 : 500);
    const told = { ...order, at: new Date().toISOString(), status };
    const title = p?.title ?? "Internal Server Error";
    try {
      deps.onToastie?.({
        ...told,
        ...(picked && { pickedVia: picked.via }),
        ...(picked?.ok && picked.orderId && { orderId: picked.orderId }),
        ...(status !== 200 && { problem: { title, detail: p?.options.detail } }),
      });
    } catch (err) {
      logger.error({ err }, "onToastie listener failed"); // it must not change the answer
    }
    if (failure !== undefined) throw failure;
  };
}
