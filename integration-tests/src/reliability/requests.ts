/**
 * The stall's ways to take stock, as load requests: chillybin's v2 `POST /v2/pick` order and
 * jafflr's `POST /toastie` (JSON body or the original's query form). v1's `GET /pick` is in
 * requests-pick-v1.ts, deleted with v1.
 */
import { itemsTake, toastieTakes } from "./ledger";
import type { LoadRequest } from "./load";

export interface Item {
  ingredient: string;
  quantity: number;
}

export function pickV2(
  target: string,
  customer: string,
  items: Item[],
  idempotencyKey?: string,
): LoadRequest {
  return {
    kind: "pick-v2",
    target,
    method: "POST",
    path: "/v2/pick",
    headers: {
      "Content-Type": "application/json",
      ...(idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {}),
    },
    body: JSON.stringify({ customer, items }),
    takes: itemsTake(items),
  };
}

export interface ToastieOptions {
  doneness?: "light" | "medium" | "well-done" | "burnt";
  /** The original's `POST /toastie?i=…&customer=…` instead of a JSON body. */
  queryForm?: boolean;
  /** Label; default "toastie". */
  kind?: string;
  idempotencyKey?: string;
}

export function toastie(
  target: string,
  customer: string,
  ingredients: string[],
  options: ToastieOptions = {},
): LoadRequest {
  const takes = toastieTakes(ingredients);
  const kind = options.kind ?? "toastie";
  const keyHeader: Record<string, string> = options.idempotencyKey
    ? { "Idempotency-Key": options.idempotencyKey }
    : {};
  if (options.queryForm) {
    const params: [string, string][] = [
      ...ingredients.map((i): [string, string] => ["i", i]),
      ["customer", customer],
      ...(options.doneness ? [["doneness", options.doneness] as [string, string]] : []),
    ];
    const query = new URLSearchParams(params);
    return { kind, target, method: "POST", path: `/toastie?${query}`, headers: keyHeader, takes };
  }
  return {
    kind,
    target,
    method: "POST",
    path: "/toastie",
    headers: { "Content-Type": "application/json", ...keyHeader },
    body: JSON.stringify({
      customer,
      ingredients,
      ...(options.doneness ? { doneness: options.doneness } : {}),
    }),
    takes,
  };
}
