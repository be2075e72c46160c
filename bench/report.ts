/** The results table: medians of each measurement and the ratios against their targets. */

export interface Row {
  case: string;
  measurement: string;
  value: string;
  p99?: string;
  /** Server CPU per successful operation (µs), or for a ratio row the CPU ratio. */
  cpu?: string;
  failed?: string;
  target?: string;
  /** PASS / MISS when there is a target; blank when the row is for information. */
  result?: "PASS" | "MISS" | "n/a";
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Three significant figures at most; integers above 1000. */
export function num(value: number | undefined, digits = 3): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  if (Math.abs(value) >= 10 ** digits) return Math.round(value).toString();
  return Number(value.toPrecision(digits)).toString();
}

export function verdict(ok: boolean | undefined): Row["result"] {
  if (ok === undefined) return "n/a";
  return ok ? "PASS" : "MISS";
}

export function markdownTable(rows: Row[]): string {
  const header = [
    "#",
    "Measurement",
    "Median",
    "p99 ms",
    "CPU µs/op",
    "Failed",
    "Target",
    "Result",
  ];
  const cells = rows.map((r) => [
    r.case,
    r.measurement,
    r.value,
    r.p99 ?? "",
    r.cpu ?? "",
    r.failed ?? "",
    r.target ?? "",
    r.result ?? "",
  ]);
  return renderTable(header, cells);
}

/** What a target row needs (see Target in ./harness). */
export interface TargetLine {
  n: number;
  what: string;
  measured: number;
  unit: string;
  goal: { op: ">=" | "<="; value: number };
  cpuRatio?: number;
  note?: string;
}

/**
 * How far a measurement is from its goal, ≥ 1 when met: measured ÷ goal for "at least" goals,
 * goal ÷ measured for "at most" goals — so one column reads the same way for every target.
 */
export function toTarget(t: TargetLine): number {
  if (!Number.isFinite(t.measured) || t.measured <= 0) return Number.NaN;
  return t.goal.op === ">=" ? t.measured / t.goal.value : t.goal.value / t.measured;
}

export function targetsTable(targets: TargetLine[]): string {
  const header = [
    "#",
    "Target (issue 13)",
    "Measured",
    "Goal",
    "To target (≥ 1 met)",
    "Met",
    "CPU/op ratio",
  ];
  const unit = (t: TargetLine, v: number) =>
    t.unit === "×" ? `${num(v)}×` : t.unit === "MB" ? `${num(v)} MB` : num(v);
  const cells = [...targets]
    .sort((a, b) => a.n - b.n)
    .map((t) => {
      const score = toTarget(t);
      return [
        String(t.n),
        t.note ? `${t.what} (${t.note})` : t.what,
        unit(t, t.measured),
        `${t.goal.op === ">=" ? "≥" : "≤"} ${unit(t, t.goal.value)}`,
        Number.isFinite(score) ? score.toFixed(2) : "—",
        Number.isFinite(score) ? (score >= 1 ? "met" : "MISSED") : "n/a",
        t.cpuRatio !== undefined && Number.isFinite(t.cpuRatio) ? `${num(t.cpuRatio)}×` : "",
      ];
    });
  return renderTable(header, cells);
}

function renderTable(header: string[], cells: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)));
  const line = (values: string[]) =>
    `| ${values.map((v, i) => v.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...cells.map(line),
  ].join("\n");
}
