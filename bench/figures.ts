/** Medians and ratios of the recorded samples, and the measurement-table rows made of them. */
import type { Results, Target } from "./harness";
import { median, num, type Row } from "./report";

export function perSec(results: Results, key: string): number {
  return median(results.get(key).map((s) => s.perSec));
}

export function cpuPerOp(results: Results, key: string): number {
  return median(results.get(key).map((s) => s.cpuUsPerOp ?? Number.NaN));
}

/** a ÷ b of the medians, for throughput and for server CPU per operation. */
export function ratio(results: Results, a: string, b: string): { value: number; cpu: number } {
  if (!results.has(a) || !results.has(b)) return { value: Number.NaN, cpu: Number.NaN };
  return {
    value: perSec(results, a) / perSec(results, b),
    cpu: cpuPerOp(results, a) / cpuPerOp(results, b),
  };
}

/** The measurement row of one key (undefined when it was not run). */
export function measuredRow(
  results: Results,
  group: string,
  key: string,
  measurement: string,
  unit = "req/s",
): Row[] {
  if (!results.has(key)) return [];
  const list = results.get(key);
  const pgbench = list.every((s) => s.cpuUsPerOp === undefined && s.p99 === undefined);
  return [
    {
      case: group,
      measurement,
      value: `${num(perSec(results, key))} ${unit}`,
      p99: pgbench
        ? `(mean ${num(median(list.map((s) => s.p50 ?? Number.NaN)))})`
        : num(median(list.map((s) => s.p99 ?? Number.NaN))),
      cpu: num(cpuPerOp(results, key)),
      failed: list.reduce((sum, s) => sum + s.failed, 0).toString(),
    },
  ];
}

/** A ratio row (information only: targets go in the targets table). */
export function ratioRow(
  results: Results,
  group: string,
  measurement: string,
  a: string,
  b: string,
): Row[] {
  if (!results.has(a) || !results.has(b)) return [];
  const r = ratio(results, a, b);
  return [
    {
      case: group,
      measurement,
      value: `${num(r.value)}×`,
      cpu: Number.isFinite(r.cpu) ? `${num(r.cpu)}×` : "",
    },
  ];
}

/** A throughput-ratio target a ÷ b (n/a, saying which, when a side was not run). */
export function ratioTarget(
  results: Results,
  t: Omit<Target, "measured" | "unit" | "cpuRatio">,
  a: string,
  b: string,
): Target {
  const missing = [a, b].filter((k) => !results.has(k));
  if (missing.length > 0) {
    return { ...t, measured: Number.NaN, unit: "×", note: `not run: ${missing.join(", ")}` };
  }
  const r = ratio(results, a, b);
  return { ...t, measured: r.value, unit: "×", cpuRatio: r.cpu };
}
