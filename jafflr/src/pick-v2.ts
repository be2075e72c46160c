import type { HttpProblem } from "tpi";
import { type ChillybinClient, type Reply, retryAfterSeconds } from "./chillybin-client";
import { problem, problemType } from "./problems";

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

/**
 * The v2 arm: one atomic POST /v2/pick for the whole toastie, with the same Idempotency-Key on
 * every attempt, so retrying after a lost answer never picks twice.
 */
export async function pickV2(chillybin: ChillybinClient, order: PickRequest): Promise<Picked> {
  const reply = await chillybin.call({
    method: "POST",
    path: "/v2/pick",
    body: JSON.stringify({ customer: order.customer, items: countItems(order.ingredients) }),
    headers: { "content-type": "application/json", "idempotency-key": order.idempotencyKey },
  });
  const answer = reply.answered && reply.answer.status === 200 && reply.answer.body;
  const id = (answer as { id?: unknown })?.id;
  if (typeof id === "string" || typeof id === "number") {
    return { via: "v2", ok: true, orderId: String(id) };
  }
  return { via: "v2", ok: false, problem: pickProblem(reply, "/v2/pick") };
}

/** `["cheese","bread","bread"]` → `[{cheese,1},{bread,2}]`, first-seen order. */
export function countItems(ingredients: string[]): { ingredient: string; quantity: number }[] {
  const counts = new Map<string, number>();
  for (const name of ingredients) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts].map(([ingredient, quantity]) => ({ ingredient, quantity }));
}

/** What the customer gets for any reply but a good one; `name` is what v1 asked for, if one. */
export function pickProblem(reply: Reply, route: string, name?: string): HttpProblem {
  const retryAfter = 2; // seconds, when chillybin did not say
  if (!reply.answered) {
    const { kind, reason } = reply.failure;
    const what = kind === "timeout" ? "did not answer in time" : "could not be reached";
    const detail = `chillybin ${what} (${reason}); nothing was cooked.`;
    return problem("cold-store-unavailable", detail, { retryAfter });
  }
  const { status, body } = reply.answer;
  // biome-ignore lint/suspicious/noExplicitAny: chillybin's problem+json, read member by member
  const b: Record<string, any> = body?.constructor === Object ? (body as object) : {};
  // v1's out-of-stock was the original's 410 Gone, with or without `short`.
  if ((status === 409 && Array.isArray(b.short)) || (name && (status === 409 || status === 410))) {
    const short = Array.isArray(b.short) ? b.short : [{ ingredient: name, requested: 1 }];
    const names = short.map((s: { ingredient: string }) => s.ingredient).join(", ");
    const detail = `Not enough ${names} in the cold store; nothing was cooked.`;
    return problem("out-of-stock", detail, { short });
  }
  if (status === 422 && b.type === problemType("idempotency-key-reused")) {
    const detail = b.detail ?? "This Idempotency-Key was used for a different order.";
    return problem("idempotency-key-reused", detail);
  }
  // 422 in the shared vocabulary; 404 is what chillybin answered before it. A 404 without
  // `unknown` is a missing route (v1 deleted), not the customer's mistake.
  if ((status === 422 || status === 404) && Array.isArray(b.unknown)) {
    const unknown = name ? [name] : b.unknown.map(String);
    const detail = `The cold store does not stock ${unknown.join(", ")}.`;
    return problem("unknown-ingredient", detail, { unknown });
  }
  const why = b.detail ? `: ${b.detail}` : "";
  if (status >= 500) {
    const detail = `chillybin answered ${status}${why}; nothing was cooked.`;
    return problem("cold-store-unavailable", detail, {
      retryAfter: retryAfterSeconds(reply.answer) ?? retryAfter,
    });
  }
  if (status === 404) return problem("cold-store-error", `chillybin does not serve ${route}.`);
  if (status === 200) {
    return problem("cold-store-error", `chillybin answered ${route} without an order id.`);
  }
  const title = b.title ? ` ${b.title}` : "";
  return problem("order-rejected", `chillybin refused the pick (${status}${title})${why}.`);
}
