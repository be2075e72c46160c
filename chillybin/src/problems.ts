import { HttpProblem } from "tpi";

/**
 * Problem `type` URIs (RFC 9457). `.example` is reserved (RFC 2606), so these identify the
 * kinds of problem without pretending a page exists; the README documents each of them.
 */
const BASE = "https://toasties-galore.example/problems/";

export const PROBLEM_TYPES = {
  invalidRequest: `${BASE}invalid-request`,
  unknownIngredient: `${BASE}unknown-ingredient`,
  outOfStock: `${BASE}out-of-stock`,
  orderNotFound: `${BASE}order-not-found`,
  idempotencyKeyReused: `${BASE}idempotency-key-reused`,
  databaseUnavailable: `${BASE}database-unavailable`,
  unauthorized: `${BASE}unauthorized`,
  forbidden: `${BASE}forbidden`,
} as const;

/**
 * One thing wrong with a request: where — exactly one of `pointer` (JSON pointer into the body),
 * query `parameter` or `header` — and why.
 */
export interface FieldError {
  pointer?: string;
  parameter?: string;
  header?: string;
  detail: string;
}

export function invalidRequest(all: FieldError[]): HttpProblem {
  const errors = all.slice(0, 20); // a request with 1000 bad fields gets a bounded answer
  const detail = errors.map((e) => e.detail).join("; ");
  return new HttpProblem(400, "Invalid request", {
    type: PROBLEM_TYPES.invalidRequest,
    detail,
    extensions: { errors },
  });
}

/** 422: the request is well-formed, the cold store just does not stock these (v1 and v2 alike). */
export function unknownIngredients(names: string[]): HttpProblem {
  return new HttpProblem(422, "Unknown ingredient", {
    type: PROBLEM_TYPES.unknownIngredient,
    detail: `The cold store does not stock ${names.join(", ")}.`,
    extensions: { unknown: names },
  });
}

export interface Shortage {
  ingredient: string;
  requested: number;
  available: number;
}

export function outOfStock(short: Shortage[]): HttpProblem {
  const what = short.map((s) => `${s.ingredient} (${s.available} left, ${s.requested} wanted)`);
  return new HttpProblem(409, "Out of stock", {
    type: PROBLEM_TYPES.outOfStock,
    detail: `Not enough ${what.join(", ")}; nothing was picked.`,
    extensions: { short },
  });
}
