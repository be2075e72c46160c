/**
 * Everything the bench does with v1, deleted with it by foxtrot step 3: GET /pick against
 * pgbench running the statement it is built on, and toasties via v1 (4 GET /pick each) against
 * toasties via v2 (1 POST /v2/pick).
 */
import { httpLoad, PICK_CONNECTIONS, type Ratio, type Run, type Stage } from "./load";

export async function v1Cases(stage: Stage): Promise<{ runs: Run[]; ratios: Ratio[] }> {
  const { chillybin, jafflr } = stage;
  const pick = `${chillybin.url}/pick?name=cheese&quantity=1`;
  await stage.check(pick);
  await stage.check(
    `${jafflr.url}/toastie`,
    { method: "POST", body: JSON.stringify({ customer: "bench-v1", ingredients: ["cheese"] }) },
    (body) => body.includes('"pickedVia":"v1"'),
  );
  const runs: Run[] = PICK_CONNECTIONS.map((c) => ({
    key: `v1.c${c}`,
    before: stage.stocked,
    measure: (seconds) => httpLoad({ url: pick, connections: c, seconds, servers: [chillybin] }),
  }));
  runs.push({
    key: "toastie.v1",
    long: true,
    before: stage.stocked,
    measure: (seconds) => stage.toastie("bench-v1", seconds),
  });
  const conns = (c: number) => `${c} conn${c === 1 ? "" : "s"}`;
  const ratios: Ratio[] = PICK_CONNECTIONS.map((c) => ({
    question: `v1 GET /pick ÷ pgbench, ${conns(c)}`,
    a: `v1.c${c}`,
    b: `pgbench.c${c}`,
  }));
  ratios.push(
    { question: "POST /v2/pick ÷ GET /pick (v1), 10 conns", a: "v2.c10", b: "v1.c10" },
    { question: "toasties via v2 ÷ via v1, 50 conns", a: "toastie.v2", b: "toastie.v1" },
  );
  return { runs, ratios };
}
