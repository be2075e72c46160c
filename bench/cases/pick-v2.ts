/**
 * chillybin's POST /v2/pick, one item, at 1, 10 and 50 connections: each request records an
 * order. The v1 comparisons (target 4: v2 ≥ 0.8× v1 per request) live in ./pick-v1.ts.
 */
import { measuredRow } from "../figures";
import { type BenchCase, conns, expectOk, JSON_HEADERS, restock } from "../harness";
import { httpLoad } from "../load";

export const PICK_CONNECTIONS = [1, 10, 50];

const pickV2: BenchCase = {
  name: "pick-v2",
  byDefault: true,
  async setup(ctx) {
    const { chillybin } = await ctx.main();
    await expectOk("chillybin POST /v2/pick", `${chillybin.url}/v2/pick`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ ingredient: "cheese", quantity: 1, customer: "bench" }),
    });
  },
  runs(ctx) {
    return PICK_CONNECTIONS.map((c) => ({
      key: `pick.v2.c${c}`,
      duration: "short" as const,
      before: async () => restock(ctx.pool((await ctx.main()).db)),
      measure: async (durationS: number) => {
        const { chillybin } = await ctx.main();
        // No Idempotency-Key: every request is a new order row, as a first try is.
        return httpLoad({
          url: `${chillybin.url}/v2/pick`,
          method: "POST",
          body: { ingredient: "cheese", quantity: 1, customer: "bench" },
          connections: c,
          durationS,
          processes: [chillybin],
        });
      },
    }));
  },
  report(_ctx, results) {
    return {
      rows: PICK_CONNECTIONS.flatMap((c) =>
        measuredRow(
          results,
          "pick",
          `pick.v2.c${c}`,
          `chillybin POST /v2/pick (1 item), ${conns(c)}`,
        ),
      ),
      targets: [],
      notes: [
        "- pick: POST /v2/pick without an Idempotency-Key (each request a new order row); stock set to 1 000 000 000 with SQL (POST /restock caps levels at 10 000) and the table vacuumed before every run.",
      ],
    };
  },
};
export default pickV2;
