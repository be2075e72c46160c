/// <reference lib="dom" />
/**
 * The stall page's script (served as /stall/assets/stall.<hash>.js, a module script). An .mts
 * file so jafflr's own `tsc` emits it as an ES module (dist/page/browser/stall.mjs) that a
 * browser runs as is: no bundler, no second build. It imports nothing.
 * Every piece of data reaches the page through textContent or attributes, never through markup,
 * so a customer called `<img src=x onerror=…>` stays text.
 */
export {};

{
  type Stock = Record<string, number>;
  interface Grill {
    slots: number;
    toasting: number;
    waiting: number;
    queue: number;
  }
  interface Problem {
    title?: string;
    detail?: string;
    status?: number;
    errors?: { detail?: string }[];
  }
  interface Toastie {
    at: string;
    customer: string;
    ingredients: string[];
    doneness: string;
    pickedVia?: "v1" | "v2";
    status: number;
    orderId?: string;
    problem?: { title: string; detail?: string };
  }
  interface MeterPoint {
    t: number;
    v1: number;
    v2: number;
  }
  interface Cold {
    connected: boolean;
    reason?: string;
  }
  interface Snapshot {
    grill: Grill;
    stock: Stock | null;
    cold: Cold;
    toasties: Toastie[];
    meter: { windowSeconds: number; points: MeterPoint[] };
  }

  const RECENT = 20;
  const SVG = "http://www.w3.org/2000/svg";
  let windowSeconds = 300;
  let toasties: Toastie[] = [];
  let points: MeterPoint[] = [];
  let stock: Stock = {};

  const byId = <T extends HTMLElement | SVGElement>(id: string) => {
    const found = document.getElementById(id);
    if (!found) throw new Error(`the page has no #${id}`);
    return found as unknown as T;
  };

  function el<K extends keyof HTMLElementTagNameMap>(
    tag: K,
    text?: string,
    className?: string,
  ): HTMLElementTagNameMap[K] {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ── connection ────────────────────────────────────────────────────────────────────────────
  function setConnection(state: "live" | "connecting", text: string) {
    const node = byId<HTMLElement>("connection");
    node.dataset.state = state;
    node.textContent = text;
  }

  /**
   * EventSource reconnects by itself when a stream ends, but gives up for good on an error
   * answer (e.g. 503 while a jafflr drains): then a fresh one is made here, with backoff.
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
      toasties = snap.toasties.slice(0, RECENT);
      points = snap.meter.points;
      renderGrill(snap.grill);
      renderCold(snap.cold);
      if (snap.stock) renderStock(snap.stock);
      renderToasties();
      renderMeter();
    });
    on<Stock>("stock", renderStock);
    on<Grill>("grill", renderGrill);
    on<Cold>("cold", renderCold);
    on<Toastie>("toastie", (t) => {
      toasties = [t, ...toasties].slice(0, RECENT);
      renderToasties();
    });
    on<MeterPoint>("meter", (p) => {
      points.push(p);
      if (points.length > windowSeconds) points.splice(0, points.length - windowSeconds);
      renderMeter();
    });
    source.onerror = () => {
      setConnection("connecting", "Reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 15_000);
      }
    };
  }

  // ── cold store and the ingredient checkboxes ──────────────────────────────────────────────
  function renderStock(next: Stock) {
    const before = stock;
    stock = next;
    const names = Object.keys(next).sort();
    const rows = names.map((name) => {
      const quantity = next[name] ?? 0;
      const tr = el("tr");
      tr.dataset.ingredient = name;
      if (quantity <= 2) tr.classList.add("low");
      if (before[name] !== undefined && before[name] !== quantity) tr.classList.add("changed");
      tr.append(el("td", name), el("td", String(quantity), "num"));
      return tr;
    });
    if (rows.length === 0) {
      const td = el("td", "The cold store is empty.", "muted");
      td.colSpan = 2;
      rows.push(el("tr"));
      rows[0]?.append(td);
    }
    byId<HTMLElement>("stock-rows").replaceChildren(...rows);
    renderIngredients(names);
  }

  /** Rebuilt only when the set of names changes, so ticks and focus survive stock updates. */
  let ingredientNames = "";
  function renderIngredients(names: string[]) {
    const key = names.join(",");
    if (key === ingredientNames) return;
    ingredientNames = key;
    const box = byId<HTMLElement>("ingredients");
    const checked = new Set(
      [...box.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value),
    );
    const focused =
      document.activeElement instanceof HTMLInputElement && box.contains(document.activeElement)
        ? document.activeElement.value
        : undefined;
    const labels = names.map((name) => {
      const input = el("input");
      input.type = "checkbox";
      input.name = "ingredients";
      input.value = name;
      input.id = `ingredient-${name}`;
      input.checked = checked.has(name);
      const label = el("label");
      label.htmlFor = input.id;
      label.append(input, document.createTextNode(name));
      return label;
    });
    if (labels.length === 0) labels.push(el("label", "Nothing in stock.", "empty"));
    box.replaceChildren(...labels);
    if (focused) document.getElementById(`ingredient-${focused}`)?.focus();
  }

  function renderCold(cold: Cold) {
    byId<HTMLElement>("cold-status").textContent = cold.connected
      ? ""
      : `Not hearing from the cold store (${cold.reason ?? "connecting"}); quantities may be out of date.`;
  }

  // ── grill ─────────────────────────────────────────────────────────────────────────────────
  function renderGrill(grill: Grill) {
    const slots: HTMLElement[] = [];
    for (let i = 0; i < grill.slots; i++) {
      slots.push(el("div", undefined, i < grill.toasting ? "slot busy" : "slot"));
    }
    for (let i = 0; i < Math.min(grill.waiting, 12); i++)
      slots.push(el("div", undefined, "slot queued"));
    byId<HTMLElement>("grill-slots").replaceChildren(...slots);
    byId<HTMLElement>("grill-text").textContent =
      `${grill.slots} slots: ${grill.toasting} toasting, ${grill.waiting} waiting (room for ${grill.queue} in the queue).`;
  }

  // ── recent toasties ───────────────────────────────────────────────────────────────────────
  function outcomeText(t: Toastie): string {
    if (t.status === 200) return t.orderId ? `done, order ${t.orderId}` : "done";
    const problem = t.problem;
    return problem
      ? `${problem.title}${problem.detail ? `: ${problem.detail}` : ""}`
      : `failed (${t.status})`;
  }

  function renderToasties() {
    const rows = toasties.map((t) => {
      const tr = el("tr");
      const via = el("td");
      if (t.pickedVia) via.append(el("span", t.pickedVia, `via ${t.pickedVia}`));
      else via.textContent = "—";
      const outcome = el("td", outcomeText(t), t.status === 200 ? "ok" : "bad");
      tr.append(
        el("td", new Date(t.at).toLocaleTimeString(), "time"),
        el("td", t.customer, "customer"),
        el("td", t.ingredients.join(", ")),
        el("td", t.doneness),
        via,
        outcome,
      );
      return tr;
    });
    if (rows.length === 0) {
      const td = el("td", "No toasties yet.", "muted");
      td.colSpan = 6;
      rows.push(el("tr"));
      rows[0]?.append(td);
    }
    byId<HTMLElement>("toastie-rows").replaceChildren(...rows);
  }

  // ── foxtrot meter ─────────────────────────────────────────────────────────────────────────
  function renderMeter() {
    const chart = byId<SVGElement>("meter-chart");
    const [w, h, left, right, top, bottom] = [600, 180, 36, 8, 10, 24];
    const peak = Math.max(1, ...points.map((p) => Math.max(p.v1, p.v2)));
    const x = (i: number) => left + (i / Math.max(1, windowSeconds - 1)) * (w - left - right);
    const y = (v: number) => top + (1 - v / peak) * (h - top - bottom);
    const offset = windowSeconds - points.length; // a fresh series fills from the right
    const line = (via: "v1" | "v2") =>
      svg("polyline", {
        class: `line ${via}`,
        points: points
          .map((p, i) => `${x(i + offset).toFixed(1)},${y(p[via]).toFixed(1)}`)
          .join(" "),
      });
    chart.replaceChildren(
      svg("line", { class: "grid", x1: left, x2: w - right, y1: y(0), y2: y(0) }),
      svg("line", { class: "grid", x1: left, x2: w - right, y1: y(peak), y2: y(peak) }),
      svg("text", { class: "axis", x: left - 6, y: y(0) + 4, "text-anchor": "end" }, "0"),
      svg(
        "text",
        { class: "axis", x: left - 6, y: y(peak) + 4, "text-anchor": "end" },
        String(peak),
      ),
      svg(
        "text",
        { class: "axis", x: left, y: h - 6 },
        `${Math.round(windowSeconds / 60)} min ago`,
      ),
      svg("text", { class: "axis", x: w - right, y: h - 6, "text-anchor": "end" }, "now"),
      line("v1"),
      line("v2"),
    );
    const recent = points.slice(-60);
    const sum = (via: "v1" | "v2") => recent.reduce((n, p) => n + p[via], 0);
    const [v1, v2] = [sum("v1"), sum("v2")];
    const summary = byId<HTMLElement>("meter-summary");
    summary.textContent = `Last minute: v1 ${v1} picks, v2 ${v2} picks.`;
    summary.dataset.v1 = String(v1);
    summary.dataset.v2 = String(v2);
  }

  // ── the order form ────────────────────────────────────────────────────────────────────────
  function showOutcome(className: string, lines: string[]) {
    const box = el("div", undefined, className);
    const [first, ...rest] = lines;
    const head = el("p");
    head.append(el("strong", first));
    box.append(head, ...rest.map((line) => el("p", line)));
    byId<HTMLElement>("outcome").replaceChildren(box);
  }

  function problemLines(problem: Problem | null, status: number): string[] {
    const title = problem?.title ?? `jafflr answered ${status}`;
    const lines = [title];
    if (problem?.detail) lines.push(problem.detail);
    return lines;
  }

  async function order(event: SubmitEvent) {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const button = byId<HTMLButtonElement>("toast-it");
    const customer = byId<HTMLInputElement>("customer").value.trim();
    const ingredients = [
      ...form.querySelectorAll<HTMLInputElement>("input[name=ingredients]:checked"),
    ].map((i) => i.value);
    const doneness = byId<HTMLSelectElement>("doneness").value;
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
        const id = body.orderId ? `, order ${body.orderId}` : "";
        showOutcome("done", [
          `Done! A ${body.doneness} toastie for ${body.customer}.`,
          `Picked via ${body.pickedVia}${id}. Ingredients: ${(body.ingredients as string[]).join(", ")}.`,
        ]);
      } else {
        showOutcome("problem", problemLines(body as Problem | null, res.status));
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

  byId<HTMLFormElement>("order-form").addEventListener("submit", (e) => void order(e));
  renderMeter();
  connect();
}
