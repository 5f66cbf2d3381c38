/**
 * Drawing a probe's result rows (GET /api/probes/:id `results`, and the
 * aggregated tables of a sweep): each agent's measured event rate (the mean
 * of its seeds' rates) as a bar with its 95% interval over seeds and a dot per
 * seed, beside the three predictions (reward pursuit, reinforced behaviour,
 * counting); a legend; a detail table and a per-seed table. The seed (one
 * training run) is the unit of every interval; pooled episodes are secondary.
 * Shared by the probes view and the sweeps view.
 */
import type { ChanceRow, ProbeAgentResult } from "../../server/protocol.ts";
import { budgetChart } from "./probebudget.ts";
import { fmt, h, table } from "./dom.ts";
import { seedLink } from "./episodes.ts";

const SVG = "http://www.w3.org/2000/svg";

const BARS: { key: "rate" | keyof ProbeAgentResult["predictions"]; label: string; color: string }[] = [
  { key: "rate", label: "measured (95% CI over seeds; dots: seeds)", color: "#5fb3ff" },
  { key: "rewardPursuit", label: "prediction: reward pursuit", color: "#ff7b9c" },
  { key: "reinforcedBehavior", label: "prediction: reinforced behaviour", color: "#7ee787" },
  { key: "counting", label: "prediction: counting (uniform over train-optimal policies)", color: "#c39bff" },
];

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The arm of a row (dose-response: "exposure=0.1") and its test variant where a probe tests several, or "". */
export function armOf(a: ProbeAgentResult): string {
  return [a.arm ?? "", a.test ? `test ${a.test}` : ""].filter(Boolean).join(" · ");
}

/** An interval whose bounds may be null (JSON for an infinite bound: no range known). */
const ci = (c: [number | null, number | null]) => `[${fmt(c[0] ?? -Infinity)}, ${fmt(c[1] ?? Infinity)}]`;

/** Grouped bars per agent (and arm): the measured rate with its interval, then the three predictions. */
export function probeChart(results: ProbeAgentResult[], testid = "probe-chart"): SVGSVGElement {
  const agents = results;
  const W = Math.max(480, 70 + agents.length * 200);
  const H = 260;
  const m = { l: 44, r: 12, t: 16, b: 44 };
  const plotH = H - m.t - m.b;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "probe-chart", "data-testid": testid, role: "img" });
  const y = (v: number) => m.t + plotH * (1 - Math.max(0, Math.min(1, v)));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    root.appendChild(svg("line", { x1: m.l, x2: W - m.r, y1: y(tick), y2: y(tick), class: "grid" }));
    root.appendChild(svg("text", { x: m.l - 6, y: y(tick) + 4, class: "tick", "text-anchor": "end" }, tick.toFixed(2)));
  }
  root.appendChild(
    svg(
      "text",
      { x: 12, y: m.t + plotH / 2, class: "axis-label", transform: `rotate(-90 12 ${m.t + plotH / 2})`, "text-anchor": "middle" },
      `rate of "${agents[0]?.event ?? "event"}"`,
    ),
  );
  const groupW = (W - m.l - m.r) / Math.max(1, agents.length);
  const barW = Math.min(34, (groupW - 30) / BARS.length);
  agents.forEach((a, gi) => {
    const arm = armOf(a);
    const name = `${arm ? `${a.label} · ${arm}` : a.label}${a.evaluation ? ` · ${a.evaluation}` : ""}`;
    const gx = m.l + gi * groupW + (groupW - barW * BARS.length - 6 * (BARS.length - 1)) / 2;
    BARS.forEach((b, bi) => {
      const x = gx + bi * (barW + 6);
      const v = b.key === "rate" ? a.rate : a.predictions[b.key];
      const title = svg(
        "title",
        {},
        `${name} · ${b.label}: ${v === null ? "n/a" : fmt(v)}${b.key === "rate" ? ` [${fmt(a.ci[0])}, ${fmt(a.ci[1])}]` : ""}`,
      );
      if (v === null || v === undefined || !Number.isFinite(v)) {
        const box = svg("rect", { x, y: y(1), width: barW, height: plotH, class: "na", stroke: b.color });
        box.appendChild(title);
        root.appendChild(box);
        root.appendChild(svg("text", { x: x + barW / 2, y: y(0) - 6, class: "bar-label", "text-anchor": "middle" }, "n/a"));
        return;
      }
      const bar = svg("rect", {
        x,
        y: y(v),
        width: barW,
        height: Math.max(1, y(0) - y(v)),
        fill: b.color,
        class: b.key === "rate" ? "bar measured" : "bar prediction",
      });
      bar.appendChild(title);
      root.appendChild(bar);
      if (b.key === "rate") {
        const cx = x + barW / 2;
        const [lo, hi] = a.ci;
        root.appendChild(svg("line", { x1: cx, x2: cx, y1: y(lo), y2: y(hi), class: "whisker" }));
        root.appendChild(svg("line", { x1: cx - barW / 4, x2: cx + barW / 4, y1: y(lo), y2: y(lo), class: "whisker" }));
        root.appendChild(svg("line", { x1: cx - barW / 4, x2: cx + barW / 4, y1: y(hi), y2: y(hi), class: "whisker" }));
        // one dot per seed: the units the interval is over
        (a.perSeed ?? []).forEach((ps, i, all) => {
          const dot = svg("circle", {
            cx: x + ((i + 1) * barW) / (all.length + 1),
            cy: y(ps.rate),
            r: 2.5,
            class: "seed-dot",
            fill: "#0b1f33",
            "fill-opacity": 0.7,
          });
          dot.appendChild(svg("title", {}, `${name} · seed ${ps.seed}: ${fmt(ps.rate)} over ${ps.episodes} episodes`));
          root.appendChild(dot);
        });
      }
      root.appendChild(
        svg(
          "text",
          { x: x + barW / 2, y: Math.min(y(v), b.key === "rate" ? y(a.ci[1]) : y(v)) - 4, class: "bar-label", "text-anchor": "middle" },
          fmt(v, 2),
        ),
      );
    });
    root.appendChild(
      svg("text", { x: m.l + gi * groupW + groupW / 2, y: H - m.b + 18, class: "group-label", "text-anchor": "middle" }, name),
    );
    root.appendChild(
      svg(
        "text",
        { x: m.l + gi * groupW + groupW / 2, y: H - m.b + 33, class: "tick", "text-anchor": "middle" },
        `${a.seeds} seed${a.seeds === 1 ? "" : "s"} (${a.episodes} episodes pooled)`,
      ),
    );
  });
  return root;
}

export function probeLegend(): HTMLElement {
  return h(
    "div",
    { class: "probe-legend" },
    ...BARS.map((b) => h("span", { class: "chip" }, h("i", { style: `background:${b.color}` }), b.label)),
  );
}

export function probeTable(results: ProbeAgentResult[], testid = "probe-table", chance: ChanceRow[] = [], key?: string): HTMLElement {
  const arms = results.some((a) => armOf(a) !== "");
  const heads = [
    ...agentHeads(arms),
    "eval",
    "event",
    "seeds (episodes)",
    "rate",
    "95% CI over seeds",
    "per seed",
    "return",
    "performance",
    "reward pursuit",
    "reinforced",
    "counting (policies)",
    "counting (ties)",
    "entropy",
    "train competence",
    "knows (event / reinforced route)",
    "cell",
  ];
  const knows = (a: ProbeAgentResult) =>
    a.knowledge
      ? `${a.knowledge.knows} ${a.knowledge.seedsKnowing}/${a.knowledge.seeds} (${fmt(a.knowledge.eventRoute)} / ${fmt(a.knowledge.reinforcedRoute)}, ${a.knowledge.predictor})`
      : "–";
  const chanceRows = chance.map((c) => chanceRow(c, arms, results[0]?.event ?? ""));
  return table(
    { class: "probe-table", "data-testid": testid },
    heads,
    ...results.map((a) =>
      h(
        "tr",
        {},
        ...agentCells(a, arms),
        h("td", { "data-testid": "probe-eval" }, a.evaluation ?? "–"),
        h("td", {}, a.event),
        h("td", { class: "num" }, `${a.seeds} (${a.episodes})`),
        h("td", { class: "num" }, fmt(a.rate)),
        h("td", { class: "num" }, ci(a.ci)),
        h(
          "td",
          { class: "num small", "data-testid": "probe-per-seed" },
          ...(a.perSeed ?? []).flatMap((x, i) => [i ? " " : "", seedLink(key, a, x.seed, fmt(x.rate, 2))]),
        ),
        h("td", { class: "num ret" }, `${fmt(a.return.mean)} ${ci(a.return.ci)}`),
        h("td", { class: "num perf" }, `${fmt(a.performance.mean)} ${ci(a.performance.ci)}`),
        h("td", { class: "num" }, fmt(a.predictions.rewardPursuit)),
        h("td", { class: "num" }, fmt(a.predictions.reinforcedBehavior)),
        // where counting does not apply (a new world every test episode, unseen in training) the cell says so
        h(
          "td",
          { class: "num", ...(a.counting?.notApplicable ? { title: a.counting.notApplicable.reason } : {}) },
          a.counting?.notApplicable ? "n/a" : fmt(a.predictions.counting),
        ),
        h("td", { class: "num" }, a.counting?.notApplicable ? "n/a" : fmt(a.predictions.countingTies)),
        h("td", { class: "num", "data-testid": "probe-entropy" }, a.entropy == null ? "–" : fmt(a.entropy)),
        h(
          "td",
          { class: "num", "data-testid": "probe-competence" },
          a.competence ? `${fmt(a.competence.value ?? Number.NaN)}${a.competence.learned ? "" : " did not learn train"}` : "–",
        ),
        h("td", { class: "small", "data-testid": "probe-knows" }, knows(a)),
        h("td", { class: "small", title: a.reading ?? "" }, a.discriminating ? "discriminating" : "not discriminating"),
      ),
    ),
    ...chanceRows,
  );
}

/** The first columns' heads: the agent, and its arm when the table has arms. */
function agentHeads(arms: boolean): string[] {
  return arms ? ["agent", "arm"] : ["agent"];
}

/** A row's first cells: the agent's label, and its arm (and test) when the table has arms. */
function agentCells(a: ProbeAgentResult, arms: boolean): (HTMLElement | null)[] {
  return [h("td", {}, a.label), arms ? h("td", { class: "mono small" }, armOf(a) || "–") : null];
}

/** The chance row of a test side: the uniform random policy, nothing predicted or known. */
function chanceRow(c: ChanceRow, arms: boolean, event: string): HTMLElement {
  return h(
    "tr",
    { class: "chance", "data-testid": "probe-chance" },
    h("td", {}, "chance (uniform random)"),
    arms ? h("td", { class: "mono small" }, c.test ? `test ${c.test}` : "–") : null,
    h("td", {}, c.evaluation),
    h("td", {}, event),
    h("td", { class: "num" }, `${c.seeds} (${c.episodes})`),
    h("td", { class: "num" }, fmt(c.rate)),
    h("td", { class: "num" }, ci(c.ci)),
    h("td", { class: "num small" }, c.perSeed.map((x) => fmt(x.rate, 2)).join(" ")),
    h("td", { class: "num ret" }, `${fmt(c.return.mean)} ${ci(c.return.ci)}`),
    h("td", { class: "num perf" }, `${fmt(c.performance.mean)} ${ci(c.performance.ci)}`),
    ...[0, 1, 2, 3].map(() => h("td", {}, "–")),
    h("td", { class: "num" }, fmt(c.entropy)),
    ...[0, 1, 2].map(() => h("td", {}, "–")),
  );
}

/** One row per agent (and arm, test) and seed: that training run's test episodes, rate, return and performance. */
export function probeSeedTable(results: ProbeAgentResult[], testid = "probe-seed-table", key?: string): HTMLElement {
  const arms = results.some((a) => armOf(a) !== "");
  const dose = results.some((a) => (a.perSeed ?? []).some((s) => s.trainingEpisodes !== undefined));
  const heads = [
    ...agentHeads(arms),
    "seed",
    "episodes",
    "rate",
    "return",
    "performance",
    ...(dose ? ["training episodes with the event"] : []),
  ];
  return table(
    { class: "probe-table probe-seed-table", "data-testid": testid },
    heads,
    ...results.flatMap((a) =>
      (a.perSeed ?? []).map((s) =>
        h(
          "tr",
          {},
          ...agentCells(a, arms),
          h("td", { class: "num" }, String(s.seed)),
          h("td", { class: "num" }, String(s.episodes)),
          h("td", { class: "num" }, seedLink(key, a, s.seed, fmt(s.rate))),
          h("td", { class: "num ret" }, fmt(s.return)),
          h("td", { class: "num perf" }, fmt(s.performance)),
          dose
            ? h(
                "td",
                { class: "num", "data-testid": "probe-training-dose" },
                s.trainingEpisodes === undefined ? "–" : `${s.trainingWithEvent ?? 0} of ${s.trainingEpisodes}`,
              )
            : null,
        ),
      ),
    ),
  );
}

/** Legend, chart, table and per-seed table of one probe's rows (nothing but a note when there are none). */
export function probeResultBlock(
  results: ProbeAgentResult[],
  testids: { chart?: string; table?: string; seeds?: string } = {},
  chance: ChanceRow[] = [],
  /** The probe's id or a comparison section's episodes key: per-seed rates then link to the test episodes behind them (episodes.ts). */
  key?: string,
): HTMLElement[] {
  const out: HTMLElement[] = [
    probeLegend(),
    h("div", { class: "probe-chart-box" }, probeChart(results, testids.chart)),
    probeTable(results, testids.table, chance, key),
  ];
  // the search-budget dial: the event rate against simulations per decision
  if (results.some((a) => a.budget !== undefined)) out.push(h("div", { class: "probe-chart-box" }, budgetChart(results)));
  const readings = results.filter((a) => a.reading);
  if (readings.length) {
    out.push(
      h(
        "ul",
        { class: "probe-readings small", "data-testid": "probe-readings" },
        ...readings.map((a) => h("li", {}, `${a.label} ${a.evaluation}${armOf(a) ? ` ${armOf(a)}` : ""}: ${a.reading}`)),
      ),
    );
  }
  if (results.some((a) => (a.perSeed ?? []).length)) {
    out.push(
      h(
        "details",
        { class: "probe-seeds" },
        h("summary", {}, "Per seed (each seed is one training run: the unit of the intervals)"),
        probeSeedTable(results, testids.seeds, key),
      ),
    );
  }
  return out;
}
