import { HttpProblem } from "tpi";

/**
 * jafflr's RFC 9457 problems. Types, statuses and titles are the ones chillybin uses wherever the
 * two services speak of the same thing (docs/api.md lists them); one type, one status, one title.
 */
const BASE = "https://toasties-galore.example/problems/";

export const PROBLEM_TYPES = {
  invalidRequest: `${BASE}invalid-request`,
  unknownIngredient: `${BASE}unknown-ingredient`,
  outOfStock: `${BASE}out-of-stock`,
  idempotencyKeyReused: `${BASE}idempotency-key-reused`,
  grillBusy: `${BASE}grill-busy`,
  coldStoreUnavailable: `${BASE}cold-store-unavailable`,
  coldStoreError: `${BASE}cold-store-error`,
  orderRejected: `${BASE}order-rejected`,
} as const;

/** One thing wrong with a request: exactly one of where (body pointer, query parameter, header), and why. */
export type FieldError = ({ pointer: string } | { parameter: string } | { header: string }) & {
  detail: string;
};

/** At most this many errors per answer: a request with 1000 bad fields gets a bounded one. */
const MAX_ERRORS = 20;

export function invalidRequest(all: FieldError[]): HttpProblem {
  const errors = all.slice(0, MAX_ERRORS);
  return new HttpProblem(400, "Invalid request", {
    type: PROBLEM_TYPES.invalidRequest,
    detail: errors.map((e) => e.detail).join("; "),
    extensions: { errors },
  });
}

export interface Shortage {
  ingredient: string;
  requested?: number;
  available?: number;
}

export function outOfStock(short: Shortage[]): HttpProblem {
  return new HttpProblem(409, "Out of stock", {
    type: PROBLEM_TYPES.outOfStock,
    detail: `Not enough ${short.map((s) => s.ingredient).join(", ")} in the cold store; nothing was cooked.`,
    extensions: { short },
  });
}

/** The customer asked for something chillybin does not stock: their request is wrong, not the server. */
export function unknownIngredient(unknown: string[]): HttpProblem {
  return new HttpProblem(422, "Unknown ingredient", {
    type: PROBLEM_TYPES.unknownIngredient,
    detail: `The cold store does not stock ${unknown.join(", ")}.`,
    extensions: { unknown },
  });
}

export function idempotencyKeyReused(detail: string | undefined): HttpProblem {
  return new HttpProblem(422, "Idempotency-Key reused", {
    type: PROBLEM_TYPES.idempotencyKeyReused,
    detail: detail ?? "This Idempotency-Key was used for a different order.",
  });
}

export function grillBusy(detail: string, retryAfterSeconds: number): HttpProblem {
  return new HttpProblem(503, "Grill busy", {
    type: PROBLEM_TYPES.grillBusy,
    detail,
    headers: { "Retry-After": String(retryAfterSeconds) },
  });
}

/** chillybin is down, overloaded or too slow: worth trying again later. */
export function coldStoreUnavailable(detail: string, retryAfterSeconds: number): HttpProblem {
  return new HttpProblem(503, "Cold store unavailable", {
    type: PROBLEM_TYPES.coldStoreUnavailable,
    detail,
    headers: { "Retry-After": String(retryAfterSeconds) },
  });
}

/** chillybin answered something jafflr cannot use (a route it lacks, a reply without an order id). */
export function coldStoreError(detail: string): HttpProblem {
  return new HttpProblem(502, "Cold store error", { type: PROBLEM_TYPES.coldStoreError, detail });
}

/** chillybin refused the pick for a reason the customer may be able to fix. */
export function orderRejected(detail: string): HttpProblem {
  return new HttpProblem(422, "Order rejected", { type: PROBLEM_TYPES.orderRejected, detail });
}
