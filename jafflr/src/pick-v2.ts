import type { HttpProblem } from "tpi";
import { type ChillybinClient, type Reply, retryAfterSeconds } from "./chillybin-client";
import { problem, problemType } from "./problems";

/** What a toastie asks the cold store for; `ingredients` includes the bread. */
export type PickRequest = { customer: string; ingredients: string[]; idempotencyKey: string };

/** What the arm (`via`) did: picked (v2: with chillybin's order id), or the customer's problem. */
export type Picked = { via: "v1" | "v2"; orderId?: string; problem?: HttpProblem };

/**
 * The v2 arm: one atomic POST /v2/pick for the whole toastie, with the same Idempotency-Key on
 * every attempt, so retrying after a lost answer never picks twice.
 */
export async function pickV2(chillybin: ChillybinClient, order: PickRequest): Promise<Picked> {
  const counts = new Map<string, number>(); // first-seen order: cheese, …, bread × 2
  for (const name of order.ingredients) counts.set(name, (counts.get(name) ?? 0) + 1);
  const items = [...counts].map(([ingredient, quantity]) => ({ ingredient, quantity }));
  const reply = await chillybin.call({
    method: "POST",
    path: "/v2/pick",
    body: JSON.stringify({ customer: order.customer, items }),
    headers: { "content-type": "application/json", "idempotency-key": order.idempotencyKey },
  });
  const id =
    reply.answered && reply.answer.status === 200 && (reply.answer.body as { id?: unknown })?.id;
  if (typeof id === "string" || typeof id === "number") return { via: "v2", orderId: String(id) };
  return { via: "v2", problem: pickProblem(reply, "/v2/pick") };
}

/** What the customer gets for any reply but a good one; `name` is what v1 asked for, if one. */
export function pickProblem(reply: Reply, route: string, name?: string): HttpProblem {
  const unavailable = (what: string, retryAfter = 2) =>
    problem("cold-store-unavailable", `chillybin ${what}; nothing was cooked.`, { retryAfter });
  if (!reply.answered) {
    const { kind, reason } = reply.failure;
    const what = kind === "timeout" ? "did not answer in time" : "could not be reached";
    return unavailable(`${what} (${reason})`);
  }
  const { status, body, headers } = reply.answer;
  // biome-ignore lint/suspicious/noExplicitAny: chillybin's problem+json, read member by member
  const b: Record<string, any> = body?.constructor === Object ? (body as object) : {};
  const why = b.detail ? `: ${b.detail}` : "";
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
  if (status >= 500) return unavailable(`answered ${status}${why}`, retryAfterSeconds(headers));
  if (status === 404) return problem("cold-store-error", `chillybin does not serve ${route}.`);
  const noId = `chillybin answered ${route} without an order id.`;
  if (status === 200) return problem("cold-store-error", noId);
  const title = b.title ? ` ${b.title}` : "";
  return problem("order-rejected", `chillybin refused the pick (${status}${title})${why}.`);
}
