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

export const problemType = (name: ProblemName) =>
  `https://toasties-galore.example/problems/${name}`;

/** A jafflr problem; `retryAfter` (seconds) goes out as the Retry-After header. */
export function problem(
  name: ProblemName,
  detail: string,
  { retryAfter, ...extensions }: { retryAfter?: number } & Record<string, unknown> = {},
): HttpProblem {
  const [status, title] = PROBLEMS[name];
  return new HttpProblem(status, title, {
    type: problemType(name),
    detail,
    extensions,
    ...(retryAfter === undefined ? {} : { headers: { "Retry-After": String(retryAfter) } }),
  });
}

const where = z.union([
  z.strictObject({ pointer: z.string(), detail: z.string() }),
  z.strictObject({ parameter: z.string(), detail: z.string() }),
  z.strictObject({ header: z.string(), detail: z.string() }),
]);

/** Every problem jafflr answers, with the extensions each kind carries. */
export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z
      .array(where)
      .max(20)
      .optional()
      .openapi({ description: "invalid-request: where and why" }),
    short: z
      .array(
        z.object({
          ingredient: z.string(),
          requested: z.int().optional(),
          available: z.int().optional(),
        }),
      )
      .optional()
      .openapi({ description: "out-of-stock: what was short" }),
    unknown: z.array(z.string()).optional().openapi({ description: "unknown-ingredient" }),
    taken: z.array(z.string()).optional().openapi({ description: "v1: picked before the failure" }),
    failedAt: z
      .string()
      .optional()
      .openapi({ description: "v1: the ingredient whose pick failed" }),
  })
  .openapi("Problem");

/** The problem types with their status and title, listed in the OpenAPI document. */
export const problemTypes = [
  { type: INVALID_REQUEST, status: 400, title: "Invalid request" },
  ...Object.entries(PROBLEMS).map(([name, [status, title]]) => ({
    type: problemType(name as ProblemName),
    status,
    title,
  })),
];
