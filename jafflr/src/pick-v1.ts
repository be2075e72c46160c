/**
 * The original arm, behind the `pick.v2` flag until the foxtrot's step 3 deletes this file: one
 * GET /pick per ingredient, in order. Knowingly not atomic: when a pick fails midway the problem
 * lists what was already taken (`taken`), which stays taken.
 */
import { HttpProblem } from "tpi";
import type { Answer, ChillybinClient } from "./chillybin-client";
import {
  noAnswerProblem,
  otherAnswerProblem,
  type Picked,
  type PickRequest,
  problemBody,
} from "./pick-v2";
import { outOfStock, type Shortage, unknownIngredient } from "./problems";

export async function pickV1(chillybin: ChillybinClient, order: PickRequest): Promise<Picked> {
  const taken: string[] = [];
  for (const name of order.ingredients) {
    // GET /pick changes stock and has no key, so it is retried only when it certainly never arrived.
    const reply = await chillybin.call({
      route: "/pick",
      method: "GET",
      path: `/pick?name=${encodeURIComponent(name)}&quantity=1`,
      retry: "unsent-only",
    });
    if (reply.answered && reply.answer.status === 200) {
      taken.push(name);
      continue;
    }
    const problem = reply.answered ? v1Failure(reply.answer, name) : noAnswerProblem(reply.failure);
    return { via: "v1", ok: false, problem: withTaken(problem, taken, name) };
  }
  return { via: "v1", ok: true };
}

function v1Failure(answer: Answer, name: string): HttpProblem {
  const body = problemBody(answer);
  // The original said 410 Gone when an ingredient ran out.
  if (answer.status === 410 || answer.status === 409) {
    const short = Array.isArray(body.short)
      ? (body.short as Shortage[])
      : [{ ingredient: name, requested: 1 }];
    return outOfStock(short);
  }
  // Without `unknown` a 404 means the route itself is gone (v1 deleted): not the customer's fault.
  if ((answer.status === 422 || answer.status === 404) && Array.isArray(body.unknown)) {
    return unknownIngredient([name]);
  }
  return otherAnswerProblem(answer, "/pick");
}

function withTaken(problem: HttpProblem, taken: string[], failedAt: string): HttpProblem {
  const detail =
    taken.length === 0
      ? problem.options.detail
      : `${problem.options.detail ?? problem.title} Already taken before ${failedAt} failed (the v1 pick is not atomic): ${taken.join(", ")}.`;
  return new HttpProblem(problem.status, problem.title, {
    ...problem.options,
    detail,
    extensions: { ...problem.options.extensions, taken: [...taken], failedAt },
  });
}
