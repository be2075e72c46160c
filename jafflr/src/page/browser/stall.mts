/// <reference lib="dom" />
/**
 * The stall page's script, a module the browser runs as jafflr's `tsc` emits it (no bundler);
 * it imports only types. Data reaches the page through textContent or attributes, never
 * markup, so a customer called `<img src=x onerror=…>` stays text.
 */

import type { ToastieOutcome } from "../../toastie.js";
import type { MeterPoint, Snapshot, Stock } from "../hub.js";

const RECENT = 20;
let windowSeconds = 300;
let [toasties, points, stock]: [ToastieOutcome[], MeterPoint[], Stock] = [[], [], {}];

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function el(tag: string, className: string, ...content: (Node | string)[]): HTMLElement {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...content);
  return node;
}

function svg(tag: string, attrs: Record<string, string | number>, text = ""): SVGElement {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.textContent = text;
  return node;
}

function fill(id: string, rows: HTMLElement[], columns: number, empty: string) {
  const none = Object.assign(el("td", "muted", empty), { colSpan: columns });
  byId(id).replaceChildren(...(rows.length ? rows : [el("tr", "", none)]));
}

/**
 * EventSource reconnects by itself when a stream ends, but gives up for good on an error answer
 * (e.g. 503 while a jafflr drains): then a fresh one is made here, with backoff.
 */
let retryMs = 1000;
function connect() {
  const source = new EventSource("/stall/events");
  const on = <T,>(event: string, handle: (data: T) => void) =>
    source.addEventListener(event, (e) => handle(JSON.parse((e as MessageEvent<string>).data)));
  on<Snapshot>("snapshot", (snap) => {
    retryMs = 1000;
    setConnection("live", "Live");
    windowSeconds = snap.meter.windowSeconds;
    renderGrill(snap.grill);
    renderCold(snap.cold);
    if (snap.stock) renderStock(snap.stock);
    renderToasties(snap.toasties);
    renderMeter(snap.meter.points);
  });
  on("stock", renderStock);
  on("grill", renderGrill);
  on("cold", renderCold);
  on<ToastieOutcome>("toastie", (t) => renderToasties([t, ...toasties]));
  on<MeterPoint>("meter", (p) => renderMeter([...points, p]));
  source.onerror = () => {
    setConnection("connecting", "Reconnecting…");
    if (source.readyState !== EventSource.CLOSED) return;
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 15_000);
  };
}

function setConnection(state: "live" | "connecting", text: string) {
  Object.assign(byId("connection"), { textContent: text }).dataset.state = state;
}

function renderStock(next: Stock) {
  const names = Object.keys(next).sort();
  const rows = names.map((name) => {
    const quantity = next[name] ?? 0;
    const tr = el("tr", "", el("td", "", name), el("td", "num", `${quantity}`));
    tr.dataset.ingredient = name;
    tr.classList.toggle("low", quantity <= 2);
    tr.classList.toggle("changed", stock[name] !== undefined && stock[name] !== quantity);
    return tr;
  });
  stock = next;
  fill("stock-rows", rows, 2, "The cold store is empty.");
  // The checkboxes change only with the names, and keep their ticks and focus when they do.
  const box = byId("ingredients");
  const old = new Map([...box.querySelectorAll("input")].map((i) => [i.value, i.parentNode]));
  if ([...old.keys()].join() === names.join() && names.length) return;
  const focused = document.activeElement as HTMLElement | null;
  const labels = names.map((name) => old.get(name) ?? checkbox(name));
  box.replaceChildren(...(labels.length ? labels : [el("label", "empty", "Nothing in stock.")]));
  focused?.focus();
}

function checkbox(value: string): HTMLElement {
  const input = Object.assign(el("input", ""), { type: "checkbox", name: "ingredients", value });
  return el("label", "", Object.assign(input, { id: `ingredient-${value}` }), value);
}

function renderCold(cold: Snapshot["cold"]) {
  byId("cold-status").textContent = cold.connected
    ? ""
    : `Not hearing from the cold store (${cold.reason ?? "connecting"}); quantities may be out of date.`;
}

function renderGrill({ slots, toasting, waiting, queue }: Snapshot["grill"]) {
  const divs = (n: number, className: string) =>
    Array.from({ length: n }, () => el("div", className));
  const busy = [...divs(toasting, "slot busy"), ...divs(slots - toasting, "slot")];
  byId("grill-slots").replaceChildren(...busy, ...divs(Math.min(waiting, 12), "slot queued"));
  byId("grill-text").textContent =
    `${slots} slots: ${toasting} toasting, ${waiting} waiting (room for ${queue} in the queue).`;
}

function renderToasties(next: ToastieOutcome[]) {
  toasties = next.slice(0, RECENT);
  const rows = toasties.map((t) => {
    const via = t.pickedVia ? el("span", `via ${t.pickedVia}`, t.pickedVia) : "—";
    const problem =
      t.problem && `${t.problem.title}${t.problem.detail ? `: ${t.problem.detail}` : ""}`;
    const done = t.orderId ? `done, order ${t.orderId}` : "done";
    const outcome = t.status === 200 ? done : (problem ?? `failed (${t.status})`);
    const cells = [new Date(t.at).toLocaleTimeString(), t.customer, t.ingredients.join(", ")];
    const classes = ["time", "customer", "", "", "", t.status === 200 ? "ok" : "bad"];
    const tds = [...cells, t.doneness, via, outcome].map((c, i) => el("td", classes[i] ?? "", c));
    return el("tr", "", ...tds);
  });
  fill("toastie-rows", rows, 6, "No toasties yet.");
}

function renderMeter(next: MeterPoint[]) {
  points = next.slice(-windowSeconds);
  const [w, h, left, right, top, bottom] = [600, 180, 36, 8, 10, 24];
  const peak = Math.max(1, ...points.map((p) => Math.max(p.v1, p.v2)));
  const x = (i: number) => left + (i / Math.max(1, windowSeconds - 1)) * (w - left - right);
  const y = (v: number) => top + (1 - v / peak) * (h - top - bottom);
  const offset = windowSeconds - points.length; // a fresh series fills from the right
  const line = (via: "v1" | "v2") => {
    const xy = points.map((p, i) => `${x(i + offset).toFixed(1)},${y(p[via]).toFixed(1)}`);
    return svg("polyline", { class: `line ${via}`, points: xy.join(" ") });
  };
  const axis = (px: number, py: number, text: string, anchor = "start") =>
    svg("text", { class: "axis", x: px, y: py, "text-anchor": anchor }, text);
  const grid = (at: number) =>
    svg("line", { class: "grid", x1: left, x2: w - right, y1: at, y2: at });
  byId("meter-chart").replaceChildren(
    ...[0, peak].map((v) => grid(y(v))),
    ...[0, peak].map((v) => axis(left - 6, y(v) + 4, String(v), "end")),
    axis(left, h - 6, `${Math.round(windowSeconds / 60)} min ago`),
    axis(w - right, h - 6, "now", "end"),
    ...(["v1", "v2"] as const).map(line),
  );
  const sum = (via: "v1" | "v2") => points.slice(-60).reduce((n, p) => n + p[via], 0);
  const summary = byId("meter-summary");
  Object.assign(summary.dataset, { v1: `${sum("v1")}`, v2: `${sum("v2")}` });
  summary.textContent = `Last minute: v1 ${sum("v1")} picks, v2 ${sum("v2")} picks.`;
}

function showOutcome(className: string, [first, ...rest]: string[]) {
  const lines = [el("p", "", el("strong", "", first ?? "")), ...rest.map((l) => el("p", "", l))];
  byId("outcome").replaceChildren(el("div", className, ...lines));
}

async function order(event: SubmitEvent) {
  event.preventDefault();
  const button = byId<HTMLButtonElement>("toast-it");
  const form = new FormData(event.currentTarget as HTMLFormElement);
  const customer = String(form.get("customer") ?? "").trim();
  const [ingredients, doneness] = [form.getAll("ingredients"), form.get("doneness")];
  button.disabled = true;
  showOutcome("pending", [`Toasting for ${customer || "anonymous"}…`]);
  try {
    const res = await fetch("/toastie", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ ingredients, doneness, ...(customer ? { customer } : {}) }),
      // Longer than a burnt toastie behind a full queue; a hung request must end somehow.
      signal: AbortSignal.timeout(150_000),
    });
    const body = await res.json().catch(() => null);
    if (res.ok && body) {
      showOutcome("done", [
        `Done! A ${body.doneness} toastie for ${body.customer}.`,
        `Picked via ${body.pickedVia}${body.orderId ? `, order ${body.orderId}` : ""}. Ingredients: ${body.ingredients.join(", ")}.`,
      ]);
    } else {
      const title = body?.title ?? `jafflr answered ${res.status}`;
      showOutcome("problem", body?.detail ? [title, body.detail] : [title]);
    }
  } catch (err) {
    const timeout = err instanceof DOMException && err.name === "TimeoutError";
    showOutcome("problem", [
      timeout ? "No answer from jafflr" : "jafflr could not be reached",
      "It may or may not have been made: check Recent toasties before ordering again.",
    ]);
  } finally {
    button.disabled = false;
  }
}

byId("order-form").addEventListener("submit", (e) => void order(e as SubmitEvent));
renderMeter([]);
connect();
