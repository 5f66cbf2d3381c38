/**
 * The search-budget dial of a probe: the event rate at test against the
 * search simulations per decision (0 = the network alone, on a log axis past
 * it), one line per agent and evaluation mode, with each point's 95%
 * interval over seeds.
 */
import type { ProbeAgentResult } from "../../server/protocol.ts";
import { fmt } from "./dom.ts";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#5fb3ff", "#ff7b9c", "#7ee787", "#c39bff", "#f0b35a", "#8bd3dd"];

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Rate against budget: rows with a `budget`, grouped by agent (config) and evaluation. */
export function budgetChart(results: ProbeAgentResult[], testid = "probe-budget-chart"): SVGSVGElement {
  const rows = results.filter((a) => a.budget !== undefined);
  const budgets = [...new Set(rows.map((a) => a.budget!))].sort((a, b) => a - b);
  const W = 560;
  const H = 260;
  const m = { l: 48, r: 150, t: 16, b: 40 };
  // position: 0 at the left, then log10 of the budget
  const maxLog = Math.log10(Math.max(10, ...budgets));
  const x = (b: number) => m.l + (b === 0 ? 0 : 0.15 + (0.85 * Math.log10(b)) / maxLog) * (W - m.l - m.r);
  const y = (v: number) => m.t + (H - m.t - m.b) * (1 - Math.max(0, Math.min(1, v)));
  const root = el("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "probe-chart", "data-testid": testid, role: "img" });
  for (const tick of [0, 0.5, 1]) {
    root.appendChild(el("line", { x1: m.l, x2: W - m.r, y1: y(tick), y2: y(tick), class: "grid" }));
    root.appendChild(el("text", { x: m.l - 6, y: y(tick) + 4, class: "tick", "text-anchor": "end" }, tick.toFixed(1)));
  }
  for (const b of budgets)
    root.appendChild(el("text", { x: x(b), y: H - m.b + 16, class: "tick", "text-anchor": "middle" }, b === 0 ? "net" : String(b)));
  root.appendChild(
    el("text", { x: m.l + (W - m.l - m.r) / 2, y: H - 6, class: "axis-label", "text-anchor": "middle" }, "search simulations per decision"),
  );
  const groups = new Map<string, ProbeAgentResult[]>();
  for (const a of rows) {
    const key = `${a.label.replace(/ \[.*\]$/, "")} · ${a.evaluation}`;
    groups.set(key, [...(groups.get(key) ?? []), a]);
  }
  [...groups.entries()].forEach(([name, pts], gi) => {
    const colour = COLOURS[gi % COLOURS.length]!;
    const sorted = [...pts].sort((p, q) => p.budget! - q.budget!);
    root.appendChild(
      el("polyline", {
        points: sorted.map((p) => `${x(p.budget!)},${y(p.rate)}`).join(" "),
        fill: "none",
        stroke: colour,
        "stroke-width": 2,
      }),
    );
    for (const p of sorted) {
      root.appendChild(el("line", { x1: x(p.budget!), x2: x(p.budget!), y1: y(p.ci[0]), y2: y(p.ci[1]), stroke: colour, opacity: 0.5 }));
      const dot = el("circle", { cx: x(p.budget!), cy: y(p.rate), r: 3.5, fill: colour });
      dot.appendChild(el("title", {}, `${name} at ${p.budget}: ${fmt(p.rate)} [${fmt(p.ci[0])}, ${fmt(p.ci[1])}]`));
      root.appendChild(dot);
    }
    root.appendChild(el("text", { x: W - m.r + 8, y: m.t + 14 + gi * 16, fill: colour, class: "tick" }, name));
  });
  return root;
}
