/**
 * The original arm, behind the `pick.v2` flag until the foxtrot's step 3 deletes this file: one
 * GET /pick per ingredient, in order. Knowingly not atomic: when a pick fails midway the problem
 * lists what was already taken (`taken`), which stays taken.
 */
import { HttpProblem } from "tpi";
import type { ChillybinClient } from "./chillybin-client";
import { type Picked, type PickRequest, pickProblem } from "./pick-v2";

export async function pickV1(chillybin: ChillybinClient, order: PickRequest): Promise<Picked> {
  const taken: string[] = [];
  for (const name of order.ingredients) {
    // No Idempotency-Key: GET /pick changes stock, so it is retried only if it never left.
    const path = `/pick?name=${encodeURIComponent(name)}&quantity=1`;
    const reply = await chillybin.call({ method: "GET", path });
    if (reply.answered && reply.answer.status === 200) {
      taken.push(name);
      continue;
    }
    const { status, title, options } = pickProblem(reply, "/pick", name);
    const before = ` Already taken before ${name} failed (the v1 pick is not atomic): ${taken.join(", ")}.`;
    const detail = `${options.detail}${taken.length > 0 ? before : ""}`;
    const extensions = { ...options.extensions, taken, failedAt: name };
    return {
      via: "v1",
      problem: new HttpProblem(status, title, { ...options, detail, extensions }),
    };
  }
  return { via: "v1" };
}
