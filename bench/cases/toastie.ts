/** A toastie through jafflr via v2 (one POST /v2/pick per toastie), 50 connections, no cooking. */

import { measuredRow } from "../figures";
import {
  type BenchCase,
  expectOk,
  JSON_HEADERS,
  restock,
  TOASTIE_CONNECTIONS,
  TOASTIE_INGREDIENTS,
  V2_CUSTOMER,
} from "../harness";
import type { Launched } from "../launch";
import { httpLoad, type Sample } from "../load";
import { median, num } from "../report";

/** A toastie for `customer` through `jafflr`, counting the CPU of every process that serves it. */
export function toastieLoad(
  jafflr: Launched,
  processes: Launched[],
  customer: string,
  durationS: number,
): Promise<Sample> {
  return httpLoad({
    url: `${jafflr.url}/toastie`,
    method: "POST",
    body: { customer, ingredients: TOASTIE_INGREDIENTS, doneness: "light" },
    connections: TOASTIE_CONNECTIONS,
    durationS,
    processes,
  });
}

/** Checks a toastie for `customer` goes the expected way (v1 or v2). */
export async function expectToastie(
  jafflr: Launched,
  customer: string,
  via: string,
): Promise<void> {
  await expectOk(`jafflr POST /toastie for ${customer}`, `${jafflr.url}/toastie`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ customer, ingredients: TOASTIE_INGREDIENTS, doneness: "light" }),
    check: (body) => (JSON.parse(body) as { pickedVia?: string }).pickedVia === via,
  });
}

/** "jafflr 900 µs + chillybin 2100 µs": where a toastie's CPU goes. */
export function cpuSplit(list: Sample[]): string {
  const names = Object.keys(list[0]?.cpuUsPerOpBy ?? {});
  return names
    .map((n) => `${n} ${num(median(list.map((s) => s.cpuUsPerOpBy?.[n] ?? Number.NaN)))} µs`)
    .join(" + ");
}

const toastie: BenchCase = {
  name: "toastie",
  byDefault: true,
  async setup(ctx) {
    const { db, jafflr } = await ctx.main();
    await restock(ctx.pool(db));
    await expectToastie(jafflr, V2_CUSTOMER, "v2");
  },
  runs(ctx) {
    return [
      {
        key: "toastie.v2",
        duration: "toastie",
        before: async () => restock(ctx.pool((await ctx.main()).db)),
        measure: async (durationS) => {
          const { jafflr, chillybin } = await ctx.main();
          return toastieLoad(jafflr, [jafflr, chillybin], V2_CUSTOMER, durationS);
        },
      },
    ];
  },
  report(_ctx, results) {
    return {
      rows: measuredRow(
        results,
        "toastie",
        "toastie.v2",
        `jafflr POST /toastie via v2 (1 call), ${TOASTIE_CONNECTIONS} conns`,
        "toasties/s",
      ),
      targets: [],
      notes: results.has("toastie.v2")
        ? [
            `- toastie: CPU per v2 toastie by process (median): ${cpuSplit(results.get("toastie.v2"))}.`,
          ]
        : [],
    };
  },
};
export default toastie;
