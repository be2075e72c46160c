import { HttpProblem, INVALID_REQUEST, z } from "tpi";

/**
 * jafflr's own RFC 9457 problems (invalid-request is tpi's): one type, one status, one title
 * each, the same as chillybin's wherever the two speak of the same thing.
 */
export const PROBLEMS = {
  "out-of-stock": [409, "Out of stock"],
  "unknown-ingredient": [422, "Unknown ingredient"],
  "idempotency-key-reused": [422, "Idempotency-Key reused"],
  "order-rejected": [422, "Order rejected"],
  "cold-store-error": [502, "Cold store error"],
  "grill-busy": [503, "Grill busy"],
  "cold-store-unavailable": [503, "Cold store unavailable"],
} as const;
export type ProblemName = keyof typeof PROBLEMS;
export const problemType = (name: string) => `https://toasties-galore.example/problems/${name}`;

/** A jafflr problem; `retryAfter` (seconds) goes out as the Retry-After header. */
export function problem(name: ProblemName, detail: string, more: Record<string, unknown> = {}) {
  const { retryAfter, ...extensions } = more;
  const headers = retryAfter === undefined ? undefined : { "Retry-After": String(retryAfter) };
  const [[status, title], type] = [PROBLEMS[name], problemType(name)];
  return new HttpProblem(status, title, { type, detail, extensions, headers });
}

/** The problem types with their status and title, listed in the OpenAPI document. */
export const problemTypes = [
  { type: INVALID_REQUEST, status: 400, title: "Invalid request" },
  ...Object.entries(PROBLEMS).map(([n, [status, title]]) => ({
    type: problemType(n),
    status,
    title,
  })),
];

const where = (at: string) => z.strictObject({ [at]: z.string(), detail: z.string() });
const errors = z.array(z.union([where("pointer"), where("parameter"), where("header")]));
const count = z.int().optional();
const shortfall = z.object({ ingredient: z.string(), requested: count, available: count });
const names = z.array(z.string()).optional();

/** Every problem jafflr answers, with the extensions each kind carries. */
export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: errors.max(20).optional(),
    short: z.array(shortfall).optional(),
    unknown: names,
    taken: names,
    failedAt: z.string().optional(),
  })
  .openapi("Problem", {
    description:
      "`errors`: invalid-request's where and why; `short`: out-of-stock's shortfall; `unknown`: the unknown ingredients; `taken` and `failedAt` (v1): what was picked before the pick of `failedAt` failed.",
  });
