import { DONENESS } from "../grill";

/**
 * The stall page's HTML: a fixed skeleton with no data in it (the script fills it in with
 * textContent from the event stream), so nothing a customer types can ever become markup here.
 */
export function stallHtml(assets: { script: string; styles: string }): string {
  const options = DONENESS.map((d) => `<option value="${d}">${d}</option>`).join("");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>Gita's toastie stall</title>
<link rel="stylesheet" href="${assets.styles}">
<script type="module" src="${assets.script}"></script>
</head>
<body>
<header class="top">
  <h1>Gita's toastie stall</h1>
  <p id="connection" class="connection" role="status" data-state="connecting">Connecting…</p>
</header>
<main class="layout">
  <section class="card order" aria-labelledby="order-heading">
    <h2 id="order-heading">Order a toastie</h2>
    <form id="order-form" novalidate>
      <div class="field">
        <label for="customer">Customer</label>
        <input id="customer" name="customer" type="text" autocomplete="name" maxlength="64" placeholder="anonymous" spellcheck="false">
      </div>
      <fieldset class="field">
        <legend>Ingredients</legend>
        <p class="hint">Every toastie comes on two slices of bread, and needs cheese (or sheese).</p>
        <div id="ingredients" class="ingredients"><p class="muted">Waiting for the cold store…</p></div>
      </fieldset>
      <div class="field">
        <label for="doneness">Doneness</label>
        <select id="doneness" name="doneness">${options}</select>
      </div>
      <button id="toast-it" type="submit">Toast it</button>
    </form>
    <div id="outcome" class="outcome" role="status" aria-live="polite"></div>
  </section>
  <section class="card grill" aria-labelledby="grill-heading">
    <h2 id="grill-heading">Grill</h2>
    <div id="grill-slots" class="slots" aria-hidden="true"></div>
    <p id="grill-text">…</p>
  </section>
  <section class="card stock">
    <table>
      <caption>Cold store</caption>
      <thead><tr><th scope="col">Ingredient</th><th scope="col" class="num">Quantity</th></tr></thead>
      <tbody id="stock-rows"><tr><td colspan="2" class="muted">Waiting for the cold store…</td></tr></tbody>
    </table>
    <p id="cold-status" class="muted" role="status"></p>
  </section>
  <section class="card meter">
    <figure>
      <svg id="meter-chart" viewBox="0 0 600 180" role="img" aria-labelledby="meter-summary"></svg>
      <figcaption>Foxtrot meter</figcaption>
      <p class="legend"><span class="key v1"></span>v1 picks/s <span class="key v2"></span>v2 picks/s, last 5 minutes</p>
      <p id="meter-summary" class="summary"></p>
    </figure>
  </section>
  <section class="card recent">
    <div class="scroll">
      <table>
        <caption>Recent toasties</caption>
        <thead><tr><th scope="col">Time</th><th scope="col">Customer</th><th scope="col">Ingredients</th><th scope="col">Doneness</th><th scope="col">Picked via</th><th scope="col">Outcome</th></tr></thead>
        <tbody id="toastie-rows"><tr><td colspan="6" class="muted">No toasties yet.</td></tr></tbody>
      </table>
    </div>
  </section>
</main>
</body>
</html>
`;
}
