/**
 * Target 5 (and issue 10 point 6): peak RSS per service under the bench load with the heap
 * sizing the image uses, and throughput with that sizing within 5 % of an unconstrained pair.
 *
 * The main chillybin and jafflr (which serve every other case too) run with the image's
 * NODE_OPTIONS; a second pair without any runs the same loads in adjacent runs: a v2 toastie at
 * 50 connections (both services) and POST /v2/pick at 10 (chillybin alone).
 */
import { measuredRow, ratioTarget } from "../figures";
import {
  type BenchCase,
  type Context,
  restock,
  type Service,
  type Target,
  TOASTIE_CONNECTIONS,
  V2_CUSTOMER,
} from "../harness";
import { procStatusMiB } from "../launch";
import { httpLoad } from "../load";
import { num, type Row } from "../report";
import { toastieLoad } from "./toastie";

const GOAL_MB = 120;

let free: { chillybin: Service; jafflr: Service } | undefined;

const memory: BenchCase = {
  name: "memory",
  byDefault: true,
  async setup(ctx) {
    const { db } = await ctx.main();
    const chillybin = await ctx.service("chillybin-free", () =>
      ctx.startChillybin({ name: "chillybin-free", db, nodeOptions: "" }),
    );
    const jafflr = await ctx.service("jafflr-free", () =>
      ctx.startJafflr({ name: "jafflr-free", chillybin, nodeOptions: "" }),
    );
    free = { chillybin, jafflr };
  },
  runs(ctx) {
    const stocked = async () => restock(ctx.pool((await ctx.main()).db));
    const pair = async (side: "sized" | "free") =>
      side === "sized" ? await ctx.main() : (free as { chillybin: Service; jafflr: Service });
    return (["sized", "free"] as const).flatMap((side) => [
      {
        key: `mem.${side}.toastie`,
        duration: "toastie" as const,
        before: stocked,
        measure: async (durationS: number) => {
          const { jafflr, chillybin } = await pair(side);
          return toastieLoad(jafflr, [jafflr, chillybin], V2_CUSTOMER, durationS);
        },
      },
      {
        key: `mem.${side}.pick`,
        duration: "short" as const,
        before: stocked,
        measure: async (durationS: number) => {
          const { chillybin } = await pair(side);
          return httpLoad({
            url: `${chillybin.url}/v2/pick`,
            method: "POST",
            body: { ingredient: "cheese", quantity: 1, customer: "bench" },
            connections: 10,
            durationS,
            processes: [chillybin],
          });
        },
      },
    ]);
  },
  async report(ctx, results) {
    const rows: Row[] = [];
    for (const side of ["sized", "free"] as const) {
      const label = side === "sized" ? "image heap sizing" : "no NODE_OPTIONS";
      rows.push(
        ...measuredRow(
          results,
          "memory",
          `mem.${side}.toastie`,
          `v2 toastie, ${TOASTIE_CONNECTIONS} conns, ${label}`,
          "toasties/s",
        ),
        ...measuredRow(results, "memory", `mem.${side}.pick`, `POST /v2/pick, 10 conns, ${label}`),
      );
    }
    const main = await ctx.main();
    const targets: Target[] = [];
    const mb = (mib: number | undefined) =>
      mib === undefined ? Number.NaN : (mib * 2 ** 20) / 1e6;
    for (const [name, service] of [
      ["chillybin", main.chillybin],
      ["jafflr", main.jafflr],
      ["chillybin (no NODE_OPTIONS)", free?.chillybin],
      ["jafflr (no NODE_OPTIONS)", free?.jafflr],
    ] as const) {
      if (!service) continue;
      const peak = mb(procStatusMiB(service.pid, "VmHWM"));
      const file = mb(procStatusMiB(service.pid, "RssFile"));
      const anon = mb(procStatusMiB(service.pid, "VmRSS")) - file;
      rows.push({
        case: "memory",
        measurement: `peak RSS under load (VmHWM since ready), ${name} (start-up peak ${num(mb(service.startupPeakRssMiB))} MB; ${num(mb(service.readyRssMiB))} MB when ready; now ${num(anon)} MB anonymous + ${num(file)} MB file-backed)`,
        value: `${num(peak)} MB`,
      });
      if (service.nodeOptions === ctx.heap[name as "chillybin" | "jafflr"] && !name.includes("(")) {
        targets.push({
          n: 5,
          what: `peak RSS under the bench load, ${name}${limitNote(ctx, name)}`,
          measured: peak,
          unit: "MB",
          goal: { op: "<=", value: GOAL_MB },
          note: service.nodeOptions ? `NODE_OPTIONS=${service.nodeOptions}` : "no NODE_OPTIONS",
        });
      }
    }
    targets.push(
      ratioTarget(
        results,
        { n: 5, what: "v2 toasties/s, image heap sizing ÷ none", goal: { op: ">=", value: 0.95 } },
        "mem.sized.toastie",
        "mem.free.toastie",
      ),
      ratioTarget(
        results,
        { n: 5, what: "POST /v2/pick, image heap sizing ÷ none", goal: { op: ">=", value: 0.95 } },
        "mem.sized.pick",
        "mem.free.pick",
      ),
    );
    return {
      rows,
      targets,
      notes: [
        `- memory: VmHWM (the kernel's high-water mark of the resident set) of the main instances, reset once the service is ready (clear_refs 5) and read after every case's load, i.e. the peak across all of them under load; start-up's own peak is given beside it. jafflr sets V8's --liftoff-only as it starts: without it, V8's optimising compile of undici's llhttp WebAssembly parser at the first call to chillybin adds ~35 MB for a moment (130 MB peak, measured on Node 20.20). It includes file-backed pages (mostly the node binary, shared by every node process on a host; a container's memory limit counts them too). Heap sizing from ${ctx.heap.source}; container limits ${
          Object.entries(ctx.heap.limits)
            .map(([s, l]) => `${s} ${l}`)
            .join(", ") || "not found"
        }.`,
      ],
    };
  },
};
export default memory;

function limitNote(ctx: Context, name: string): string {
  const limit = ctx.heap.limits[name];
  return limit ? ` (limit ${limit})` : "";
}
