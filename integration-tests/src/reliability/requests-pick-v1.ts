/** chillybin's v1 `GET /pick` as a load request; deleted with v1 (foxtrot step 3). */
import type { LoadRequest } from "./load";

export function pickV1(target: string, ingredient: string, quantity = 1): LoadRequest {
  return {
    kind: "pick-v1",
    target,
    method: "GET",
    path: `/pick?name=${encodeURIComponent(ingredient)}&quantity=${quantity}`,
    takes: { [ingredient]: quantity },
  };
}
