/** Start-up to ready (reported, no target): spawn → /ready 200, polled every 5 ms. */

import type { BenchCase } from "../harness";
import { median, num, type Row } from "../report";

const timings = new Map<string, number[]>();
const add = (key: string, ms: number) => timings.set(key, [...(timings.get(key) ?? []), ms]);

const startup: BenchCase = {
  name: "startup",
  byDefault: true,
  async setup(ctx) {
    const { db, chillybin } = await ctx.main();
    // The same settings as the measured instances; the database is migrated already.
    for (let i = 0; i < ctx.rounds; i++) {
      const c = await ctx.startChillybin({
        name: `chillybin-start-${i}`,
        db,
        nodeOptions: ctx.heap.chillybin,
      });
      add("chillybin", c.readyMs);
      add("chillybin-listening", c.listeningMs);
      await c.stop();
      const j = await ctx.startJafflr({
        name: `jafflr-start-${i}`,
        chillybin,
        nodeOptions: ctx.heap.jafflr,
      });
      add("jafflr", j.readyMs);
      add("jafflr-listening", j.listeningMs);
      await j.stop();
    }
  },
  runs() {
    return [];
  },
  report() {
    const rows: Row[] = [];
    const row = (key: string, measurement: string) => {
      const values = timings.get(key);
      if (!values) return;
      rows.push({
        case: "startup",
        measurement: `${measurement} (${values.length === 1 ? "1 start" : `median of ${values.length}`})`,
        value: `${num(median(values))} ms`,
      });
    };
    row("chillybin", "start-up to ready, chillybin, database already migrated");
    row("chillybin-listening", "  ↳ of which spawn → listening");
    row("jafflr", "start-up to ready, jafflr");
    row("jafflr-listening", "  ↳ of which spawn → listening");
    return { rows, targets: [], notes: [] };
  },
};
export default startup;
