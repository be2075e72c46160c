import type { HttpProblem } from "tpi";
import {
  type Answer,
  type ChillybinClient,
  type NoAnswer,
  type Route,
  retryAfterSeconds,
} from "./chillybin-client";
import {
  coldStoreError,
  coldStoreUnavailable,
  idempotencyKeyReused,
  orderRejected,
  outOfStock,
  PROBLEM_TYPES,
  type Shortage,
  unknownIngredient,
} from "./problems";

/** What a toastie asks the cold store for; `ingredients` includes the bread. */
export interface PickRequest {
  customer: string;
  ingredients: string[];
  idempotencyKey: string;
}

/** Picked (v2 with chillybin's order id), or the problem the customer gets; `via` says which arm. */
export type Picked = { via: "v1" | "v2" } & (
  | { ok: true; orderId?: string }
  | { ok: false; problem: HttpProblem }
);

/** Seconds to suggest when chillybin failed without saying how long to wait. */
const DEFAULT_RETRY_AFTER_S = 2;

/**
 * The v2 arm: one atomic POST /v2/pick for the whole toastie. The Idempotency-Key is the same on
 * every attempt, so retrying after a lost answer can never pick twice.
 */
export async function pickV2(chillybin: ChillybinClient, order: PickRequest): Promise<Picked> {
  const reply = await chillybin.call({
    route: "/v2/pick",
    method: "POST",
    path: "/v2/pick",
    body: JSON.stringify({ customer: order.customer, items: countItems(order.ingredients) }),
    headers: { "content-type": "application/json", "idempotency-key": order.idempotencyKey },
    retry: "idempotent",
  });
  const fail = (problem: HttpProblem): Picked => ({ via: "v2", ok: false, problem });
  if (!reply.answered) return fail(noAnswerProblem(reply.failure));
  const { answer } = reply;
  if (answer.status === 200) {
    const id = (answer.body as { id?: unknown } | undefined)?.id;
    if (typeof id === "string" || typeof id === "number") {
      return { via: "v2", ok: true, orderId: String(id) };
    }
    return fail(coldStoreError("chillybin answered /v2/pick without an order id."));
  }
  const body = problemBody(answer);
  if (answer.status === 409 && Array.isArray(body.short)) {
    return fail(outOfStock(body.short as Shortage[]));
  }
  if (answer.status === 422 && body.type === PROBLEM_TYPES.idempotencyKeyReused) {
    return fail(idempotencyKeyReused(body.detail));
  }
  // 422 in the shared vocabulary; 404 is what chillybin answered before it.
  if ((answer.status === 422 || answer.status === 404) && Array.isArray(body.unknown)) {
    return fail(unknownIngredient(body.unknown.map(String)));
  }
  return fail(otherAnswerProblem(answer, "/v2/pick"));
}

/** `["cheese","bread","bread"]` → `[{cheese,1},{bread,2}]`, first-seen order. */
export function countItems(ingredients: string[]): { ingredient: string; quantity: number }[] {
  const counts = new Map<string, number>();
  for (const name of ingredients) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts].map(([ingredient, quantity]) => ({ ingredient, quantity }));
}

/** No answer at all: chillybin is down or too slow; nothing was cooked, try later. */
export function noAnswerProblem(failure: NoAnswer): HttpProblem {
  return coldStoreUnavailable(
    failure.kind === "timeout"
      ? `chillybin did not answer in time (${failure.reason}); nothing was cooked.`
      : `chillybin could not be reached (${failure.reason}); nothing was cooked.`,
    DEFAULT_RETRY_AFTER_S,
  );
}

/** chillybin's remaining answers: its 5xx → 503 (try later); a missing route → 502; any other 4xx → 422. */
export function otherAnswerProblem(answer: Answer, route: Route): HttpProblem {
  const body = problemBody(answer);
  if (answer.status >= 500) {
    return coldStoreUnavailable(
      `chillybin answered ${answer.status}${body.detail ? `: ${body.detail}` : ""}; nothing was cooked.`,
      retryAfterSeconds(answer) ?? DEFAULT_RETRY_AFTER_S,
    );
  }
  if (answer.status === 404) return coldStoreError(`chillybin does not serve ${route}.`);
  return orderRejected(
    `chillybin refused the pick (${answer.status}${body.title ? ` ${body.title}` : ""})${body.detail ? `: ${body.detail}` : ""}.`,
  );
}

/** The members of a problem+json answer that jafflr reads; {} for anything else. */
export function problemBody(answer: Answer): Record<string, unknown> & {
  type?: string;
  title?: string;
  detail?: string;
} {
  const b = answer.body;
  return typeof b === "object" && b !== null && !Array.isArray(b)
    ? (b as Record<string, unknown>)
    : {};
}
