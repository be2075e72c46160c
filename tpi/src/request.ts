import {
  extendZodWithOpenApi,
  type OpenAPIRegistry,
  OpenApiGeneratorV31,
} from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { HttpProblem } from "./problem";

// Once, here: every schema built with tpi's `z` can carry `.openapi(...)` metadata.
extendZodWithOpenApi(z);

export { z };

/** One thing wrong with a request: where (body pointer, query parameter or header), and why. */
export type FieldError = ({ pointer: string } | { parameter: string } | { header: string }) & {
  detail: string;
};

export const INVALID_REQUEST = "https://toasties-galore.example/problems/invalid-request";

/** 400 Invalid request listing what is wrong; at most 20 items, so 1000 bad fields get a bounded answer. */
export function invalidRequest(all: FieldError[]): HttpProblem {
  const errors = all.slice(0, 20);
  return new HttpProblem(400, "Invalid request", {
    type: INVALID_REQUEST,
    detail: errors.map((e) => e.detail).join("; "),
    extensions: { errors },
  });
}

/**
 * The schema's output, or a thrown invalidRequest with one item per zod issue (one per unknown
 * key). `expected`, when given, is appended to unknown-key details ("; expected a, b").
 */
export function parseRequest<T extends z.ZodType>(
  schema: T,
  input: unknown,
  where: "body" | "query",
  expected?: string,
): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw invalidRequest(result.error.issues.flatMap((issue) => fieldErrors(issue, where, expected)));
}

function fieldErrors(
  issue: z.core.$ZodIssue,
  where: "body" | "query",
  expected: string | undefined,
): FieldError[] {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const kind = where === "query" ? "parameter" : "field";
    const hint = expected ? `; expected ${expected}` : "";
    return issue.keys.map((key) =>
      locate([...path, key], where, `unknown ${kind} "${clip(key)}"${hint}`),
    );
  }
  if (issue.code === "invalid_key") {
    const why = issue.issues[0]?.message ?? issue.message;
    return [locate(path, where, `"${clip(path.at(-1) ?? "")}": ${why}`)];
  }
  return [locate(path, where, issue.message)];
}

function locate(path: string[], where: "body" | "query", detail: string): FieldError {
  if (where === "query") return { parameter: clip(path[0] ?? ""), detail };
  const pointer = path.map((p) => `/${clip(p).replace(/~/g, "~0").replace(/\//g, "~1")}`);
  return { pointer: pointer.join(""), detail };
}

/** Never echo a 10 KB field name back at the client. */
export function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** The OpenAPI 3.1 document of everything registered. */
export function openApiDocument(
  registry: OpenAPIRegistry,
  info: { title: string; version: string; description?: string },
) {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({ openapi: "3.1.0", info });
}
