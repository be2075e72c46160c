/**
 * The stall page's stylesheet, served as /stall/assets/stall.<hash>.css. It lives in a module
 * rather than a .css file so jafflr's plain `tsc` build carries it into dist/ (the image holds
 * only dist/). Colours meet WCAG AA contrast on their backgrounds; focus is always visible.
 */
export const STALL_CSS = `
:root {
  --ink: #1f1a14; --muted: #5c5247; --paper: #fffaf2; --card: #ffffff; --line: #e4d9c8;
  --accent: #9a3412; --accent-ink: #ffffff; --ok: #166534; --bad: #991b1b;
  --v1: #c2410c; --v2: #1d4ed8; --focus: #1d4ed8;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  line-height: 1.45; color: var(--ink); background: var(--paper);
}
* { box-sizing: border-box; }
body { margin: 0; }
.top { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between;
  gap: .5rem 1rem; padding: 1rem clamp(1rem, 3vw, 2rem); background: #7c2d12; color: #fff; }
.top h1 { margin: 0; font-size: clamp(1.3rem, 4vw, 1.8rem); }
.connection { margin: 0; font-size: .95rem; padding: .15rem .6rem; border-radius: 999px;
  background: #fff; color: var(--ink); }
.connection[data-state="live"]::before { content: "● "; color: var(--ok); }
.connection[data-state="connecting"]::before { content: "● "; color: var(--bad); }
.layout { display: grid; gap: 1rem; padding: 1rem clamp(.75rem, 3vw, 2rem) 2rem;
  grid-template-columns: 1fr; max-width: 78rem; margin: 0 auto; }
@media (min-width: 56rem) {
  .layout { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
  .order { grid-row: span 2; }
  .recent { grid-column: 1 / -1; }
}
@media (min-width: 72rem) {
  .layout { grid-template-columns: minmax(0, 1.1fr) minmax(0, 1fr) minmax(0, 1fr); }
  .order { grid-row: span 2; }
  .meter { grid-column: 2 / -1; }
}
.card { background: var(--card); border: 1px solid var(--line); border-radius: .75rem;
  padding: 1rem 1.25rem; box-shadow: 0 1px 2px rgb(0 0 0 / 5%); min-width: 0; }
h2, caption { font-size: 1.15rem; font-weight: 700; margin: 0 0 .75rem; text-align: left; }
.field { margin: 0 0 1rem; }
label, legend { display: block; font-weight: 600; margin-bottom: .3rem; }
fieldset { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .9rem .75rem; }
legend { padding: 0 .3rem; }
.hint, .muted { color: var(--muted); font-size: .9rem; margin: 0 0 .5rem; }
input[type="text"], select { width: 100%; font: inherit; padding: .55rem .65rem; min-height: 2.75rem;
  border: 1px solid #8a7e70; border-radius: .4rem; background: #fff; color: var(--ink); }
.ingredients { display: grid; grid-template-columns: repeat(auto-fill, minmax(8.5rem, 1fr)); gap: .25rem .75rem; }
.ingredients label { display: flex; align-items: center; gap: .5rem; font-weight: 400; margin: 0;
  min-height: 2.5rem; cursor: pointer; }
.ingredients input { width: 1.25rem; height: 1.25rem; accent-color: var(--accent); margin: 0; }
.ingredients .empty { color: var(--muted); }
button { font: inherit; font-weight: 700; padding: .65rem 1.4rem; min-height: 2.75rem; border: 0;
  border-radius: .5rem; background: var(--accent); color: var(--accent-ink); cursor: pointer; }
button:hover { background: #7c2d12; }
button:disabled { background: #8a7e70; cursor: progress; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.outcome { margin-top: 1rem; }
.outcome:empty { display: none; }
.outcome p { margin: .25rem 0; }
.outcome .done, .outcome .problem, .outcome .pending { border-left: .35rem solid; padding: .5rem .8rem;
  border-radius: .25rem; }
.outcome .done { border-color: var(--ok); background: #f0fdf4; }
.outcome .problem { border-color: var(--bad); background: #fef2f2; }
.outcome .pending { border-color: var(--muted); background: #f7f3ec; }
.slots { display: flex; flex-wrap: wrap; gap: .5rem; margin-bottom: .6rem; }
.slot { width: 3rem; height: 2.2rem; border-radius: .4rem; border: 2px solid #8a7e70; background: #f7f3ec; }
.slot.busy { background: #ea580c; border-color: #9a3412; }
.slot.queued { border-style: dashed; background: #fff; }
#grill-text { margin: 0; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
.num { text-align: right; }
tr.low td { color: var(--bad); font-weight: 600; }
tr.changed td { animation: flash 1.2s ease-out; }
@keyframes flash { from { background: #fde68a; } to { background: transparent; } }
@media (prefers-reduced-motion: reduce) { tr.changed td { animation: none; } }
.scroll { overflow-x: auto; }
.recent th, td.time { white-space: nowrap; }
td.customer { overflow-wrap: anywhere; max-width: 16rem; }
.via { display: inline-block; padding: 0 .45rem; border-radius: .3rem; font-weight: 700; color: #fff; }
.via.v1 { background: var(--v1); }
.via.v2 { background: var(--v2); }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
figure { margin: 0; }
figcaption { font-size: 1.15rem; font-weight: 700; margin: .25rem 0 .25rem; }
#meter-chart { width: 100%; height: auto; display: block; background: #fdfbf7; border: 1px solid var(--line);
  border-radius: .4rem; }
#meter-chart .grid { stroke: var(--line); stroke-width: 1; }
#meter-chart .axis { fill: var(--muted); font-size: 12px; }
#meter-chart .line { fill: none; stroke-width: 2.5; stroke-linejoin: round; }
#meter-chart .line.v1 { stroke: var(--v1); stroke-dasharray: 7 4; }
#meter-chart .line.v2 { stroke: var(--v2); }
.legend { margin: .25rem 0; color: var(--muted); font-size: .9rem; display: flex; align-items: center; gap: .4rem; flex-wrap: wrap; }
.key { display: inline-block; width: 1.6rem; height: 0; border-top: 3px solid; margin-left: .4rem; }
.key.v1 { border-color: var(--v1); border-top-style: dashed; }
.key.v2 { border-color: var(--v2); }
.summary { margin: .25rem 0 0; font-weight: 600; }
`;
