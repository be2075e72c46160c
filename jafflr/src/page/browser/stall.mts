/// <reference lib="dom" />
/**
 * The stall page's script, a module the browser runs as jafflr's `tsc` emits it (no bundler).
 * The page arrives rendered; this keeps it live from GET /stall/events, rendering each part that
 * changed with the same renderer as jafflr (./render.mts), which escapes what customers typed.
 */

import type { ToastieOutcome } from "../../toastie.js";
import type { Snapshot, Stock } from "../hub.js";
import { esc, renderParts } from "./render.mjs";

let state: Snapshot | undefined;
let flashFrom: Stock | null = null; // the stock before the last change, whose rows flash
const shown = new Map<string, string>();

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function show(patch: Partial<Snapshot>) {
  if (!state) return;
  if (patch.stock) flashFrom = state.stock;
  state = { ...state, ...patch };
  const names = String(Object.keys(state.stock ?? {}).sort());
  for (const [id, html] of Object.entries(renderParts(state, flashFrom))) {
    if (shown.get(id) === html) continue;
    shown.set(id, html);
    const part = byId(id);
    // The ingredients' checkboxes change only with the names, and keep their ticks when they do.
    const boxes = [...part.querySelectorAll("input")];
    if (names && String(boxes.map((i) => i.value)) === names) continue;
    const ticked = new Set(boxes.flatMap((i) => (i.checked ? [i.value] : [])));
    part.innerHTML = html;
    for (const box of part.querySelectorAll("input")) box.checked = ticked.has(box.value);
  }
}

/**
 * EventSource reconnects by itself when a stream ends, but gives up for good on an error answer
 * (a 503 while a jafflr drains or has all the streams it takes): then a fresh one is made here,
 * with backoff.
 */
let retryMs = 2000; // jafflr answers a refused stream with Retry-After: 2
function connect() {
  const source = new EventSource("/stall/events");
  const on = <T,>(event: string, handle: (data: T) => void) =>
    source.addEventListener(event, (e) => handle(JSON.parse((e as MessageEvent<string>).data)));
  on<Snapshot>("snapshot", (snap) => {
    retryMs = 2000;
    setConnection("live", "Live");
    state ??= snap;
    show(snap);
  });
  for (const part of ["stock", "grill", "cold", "meter"] as const)
    on(part, (data) => show({ [part]: data }));
  on<ToastieOutcome>("toastie", (t) =>
    show({ toasties: [t, ...(state?.toasties ?? [])].slice(0, 20) }),
  );
  source.onerror = () => {
    setConnection("connecting", "Reconnecting…");
    if (source.readyState !== EventSource.CLOSED) return;
    setTimeout(connect, retryMs * (1 + Math.random())); // pages refused together spread out
    retryMs = Math.min(retryMs * 2, 15_000);
  };
}

function setConnection(state: "live" | "connecting", text: string) {
  Object.assign(byId("connection"), { textContent: text }).dataset.state = state;
}

function showOutcome(className: string, [first, ...rest]: string[]) {
  const lines = [`<strong>${esc(first)}</strong>`, ...rest.map(esc)].map((l) => `<p>${l}</p>`);
  byId("outcome").innerHTML = `<div class="${className}">${lines.join("")}</div>`;
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
    const what = (err as Error).name === "TimeoutError" ? "No answer from" : "Could not reach";
    showOutcome("problem", [`${what} jafflr`, "Check Recent toasties before ordering again."]);
  } finally {
    button.disabled = false;
  }
}

byId("order-form").addEventListener("submit", (e) => void order(e as SubmitEvent));
connect();
