import { randomUUID } from "node:crypto";
import type { Response } from "express";
import { HttpProblem, type Logger, promClient, z } from "tpi";
import type { ChillybinClient } from "./chillybin-client";
import type { Features } from "./features";
import type { FlagName } from "./flags";
import { DONENESS, type Doneness, type Grill } from "./grill";
import { pickV1 } from "./pick-v1";
import { type Picked, pickV2 } from "./pick-v2";
import { coldStoreUnavailable, type FieldError, invalidRequest } from "./problems";

/**
 * A toastie, from the order to the answer: read and check the order, queue for the grill, pick
 * the ingredients from chillybin (v1 or v2, as the `pick.v2` flag says for this customer), cook.
 */

export interface ToastieOrder {
  customer: string;
  /** What the customer asked for, in order, without the bread. */
  ingredients: string[];
  doneness: Doneness;
}

/**
 * What became of one toastie that passed validation, done or failed: the stall page (src/page/)
 * listens through createApp's `onToastie` to show recent toasties and the foxtrot meter.
 */
export interface ToastieOutcome {
  /** When the answer was decided (ISO 8601). */
  at: string;
  customer: string;
  /** What the customer asked for, without the bread. */
  ingredients: string[];
  doneness: string;
  /** Absent when the toastie failed before picking (grill busy, cold store down, customer left). */
  pickedVia?: "v1" | "v2";
  /** The HTTP status the customer got. */
  status: number;
  orderId?: string;
  problem?: { title: string; detail?: string };
}

export interface ToastieDeps {
  logger: Logger;
  registry: promClient.Registry;
  features: Features<FlagName>;
  chillybin: ChillybinClient;
  grill: Grill;
  onToastie?: (outcome: ToastieOutcome) => void;
}

/** Serves one checked order on `res`; shared by POST /toastie and the legacy GET. */
export type ServeToastie = (
  res: Response,
  order: ToastieOrder,
  idempotencyKey: string | undefined,
) => Promise<void>;

export function toastieServer(deps: ToastieDeps): ServeToastie {
  const { logger, chillybin, grill } = deps;
  const served = new promClient.Counter({
    name: "toasties_total",
    help: "Toasties served, by how their ingredients were picked.",
    labelNames: ["picked_via"],
    registers: [deps.registry],
  });

  /** Tells onToastie once; a failing listener must not change the customer's answer. */
  const tell = (order: ToastieOrder, picked: Picked | undefined, status: number, err?: unknown) => {
    if (!deps.onToastie) return;
    const problem = err instanceof HttpProblem ? err : undefined;
    try {
      deps.onToastie({
        at: new Date().toISOString(),
        customer: order.customer,
        ingredients: order.ingredients,
        doneness: order.doneness,
        ...(picked ? { pickedVia: picked.via } : {}),
        status,
        ...(picked?.ok && picked.orderId ? { orderId: picked.orderId } : {}),
        ...(status === 200
          ? {}
          : {
              problem: {
                title: problem?.title ?? "Internal Server Error",
                detail: problem?.options.detail,
              },
            }),
      });
    } catch (listenerErr) {
      logger.error({ err: listenerErr }, "onToastie listener failed");
    }
  };

  /** The toastie itself; `seen.picked` records what chillybin said, for tell(). */
  async function toast(
    res: Response,
    order: ToastieOrder,
    idempotencyKey: string | undefined,
    seen: { picked?: Picked },
  ) {
    // While chillybin is known to be unreachable the answer is quick and nothing queues for it.
    const cold = chillybin.reachability;
    if (!cold.reachable) {
      throw coldStoreUnavailable(
        `chillybin could not be reached (${cold.reason ?? "no answer"}, at ${cold.checkedAt}); nothing was cooked.`,
        chillybin.retryAfterSeconds,
      );
    }
    // A customer who hangs up while queued leaves the queue before anything is picked for them.
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort(new HttpProblem(499, "Client Closed Request"));
    };
    res.once("close", onClose);
    try {
      const slot = await grill.reserve(gone.signal);
      try {
        const ingredients = withBread(order.ingredients);
        // The arm that picks: the foxtrot's one decision, per request so a flag flip applies at once.
        const pick = deps.features.isEnabled("pick.v2", order.customer) ? pickV2 : pickV1;
        const picked = await pick(chillybin, {
          customer: order.customer,
          ingredients,
          idempotencyKey: idempotencyKey ?? randomUUID(),
        });
        seen.picked = picked;
        if (!picked.ok) throw picked.problem;
        await slot.cook(order.doneness);
        served.inc({ picked_via: picked.via });
        logger.info(
          { customer: order.customer, pickedVia: picked.via, doneness: order.doneness },
          "toastie done",
        );
        res.json({
          status: "done",
          customer: order.customer,
          ingredients,
          doneness: order.doneness,
          pickedVia: picked.via,
          ...(picked.orderId ? { orderId: picked.orderId } : {}),
        });
      } finally {
        slot.release();
      }
    } finally {
      res.off("close", onClose);
    }
  }

  return async (res, order, idempotencyKey) => {
    const seen: { picked?: Picked } = {};
    try {
      await toast(res, order, idempotencyKey, seen);
    } catch (err) {
      tell(order, seen.picked, err instanceof HttpProblem ? err.status : 500, err);
      throw err;
    }
    tell(order, seen.picked, 200);
  };
}

/** Two slices of bread around every toastie, as the original did. */
export function withBread(ingredients: string[]): string[] {
  return [...ingredients, "bread", "bread"];
}

// ---------- reading an order (zod; the same rules and words as chillybin's) ----------

const MAX_INGREDIENTS = 10;
const DEFAULT_CUSTOMER = "anonymous";
const CHEESES = new Set(["cheese", "sheese"]);
/** chillybin's stock names: anything it can stock can be ordered. */
const INGREDIENT_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const NAME_RULE = "1-32 lowercase letters, digits, - or _, starting with a letter";
const CUSTOMER_RULE = "1-64 printable characters, not blank, no leading or trailing spaces";
const NO_CHEESE = "No cheese on this toastie: add cheese or sheese";

/**
 * chillybin's rule, word for word: counted in code points; no control, format or separator
 * characters (so no NULs, newlines or bidi overrides) except the zero-width joiner inside emoji
 * like 👩‍🍳; no leading or trailing whitespace, which also rules out blank names.
 */
export function isValidCustomer(s: string): boolean {
  const length = [...s].length;
  return (
    length >= 1 &&
    length <= 64 &&
    s.trim() === s &&
    /^[^\p{C}\p{Zl}\p{Zp}]+$/u.test(s.replaceAll("\u200d", ""))
  );
}

const customer = z
  .string({ error: `customer must be ${CUSTOMER_RULE}` })
  .refine(isValidCustomer, `customer must be ${CUSTOMER_RULE}`)
  .optional();

const doneness = z
  .enum(DONENESS, {
    error: (iss) =>
      `doneness must be one of ${DONENESS.join(", ")}${typeof iss.input === "string" ? `, got ${JSON.stringify(clip(iss.input))}` : ""}`,
  })
  .optional();

const ingredientName = z
  .string({ error: "each ingredient must be a string" })
  .regex(INGREDIENT_NAME, {
    error: (iss) =>
      `${JSON.stringify(clip(String(iss.input)))} is not an ingredient name: use ${NAME_RULE}`,
  });

const ingredientList = (what: string) =>
  z
    .array(ingredientName, {
      error: (iss) =>
        iss.input === undefined
          ? "name at least one ingredient, including cheese"
          : `${what} must be a list of ingredient names`,
    })
    .min(1, `${what} must have 1 to ${MAX_INGREDIENTS} ingredients, got 0`)
    .max(MAX_INGREDIENTS, {
      error: (iss) =>
        `${what} must have 1 to ${MAX_INGREDIENTS} ingredients, got ${(iss.input as unknown[]).length}`,
    })
    // Only once every name is valid: "no cheese" about a list of typos would mislead.
    .refine((names) => names.some((n) => CHEESES.has(n)), {
      error: NO_CHEESE,
      when: (payload) => payload.issues.length === 0,
    });

const jsonOrder = z.strictObject({
  ingredients: ingredientList("ingredients"),
  doneness,
  customer,
});

/** The original's query form: `?i=cheese&i=vegemite&doneness=medium&customer=gita`. */
const queryOrder = z.strictObject({
  // `?i=cheese` is a string, `?i=cheese&i=ham` an array: both mean a list.
  i: z.preprocess((v) => (typeof v === "string" ? [v] : v), ingredientList("i")),
  doneness,
  customer,
});

/**
 * Reads an order from a JSON body or the query string (never both); throws a 400 invalid-request
 * problem listing everything wrong at once.
 */
export function parseToastieOrder(input: { query: Record<string, unknown>; body: unknown }) {
  const queryKeys = Object.keys(input.query);
  const { body } = input;
  const hasBody = body !== undefined && body !== null && !isEmptyObject(body);
  if (hasBody && queryKeys.length > 0) {
    throw invalidRequest([
      {
        parameter: clip(queryKeys[0] as string),
        detail: "send the order either as a JSON body or in the query string, not both",
      },
    ]);
  }
  if (!hasBody) return parseQueryOrder(input.query);
  if (typeof body !== "object" || Array.isArray(body)) {
    throw invalidRequest([
      { pointer: "", detail: 'the body must be a JSON object like {"ingredients":["cheese"]}' },
    ]);
  }
  const order = parse(jsonOrder, body, "body");
  return toOrder(order.customer, order.ingredients, order.doneness);
}

/** The query form only: the deprecated GET /toastie reads nothing else. */
export function parseQueryOrder(query: Record<string, unknown>): ToastieOrder {
  const order = parse(queryOrder, query, "query");
  return toOrder(order.customer, order.i, order.doneness);
}

function toOrder(who: string | undefined, ingredients: string[], done: Doneness | undefined) {
  return { customer: who ?? DEFAULT_CUSTOMER, ingredients, doneness: done ?? "light" };
}

/** Idempotency-Key: exactly one header of 1-255 visible ASCII characters, passed on to chillybin. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== "string" || !IDEMPOTENCY_KEY.test(header)) {
    throw invalidRequest([
      {
        header: "Idempotency-Key",
        detail: "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)",
      },
    ]);
  }
  return header;
}

function parse<T extends z.ZodType>(schema: T, input: unknown, where: "body" | "query") {
  const result = schema.safeParse(input);
  if (result.success) return result.data as z.output<T>;
  throw invalidRequest(result.error.issues.flatMap((issue) => fieldErrors(issue, where)));
}

function fieldErrors(issue: z.core.$ZodIssue, where: "body" | "query"): FieldError[] {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const expected =
      where === "query" ? "customer, i, doneness" : "customer, ingredients, doneness";
    return issue.keys.map((key) =>
      locate(
        [...path, key],
        where,
        `unknown ${where === "query" ? "parameter" : "field"} "${clip(key)}"; expected ${expected}`,
      ),
    );
  }
  return [locate(path, where, issue.message)];
}

function locate(path: string[], where: "body" | "query", detail: string): FieldError {
  if (where === "query") return { parameter: clip(path[0] ?? ""), detail };
  return {
    pointer: path.map((p) => `/${clip(p).replace(/~/g, "~0").replace(/\//g, "~1")}`).join(""),
    detail,
  };
}

function isEmptyObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

/** Never echo a 10 KB field back at the client. */
function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
