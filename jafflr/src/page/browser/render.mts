/**
 * The stall page's parts as HTML, by element id: jafflr renders them into its first answer (so
 * the page shows the stall before, or without, its script) and the script renders them again on
 * every change. One renderer, one place where what customers typed is escaped.
 */
import type { Snapshot, Stock } from "../hub.js";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
export const esc = (value: unknown) =>
  String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? "&#39;");
const tag = (name: string, attrs: Record<string, unknown>, ...content: string[]) => {
  const a = Object.entries(attrs).filter(([, v]) => v !== undefined && v !== "");
  return `<${name}${a.map(([k, v]) => ` ${k}="${esc(v)}"`).join("")}>${content.join("")}</${name}>`;
};
const empty = (columns: number, text: string) =>
  `<tr><td colspan="${columns}" class="muted">${esc(text)}</td></tr>`;
const sum = (points: Snapshot["meter"]["points"], via: "v1" | "v2") =>
  points.slice(-6).reduce((n, p) => n + p[via], 0); // the last minute's six 10-second counts

/** `before`: the stock last shown, so rows that changed flash. */
export function renderParts(s: Snapshot, before: Stock | null = null): Record<string, string> {
  const names = Object.keys(s.stock ?? {}).sort();
  const stockRows = names.map((name) => {
    const quantity = s.stock?.[name] ?? 0;
    const changed = before?.[name] !== undefined && before[name] !== quantity;
    const className = [quantity <= 2 && "low", changed && "changed"].filter(Boolean).join(" ");
    const cells = tag("td", {}, esc(name)) + tag("td", { class: "num" }, `${quantity}`);
    return tag("tr", { "data-ingredient": name, class: className }, cells);
  });
  const checkbox = (v: string) =>
    `<label><input type="checkbox" name="ingredients" value="${esc(v)}" id="ingredient-${esc(v)}">${esc(v)}</label>`;
  const waiting = s.stock ? "Nothing in stock." : "Waiting for the cold store…";
  const { slots, toasting, waiting: queued, queue } = s.grill;
  const slot = (n: number, className: string) => `<div class="${className}"></div>`.repeat(n);
  const { reason = "connecting" } = s.cold;
  return {
    "stock-rows": stockRows.join("") || empty(2, s.stock ? "The cold store is empty." : waiting),
    ingredients: names.map(checkbox).join("") || `<p class="muted">${waiting}</p>`,
    "cold-status": s.cold.connected
      ? ""
      : `Not hearing from the cold store (${esc(reason)}); quantities may be out of date.`,
    "grill-slots":
      slot(toasting, "slot busy") +
      slot(slots - toasting, "slot") +
      slot(Math.min(queued, 12), "slot queued"),
    "grill-text": `${slots} slots: ${toasting} toasting, ${queued} waiting (room for ${queue} in the queue).`,
    "toastie-rows": s.toasties.map(toastieRow).join("") || empty(6, "No toasties yet."),
    meter: meter(s.meter),
  };
}

function toastieRow(t: Snapshot["toasties"][number]): string {
  const via = t.pickedVia ? tag("span", { class: `via ${t.pickedVia}` }, t.pickedVia) : "—";
  const problem =
    t.problem && `${t.problem.title}${t.problem.detail ? `: ${t.problem.detail}` : ""}`;
  const done = t.orderId ? `done, order ${t.orderId}` : "done";
  const outcome = t.status === 200 ? done : (problem ?? `failed (${t.status})`);
  const time = tag("time", { datetime: t.at }, esc(new Date(t.at).toLocaleTimeString()));
  const cells = [time, esc(t.customer), esc(t.ingredients.join(", ")), esc(t.doneness), via];
  const classes = ["time", "customer", "", "", "", t.status === 200 ? "ok" : "bad"];
  const tds = [...cells, esc(outcome)].map((c, i) => tag("td", { class: classes[i] }, c));
  return tag("tr", {}, ...tds);
}

/** The foxtrot meter: toasties per 10 seconds by how they were picked, and the last minute's sums. */
function meter({ windowSeconds, bucketSeconds, points }: Snapshot["meter"]): string {
  const count = windowSeconds / bucketSeconds;
  const [w, h, left, right, top, bottom] = [600, 180, 36, 8, 10, 24];
  const peak = Math.max(1, ...points.map((p) => Math.max(p.v1, p.v2)));
  const x = (i: number) => left + (i / Math.max(1, count - 1)) * (w - left - right);
  const y = (v: number) => top + (1 - v / peak) * (h - top - bottom);
  const offset = count - points.length; // a short series fills from the right
  const line = (via: "v1" | "v2") => {
    const xy = points.map((p, i) => `${x(i + offset).toFixed(1)},${y(p[via]).toFixed(1)}`);
    return tag("polyline", { class: `line ${via}`, points: xy.join(" ") });
  };
  const axis = (px: number, py: number, text: string, anchor = "start") =>
    tag("text", { class: "axis", x: px, y: py, "text-anchor": anchor }, text);
  const grid = (at: number) =>
    tag("line", { class: "grid", x1: left, x2: w - right, y1: at, y2: at });
  const chart = [
    ...[0, peak].map((v) => grid(y(v)) + axis(left - 6, y(v) + 4, String(v), "end")),
    axis(left, h - 6, `${Math.round(windowSeconds / 60)} min ago`),
    axis(w - right, h - 6, "now", "end"),
    line("v1"),
    line("v2"),
  ];
  const [v1, v2] = [sum(points, "v1"), sum(points, "v2")];
  const svg = {
    id: "meter-chart",
    viewBox: `0 0 ${w} ${h}`,
    role: "img",
    "aria-labelledby": "meter-summary",
  };
  const summary = `Last minute: ${v1} toasties via v1, ${v2} via v2.`;
  return (
    tag("svg", svg, ...chart) +
    tag("p", { id: "meter-summary", class: "summary", "data-v1": v1, "data-v2": v2 }, summary)
  );
}
