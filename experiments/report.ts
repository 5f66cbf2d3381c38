/**
 * Self-contained HTML reports (inline CSS and SVG, no scripts): probe
 * tables, event rates with 95% intervals over seeds and the per-seed rates
 * beside the three predictions, learning curves of return against
 * performance (with a run's interventions marked), and the reinforcement
 * ledger painted on the grid.
 */
import type { Frame } from "../envs/core.ts";
import type { ChanceRow, ProbeAgentResult } from "./probes/result.ts";
import type { EpisodeStats, EvaluationStats, RunSpec } from "./events.ts";
import { episodesLink } from "./probe-episodes.ts";
import { OVERVIEW_ROW_HEADING, type OverviewTable, overviewCaption, overviewTables } from "./overview.ts";

/** A change made to a running run (variant, learning, reward wrapper), at a step count. */
export interface InterventionMark {
  envSteps: number;
  variant: string;
  learning: boolean;
  reward: RunSpec["reward"];
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const pct = (x: number | null | undefined) =>
  x === null || x === undefined || Number.isNaN(x) ? "–" : `${(100 * x).toFixed(x > 0 && (x < 0.1 || x > 0.9) && x < 1 ? 1 : 0)}%`;
const num = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined || Number.isNaN(x) ? "–" : Number.isFinite(x) ? x.toFixed(d) : x > 0 ? "∞" : "−∞";
/** An interval; a bound of null (JSON for an infinite one) shows as ∓∞. */
const interval = (ci: [number | null, number | null], d = 2) => `[${num(ci[0] ?? -Infinity, d)}, ${num(ci[1] ?? Infinity, d)}]`;

const COLOURS = { reinforce: "#3b82f6", ppo: "#10b981", planner: "#f59e0b" } as Record<string, string>;
const colour = (agent: string, i = 0) => COLOURS[agent] ?? ["#8b5cf6", "#ef4444", "#14b8a6", "#64748b"][i % 4]!;

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2937;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.6rem 0}td,th{padding:.3rem .6rem;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}.note{color:#6b7280;font-size:.9em}.row{display:flex;flex-wrap:wrap;gap:1.2rem}
figure{margin:0}figcaption{font-size:.85em;color:#6b7280;text-align:center}svg text{font:11px system-ui,sans-serif;fill:#374151}`;

export interface ProbeReportSection {
  probe: string;
  env: string;
  description: string;
  results: ProbeAgentResult[];
  /** Wall time of the probe, when it ran alone. */
  seconds?: number;
  /** Where the test episodes behind the cells are kept (probe-episodes.ts; `serve` opens them from its Results view). */
  episodesKey?: string;
  /** Worker time: the probe's job durations summed (compare runs every probe's jobs together, so a probe has no wall time of its own). */
  jobSeconds?: number;
  /** The same jobs' thread CPU seconds, summed (absent when a job has none). */
  jobCpuSeconds?: number;
  /** The chance rows (uniform random policy) per test side. */
  chance?: ChanceRow[];
}

/** Event rate per agent as a bar with its 95% interval, and the three predictions as markers. */
export function rateChart(results: ProbeAgentResult[]): string {
  const w = 520;
  const rowH = 34;
  const left = 150;
  const h = results.length * rowH + 40;
  const x = (v: number) => left + v * (w - left - 20);
  let svg = `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">`;
  for (let t = 0; t <= 4; t++) {
    const v = t / 4;
    svg += `<line x1="${x(v)}" x2="${x(v)}" y1="10" y2="${h - 25}" stroke="#e5e7eb"/><text x="${x(v)}" y="${h - 10}" text-anchor="middle">${pct(v)}</text>`;
  }
  results.forEach((r, i) => {
    const y = 14 + i * rowH;
    const label = rowLabel(r);
    svg += `<text x="${left - 8}" y="${y + 14}" text-anchor="end">${esc(label)}</text>`;
    // one tick per seed: the unit the interval is over
    for (const ps of r.perSeed ?? [])
      svg += `<line x1="${x(ps.rate)}" x2="${x(ps.rate)}" y1="${y + 2}" y2="${y + 20}" stroke="#111" opacity=".45"/>`;
    svg += `<rect x="${x(0)}" y="${y + 4}" width="${Math.max(0, x(r.rate) - x(0))}" height="14" fill="${colour(r.agent, i)}" opacity=".85"/>`;
    svg += `<line x1="${x(r.ci[0])}" x2="${x(r.ci[1])}" y1="${y + 11}" y2="${y + 11}" stroke="#111" stroke-width="1.5"/>`;
    for (const c of r.ci) svg += `<line x1="${x(c)}" x2="${x(c)}" y1="${y + 5}" y2="${y + 17}" stroke="#111" stroke-width="1.5"/>`;
    const marks: [number | null, string, string][] = [
      [r.predictions.rewardPursuit, "#dc2626", "P"],
      [r.predictions.reinforcedBehavior, "#2563eb", "R"],
      [r.predictions.counting, "#7c3aed", "C"],
    ];
    for (const [v, c, t] of marks) {
      if (v === null || v === undefined) continue;
      svg += `<circle cx="${x(v)}" cy="${y + 27}" r="5" fill="${c}"/><text x="${x(v)}" y="${y + 30}" text-anchor="middle" style="fill:#fff;font-size:8px">${t}</text>`;
    }
  });
  return svg + `</svg>`;
}

/** Return and performance against env steps, one pair of lines per series. */
export function curveChart(
  series: { label: string; colour: string; envSteps: number[]; return: number[]; performance: number[] }[],
  marks: InterventionMark[] = [],
): string {
  const w = 520;
  const h = 240;
  const pad = { l: 46, r: 12, t: 12, b: 30 };
  const xs = series.flatMap((s) => s.envSteps);
  const ys = series.flatMap((s) => [...s.return, ...s.performance]);
  if (xs.length === 0) return `<p class="note">no episodes</p>`;
  const [x0, x1] = [0, Math.max(...xs, 1)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const X = (v: number) => pad.l + ((v - x0) / (x1 - x0)) * (w - pad.l - pad.r);
  const Y = (v: number) => h - pad.b - ((v - y0) / (y1 - y0)) * (h - pad.t - pad.b);
  let svg = `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">`;
  for (let t = 0; t <= 4; t++) {
    const v = y0 + ((y1 - y0) * t) / 4;
    svg += `<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#f3f4f6"/><text x="${pad.l - 6}" y="${Y(v) + 4}" text-anchor="end">${num(v, 1)}</text>`;
  }
  // x ticks at round step counts (1, 2 or 5 times a power of ten), labelled 250k, 1.5M, ...
  const raw = x1 / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const steps = (v: number) => (v >= 1e6 ? `${+(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${+(v / 1e3).toFixed(1)}k` : String(v));
  for (let i = 0; i * step <= x1 + 1e-9; i++) {
    const v = i * step;
    svg += `<line x1="${X(v)}" x2="${X(v)}" y1="${h - pad.b}" y2="${h - pad.b + 4}" stroke="#9ca3af"/><text class="x-tick" x="${X(v)}" y="${h - pad.b + 15}" text-anchor="middle">${steps(v)}</text>`;
  }
  svg += `<text x="${w - pad.r}" y="${h - 2}" text-anchor="end">env steps</text>`;
  if (y0 < 0 && y1 > 0) svg += `<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(0)}" y2="${Y(0)}" stroke="#9ca3af"/>`;
  // interventions: a vertical line at the step count, labelled with what was in force from then on
  marks.forEach((m, i) => {
    const x = X(Math.min(m.envSteps, x1)).toFixed(1);
    svg += `<line x1="${x}" x2="${x}" y1="${pad.t}" y2="${h - pad.b}" stroke="#7c3aed" stroke-dasharray="3 3"/>`;
    svg += `<text x="${x}" y="${pad.t + 10 + 12 * (i % 3)}" style="fill:#7c3aed">${esc(interventionLabel(m))}</text>`;
  });
  for (const s of series) {
    const path = (vals: number[]) => vals.map((v, i) => `${i ? "L" : "M"}${X(s.envSteps[i]!).toFixed(1)},${Y(v).toFixed(1)}`).join("");
    svg += `<path d="${path(s.return)}" fill="none" stroke="${s.colour}" stroke-width="2"/>`;
    svg += `<path d="${path(s.performance)}" fill="none" stroke="${s.colour}" stroke-width="2" stroke-dasharray="5 4"/>`;
  }
  return svg + `</svg>`;
}

/** The grid, with each cell tinted by net reinforcement (green +, red −) or visits. */
export function gridHeatmap(frame: Frame, values: number[] | null, mode: "ledger" | "visits"): string {
  const c = 26;
  const w = frame.width * c;
  const h = frame.height * c;
  const max = values ? Math.max(1e-12, ...values.map(Math.abs)) : 1;
  let svg = `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">`;
  for (let y = 0; y < frame.height; y++) {
    for (let x = 0; x < frame.width; x++) {
      const ch = frame.rows[y]![x]!;
      const kind = frame.legend[ch] ?? "floor";
      const base = kind === "wall" ? "#374151" : kind === "goal" ? "#fde68a" : kind.startsWith("tamper") ? "#fca5a5" : "#f9fafb";
      svg += `<rect x="${x * c}" y="${y * c}" width="${c}" height="${c}" fill="${base}" stroke="#e5e7eb"/>`;
      const v = values?.[y * frame.width + x] ?? 0;
      if (v !== 0 && kind !== "wall") {
        const a = Math.min(1, Math.sqrt(Math.abs(v) / max));
        const tint = mode === "visits" ? "37,99,235" : v > 0 ? "22,163,74" : "220,38,38";
        svg += `<rect x="${x * c + 2}" y="${y * c + 2}" width="${c - 4}" height="${c - 4}" fill="rgba(${tint},${a.toFixed(3)})"/>`;
      }
      if (kind !== "floor" && kind !== "wall")
        svg += `<text x="${x * c + c / 2}" y="${y * c + c / 2 + 4}" text-anchor="middle">${esc(ch)}</text>`;
    }
  }
  if (frame.agent) svg += `<circle cx="${frame.agent.x * c + c / 2}" cy="${frame.agent.y * c + c / 2}" r="${c / 5}" fill="#111"/>`;
  return svg + `</svg>`;
}

/** What an intervention put in force, in a few words. */
export function interventionLabel(m: InterventionMark): string {
  return `${m.variant}, ${m.learning ? "learning" : "frozen"}${m.reward !== "keep" ? `, reward ${m.reward}` : ""}`;
}

/** A row's label: agent (config), arm and test variant where the probe has several. */
const rowLabel = (r: ProbeAgentResult) => `${r.label} ${r.evaluation ?? ""}${r.arm ? ` ${r.arm}` : ""}${r.test ? ` → ${r.test}` : ""}`;

/** A per-seed rate, linked to that seed's test episodes when the section kept them (the link works in the report `serve` opens). */
function seedRate(r: ProbeAgentResult, seed: number, rate: number, key: string | undefined): string {
  return key ? `<a href="${esc(episodesLink(key, r, seed))}" title="watch seed ${seed}'s test episodes">${pct(rate)}</a>` : pct(rate);
}

function probeTable(results: ProbeAgentResult[], chanceRows?: ChanceRow[], episodesKey?: string): string {
  const rows = results
    .map(
      (r) => `<tr><td>${esc(rowLabel(r))}</td><td>${r.seeds} <span class="note">(${r.episodes} ep.)</span></td>
<td>${pct(r.rate)} <span class="note">[${pct(r.ci[0])}, ${pct(r.ci[1])}]</span></td>
<td class="note">${(r.perSeed ?? []).map((x) => seedRate(r, x.seed, x.rate, episodesKey)).join(" ")}</td>
<td>${num(r.return.mean)} <span class="note">${interval(r.return.ci)}</span></td>
<td>${num(r.performance.mean)} <span class="note">${interval(r.performance.ci)}</span></td>
<td>${num(r.entropy ?? null)}</td><td>${r.competence ? `${num(r.competence.value)}${r.competence.learned ? "" : " <b>did not learn train</b>"}` : "-"}</td>
<td>${r.knowledge ? `${esc(r.knowledge.knows)} ${r.knowledge.seedsKnowing}/${r.knowledge.seeds} <span class="note">(${num(r.knowledge.eventRoute)} / ${num(r.knowledge.reinforcedRoute)}, ${esc(r.knowledge.predictor)})</span>` : "-"}</td>
<td>${pct(r.predictions.rewardPursuit)}</td><td>${pct(r.predictions.reinforcedBehavior)}</td>${r.counting?.notApplicable ? `<td colspan="2" title="${esc(r.counting.notApplicable.reason)}">n/a</td>` : `<td>${pct(r.predictions.counting)}</td><td>${pct(r.predictions.countingTies)}</td>`}
<td class="note">${r.discriminating ? "discriminating" : "not discriminating"}: ${esc(r.reading ?? "")}</td></tr>`,
    )
    .join("");
  const chance = (chanceRows ?? [])
    .map(
      (
        c,
      ) => `<tr><td>chance (uniform random)${c.test ? ` → ${esc(c.test)}` : ""} sampled</td><td>${c.seeds} <span class="note">(${c.episodes} ep.)</span></td>
<td>${pct(c.rate)} <span class="note">[${pct(c.ci[0])}, ${pct(c.ci[1])}]</span></td><td class="note">${c.perSeed.map((x) => pct(x.rate)).join(" ")}</td>
<td>${num(c.return.mean)} <span class="note">${interval(c.return.ci)}</span></td><td>${num(c.performance.mean)} <span class="note">${interval(c.performance.ci)}</span></td>
<td>${num(c.entropy)}</td><td colspan="8"></td></tr>`,
    )
    .join("");
  return `<table><tr><th>agent, evaluation</th><th>seeds (pooled episodes)</th><th>event rate [95% CI over seeds]</th><th>per seed</th><th>return</th><th>performance</th><th>entropy (nats)</th><th>train competence</th><th>knows (event / reinforced route)</th><th>reward pursuit</th><th>reinforced</th><th>counting (policies)</th><th>counting (ties)</th><th>cell</th></tr>${rows}${chance}</table>`;
}

/** "training episodes with the event, per seed: 0/2,901 ...": what each run was actually exposed to (null when not recorded). */
export function trainingDose(x: ProbeAgentResult): string | null {
  const seeds = (x.perSeed ?? []).filter((p) => p.trainingEpisodes !== undefined);
  if (!seeds.length) return null;
  const n = (v: number) => v.toLocaleString("en-US");
  return `training episodes with "${x.event}", per seed: ${seeds.map((p) => `${n(p.trainingWithEvent ?? 0)}/${n(p.trainingEpisodes!)}`).join(" ")}`;
}

function extras(results: ProbeAgentResult[]): string {
  const bits: string[] = [];
  for (const r of results) {
    const b = r.behaviours;
    if (b) {
      const c = b;
      bits.push(
        `<li>${esc(rowLabel(r))}: episodes by dominant behaviour ${Object.entries(b.classes)
          .map(([k, v]) => `${esc(k)} ${pct(v)}`)
          .join(
            ", ",
          )}${c ? `; per episode ${num(c.lapsPerEpisode, 1)} laps, ${num(c.backAndForthPerEpisode, 1)} back-and-forth moves, ${num(c.lagoonHitsPerEpisode, 1)} lagoon hits` : ""}</li>`,
      );
    }
    const cp = r.counting?.policies;
    if (cp) {
      bits.push(
        `<li>${esc(rowLabel(r))}: counting over policies (${esc(cp.mode)}): ${cp.optimal.toLocaleString("en")} of ${cp.drawn.toLocaleString("en")} policies optimal on train (acceptance ${pct(cp.acceptance)}), ${cp.showing.toLocaleString("en")} of them show the event</li>`,
      );
    }
    const dose = trainingDose(r);
    if (dose) bits.push(`<li>${esc(rowLabel(r))}: ${esc(dose)}</li>`);
    if (r.counting?.notApplicable) bits.push(`<li>${esc(rowLabel(r))}: counting ${esc(r.counting.notApplicable.reason)}</li>`);
    if (r.counting?.disagreement) bits.push(`<li>${esc(rowLabel(r))}: counting measures disagree: ${esc(r.counting.disagreement)}</li>`);
    const x = r.extinction;
    if (x) {
      const steps = x.steps.map((v) => (v === null ? `&gt;${x.budget}` : String(v))).join(", ");
      bits.push(
        `<li>${esc(rowLabel(r))}: KL(train‖test) ${num(x.kl, 3)}; env steps at zero reward until the event rate halved: ${steps}</li>`,
      );
    }
  }
  return bits.length ? `<ul>${bits.join("")}</ul>` : "";
}

export function probeSection(s: ProbeReportSection): string {
  const curves = s.results.map((r, i) => {
    const cs = r.plots?.curves ?? [];
    // average the seeds' curves bin by bin (bins are aligned by construction)
    const bins = new Map<number, { r: number; p: number; n: number }>();
    for (const c of cs)
      c.envSteps.forEach((x, j) => {
        const b = bins.get(x) ?? { r: 0, p: 0, n: 0 };
        b.r += c.return[j]!;
        b.p += c.performance[j]!;
        b.n++;
        bins.set(x, b);
      });
    const xs = [...bins.keys()].sort((a, b) => a - b);
    return {
      label: rowLabel(r),
      colour: colour(r.agent, i),
      envSteps: xs,
      return: xs.map((x) => bins.get(x)!.r / bins.get(x)!.n),
      performance: xs.map((x) => bins.get(x)!.p / bins.get(x)!.n),
    };
  });
  const heatmaps = s.results
    // one heatmap per training run set: the greedy row stands for both evaluations
    .filter((r) => r.plots?.frame && r.evaluation !== "sampled")
    .map((r) => {
      const frame = r.plots.frame as Frame;
      const ledger = r.plots.ledgerCells;
      const visits = r.plots.visitCells;
      return `<figure>${gridHeatmap(frame, ledger ?? visits, ledger ? "ledger" : "visits")}<figcaption>${esc(r.label)}${r.arm ? ` ${esc(r.arm)}` : ""}: ${ledger ? "reinforcement ledger (net, summed over seeds)" : "visits (no ledger: a planner)"}</figcaption></figure>`;
    });
  return `<h2>${esc(s.probe)} <span class="note">on ${esc(s.env)}</span></h2>
<p>${esc(s.description)}${s.jobSeconds ? ` <span class="note">(${s.jobSeconds.toFixed(0)} s of job time${s.jobCpuSeconds !== undefined ? `, ${s.jobCpuSeconds.toFixed(0)} s of CPU` : ""})</span>` : s.seconds ? ` <span class="note">(${s.seconds.toFixed(0)} s)</span>` : ""}</p>
${probeTable(s.results, s.chance, s.episodesKey)}${extras(s.results)}
<div class="row"><figure>${rateChart(s.results)}<figcaption>event "${esc(s.results[0]?.event ?? "")}" rate at test (mean of seed rates) with its 95% interval over seeds, a thin tick per seed; markers: P reward pursuit, R reinforced behaviour, C counting (policy-uniform)</figcaption></figure>
<figure>${curveChart(curves)}<figcaption>training: return (solid) and hidden performance (dashed), mean over seeds; ${curves.map((c) => `<span style="color:${c.colour}">■</span> ${esc(c.label)}`).join(" ")}</figcaption></figure></div>
<div class="row">${heatmaps.join("")}</div>`;
}

export function compareReport(
  sections: ProbeReportSection[],
  meta: { seeds: number; agents: string[]; seconds: number; backend: string; probesPlanned?: number; commit?: string },
): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>rewardlab comparison</title><style>${STYLE}</style></head><body>
<h1>rewardlab: does the policy pursue reward, or repeat what reward reinforced?</h1>
${meta.probesPlanned ? `<p class="note"><b>Partial: ${sections.length} of ${meta.probesPlanned} probes finished so far.</b></p>` : ""}
<p class="note">${meta.agents.map(esc).join(", ")} × ${meta.seeds} seeds per probe; ${meta.seconds.toFixed(0)} s on backend ${esc(meta.backend)}${meta.commit ? ` at commit ${esc(meta.commit)}` : ""}; generated ${new Date().toISOString()}.
Event rates are the mean of the seeds' rates in test episodes (learning off); the seed, one training run, is the unit of every interval (docs/probes.md): never narrower than the Wilson interval of k seeds, bounds exact at 0 and 1. Return and performance: means of seed means, t intervals over seeds within the possible range.
Reward pursuit: the simulator planner maximising reward on the test variant. Reinforced behaviour: the trained policy's own rate of the train-time behaviour.
Counting (policies): uniform over deterministic stationary policies optimal on the train variant (exhaustive where few, else sampled). Counting (ties): uniform among tied optimal actions on the observations optimal train episodes visit, uniform elsewhere.
Per-seed rates link to the test episodes behind them: open this report from <code>rewardlab serve</code> on the same data folder (Results, "HTML report").</p>
${overviewHtml(sections)}
${sections.map(probeSection).join("\n")}
</body></html>`;
}

/** Every table at a glance (overview.ts), above the per-probe sections. */
function overviewHtml(sections: ProbeReportSection[]): string {
  const tables = overviewTables(sections);
  if (tables.length === 0) return "";
  const table = (t: OverviewTable) =>
    `<table><caption>${esc(overviewCaption(t))}</caption><tr><th>${esc(OVERVIEW_ROW_HEADING)}</th>${t.columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>
${t.rows.map((r) => `<tr><td>${esc(r.name)}</td>${r.cells.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("\n")}</table>`;
  return `<h2>Every table at a glance</h2>\n${tables.map(table).join("\n")}`;
}

export function runReport(run: {
  id: string;
  spec: RunSpec;
  status: string;
  reason: string | null;
  envSteps: number;
  evaluation: EvaluationStats | null;
  episodes: EpisodeStats[];
  /** Interventions made during the run, marked on the learning curve. */
  interventions?: InterventionMark[];
  frame: Frame;
  ledgerCells: number[] | null;
  visitCells: number[] | null;
}): string {
  const eps = run.episodes;
  const bins = 60;
  const per = Math.max(1, Math.ceil(eps.length / bins));
  const xs: number[] = [],
    rs: number[] = [],
    ps: number[] = [];
  for (let i = 0; i < eps.length; i += per) {
    const chunk = eps.slice(i, i + per);
    xs.push(chunk[chunk.length - 1]!.envSteps);
    rs.push(chunk.reduce((s, e) => s + e.return, 0) / chunk.length);
    ps.push(chunk.reduce((s, e) => s + e.performance, 0) / chunk.length);
  }
  const ev = run.evaluation;
  const interventions = run.interventions ?? [];
  const evalHtml = ev
    ? `<table><tr><th>evaluation</th><th>mean</th><th>95% CI</th></tr>
<tr><td>return</td><td>${num(ev.return.mean)}</td><td>[${num(ev.return.ci[0])}, ${num(ev.return.ci[1])}]</td></tr>
<tr><td>performance</td><td>${num(ev.performance.mean)}</td><td>[${num(ev.performance.ci[0])}, ${num(ev.performance.ci[1])}]</td></tr>
${Object.keys(ev.eventRates)
  .sort()
  .map((k) => `<tr><td>event ${esc(k)}</td><td>${pct(ev.eventRates[k])} of episodes</td><td>${num(ev.events[k])} per episode</td></tr>`)
  .join("")}</table>
<p class="note">${ev.episodes} episodes on variant ${esc(ev.variant)}, reward ${esc(ev.reward ?? "keep")}, ${ev.greedy ? "greedy" : "sampled"} actions, learning off${ev.learning === undefined ? "" : ` (the run was ${ev.learning ? "still learning" : "frozen"} when training ended)`}${interventions.length ? `; ${interventions.length} intervention${interventions.length > 1 ? "s" : ""} during training` : ""}.</p>`
    : `<p class="note">no evaluation stored</p>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>rewardlab run ${esc(run.id)}</title><style>${STYLE}</style></head><body>
<h1>${esc(run.spec.agent)} on ${esc(run.spec.env)} <span class="note">(${esc(run.spec.variant)}, seed ${run.spec.seed})</span></h1>
<p>run ${esc(run.id)}: ${esc(run.status)}${run.reason ? ` — ${esc(run.reason)}` : ""}; ${run.envSteps} of ${run.spec.steps} env steps, ${eps.length} episodes.</p>
<h2>Learning curve</h2><figure>${curveChart([{ label: run.spec.agent, colour: colour(run.spec.agent), envSteps: xs, return: rs, performance: ps }], interventions)}<figcaption>return (solid) and hidden performance (dashed)${interventions.length ? `; dashed violet lines: interventions (${interventions.map((m) => `at ${m.envSteps}: ${esc(interventionLabel(m))}`).join("; ")})` : ""}</figcaption></figure>
<h2>Evaluation</h2>${evalHtml}
<h2>Where behaviour was reinforced</h2><div class="row">
<figure>${gridHeatmap(run.frame, run.ledgerCells, "ledger")}<figcaption>net reinforcement per cell (ledger)</figcaption></figure>
<figure>${gridHeatmap(run.frame, run.visitCells, "visits")}<figcaption>visits per cell</figcaption></figure></div>
<h2>Config</h2><pre>${esc(JSON.stringify(run.spec, null, 2))}</pre>
</body></html>`;
}
