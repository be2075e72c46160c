import { HttpProblem } from "tpi";
import { DONENESS, type Doneness } from "./grill";
import { PROBLEM_TYPES } from "./problems";

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
  /** Absent when the toastie failed before picking (grill busy, customer left). */
  pickedVia?: "v1" | "v2";
  /** The HTTP status the customer got. */
  status: number;
  orderId?: string;
  problem?: { title: string; detail?: string };
}

export interface ToastieOrder {
  customer: string;
  /** What the customer asked for, in order, without the bread. */
  ingredients: string[];
  doneness: Doneness;
}

export const MAX_INGREDIENTS = 10;
export const MAX_CUSTOMER_LENGTH = 64;
export const DEFAULT_CUSTOMER = "anonymous";
const CHEESES = new Set(["cheese", "sheese"]);
/** Short lowercase words: the same rule as chillybin's stock names, so anything it can stock can be ordered. */
const INGREDIENT_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const INGREDIENT_RULE = "1-32 lowercase letters, digits, - or _, starting with a letter";
/** Printable: no control, format, unassigned, private-use or line/paragraph separator characters. */
const PRINTABLE = /^[^\p{C}\p{Zl}\p{Zp}]+$/u;

/** The fields an order may have, in the JSON body or (as the original) the query string. */
const JSON_FIELDS = new Set(["customer", "ingredients", "doneness"]);
const QUERY_FIELDS = new Set(["customer", "i", "doneness"]);

export interface FieldError {
  field: string;
  message: string;
}

/** Two slices of bread around every toastie, as the original did. */
export function withBread(ingredients: string[]): string[] {
  return [...ingredients, "bread", "bread"];
}

/**
 * Reads an order from a JSON body or the original's query form
 * (`?i=cheese&i=vegemite&doneness=medium&customer=gita`); throws a 400 problem listing every problem.
 */
export function parseToastieOrder(input: {
  query: Record<string, unknown>;
  body: unknown;
}): ToastieOrder {
  const queryKeys = Object.keys(input.query);
  const hasBody = input.body !== undefined && input.body !== null && !isEmptyObject(input.body);
  if (hasBody && queryKeys.length > 0) {
    throw invalid([
      {
        field: "query",
        message: "send the order either as a JSON body or in the query string, not both",
      },
    ]);
  }
  return hasBody ? fromJson(input.body) : fromQuery(input.query);
}

function fromJson(body: unknown): ToastieOrder {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid([
      { field: "body", message: 'must be a JSON object like {"ingredients":["cheese"]}' },
    ]);
  }
  const fields = body as Record<string, unknown>;
  const errors = unknownFields(Object.keys(fields), JSON_FIELDS);
  return validate(fields.ingredients, fields.doneness, fields.customer, "ingredients", errors);
}

function fromQuery(query: Record<string, unknown>): ToastieOrder {
  const errors = unknownFields(Object.keys(query), QUERY_FIELDS);
  const i = query.i;
  // `?i=cheese` is a string, `?i=cheese&i=ham` an array: both mean a list.
  const ingredients = typeof i === "string" ? [i] : i;
  // A repeated `doneness` or `customer` arrives as an array, which validation rejects as ambiguous.
  return validate(ingredients, query.doneness, query.customer, "i", errors);
}

function validate(
  ingredients: unknown,
  doneness: unknown,
  customer: unknown,
  ingredientsField: string,
  errors: FieldError[],
): ToastieOrder {
  const list = validateIngredients(ingredients, ingredientsField, errors);
  const done = validateDoneness(doneness, errors);
  const who = validateCustomer(customer, errors);
  if (errors.length > 0 || list === undefined || done === undefined || who === undefined) {
    throw invalid(errors);
  }
  return { customer: who, ingredients: list, doneness: done };
}

function validateIngredients(
  value: unknown,
  field: string,
  errors: FieldError[],
): string[] | undefined {
  if (value === undefined) {
    errors.push({ field, message: "name at least one ingredient, including cheese" });
    return undefined;
  }
  if (!Array.isArray(value)) {
    errors.push({ field, message: "must be a list of ingredient names" });
    return undefined;
  }
  if (value.length < 1 || value.length > MAX_INGREDIENTS) {
    errors.push({
      field,
      message: `must have 1 to ${MAX_INGREDIENTS} ingredients, got ${value.length}`,
    });
    return undefined;
  }
  const before = errors.length;
  value.forEach((name, index) => {
    if (typeof name !== "string") {
      errors.push({ field: `${field}[${index}]`, message: "must be a string" });
    } else if (!INGREDIENT_NAME.test(name)) {
      errors.push({
        field: `${field}[${index}]`,
        message: `${JSON.stringify(truncate(name))} is not an ingredient name: use ${INGREDIENT_RULE}`,
      });
    }
  });
  if (errors.length > before) return undefined;
  const names = value as string[];
  if (!names.some((n) => CHEESES.has(n))) {
    errors.push({ field, message: "No cheese on this toastie: add cheese or sheese" });
    return undefined;
  }
  return names;
}

function validateDoneness(value: unknown, errors: FieldError[]): Doneness | undefined {
  if (value === undefined) return "light";
  if (typeof value === "string" && (DONENESS as readonly string[]).includes(value))
    return value as Doneness;
  errors.push({
    field: "doneness",
    message: `must be one of ${DONENESS.join(", ")}${typeof value === "string" ? `, got ${JSON.stringify(truncate(value))}` : ""}`,
  });
  return undefined;
}

function validateCustomer(value: unknown, errors: FieldError[]): string | undefined {
  if (value === undefined) return DEFAULT_CUSTOMER;
  if (typeof value !== "string") {
    errors.push({ field: "customer", message: "must be a string" });
    return undefined;
  }
  const length = [...value].length;
  if (
    length < 1 ||
    length > MAX_CUSTOMER_LENGTH ||
    value.trim() !== value ||
    !PRINTABLE.test(value)
  ) {
    errors.push({
      field: "customer",
      message: `must be 1 to ${MAX_CUSTOMER_LENGTH} printable characters, without leading or trailing spaces`,
    });
    return undefined;
  }
  return value;
}

function unknownFields(keys: string[], allowed: Set<string>): FieldError[] {
  return keys
    .filter((k) => !allowed.has(k))
    .map((k) => ({ field: k, message: `unknown field; expected ${[...allowed].join(", ")}` }));
}

function isEmptyObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function invalid(errors: FieldError[]): HttpProblem {
  return new HttpProblem(400, "Invalid toastie order", {
    type: PROBLEM_TYPES.invalidOrder,
    detail: errors.map((e) => `${e.field}: ${e.message}`).join("; "),
    extensions: { errors },
  });
}

/** An Idempotency-Key header on /toastie is passed to chillybin, so it must be one it can store. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? undefined : header.trim();
  if (key === undefined || key.length < 1 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new HttpProblem(400, "Invalid Idempotency-Key", {
      type: PROBLEM_TYPES.invalidOrder,
      detail: "Idempotency-Key must be one header of 1 to 255 visible ASCII characters.",
    });
  }
  return key;
}
