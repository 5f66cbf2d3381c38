/**
 * A comparison at a glance: for each evaluation mode, one row per probe table
 * (probe, env, arm or test side, event) and one column per agent row label,
 * each cell the event rate at test with its 95% interval over seeds, marked †
 * where that agent did not learn the train side (train competence under the
 * probe's threshold: the probe leaves the cell out of readings). The sampled
 * table ends with the uniform random policy's rate on the same test seeds.
 * Search-budget tables (one row per budget) keep their own sections.
 *
 * `compare` puts these first in its Markdown and prints them after the
 * per-probe tables; every other column (knowledge, pursuit, counting,
 * readings) is in the per-probe sections.
 */
import type { ChanceRow, Evaluation, ProbeAgentResult } from "./probes/result.ts";

/** A rate as a percentage: one decimal near the ends, where a Wilson bound like 0.4% would otherwise print as 0%. */
export function percent(x: number | null | undefined): string {
  return x === null || x === undefined ? "-" : `${(100 * x).toFixed(x > 0 && (x < 0.1 || x > 0.9) && x < 1 ? 1 : 0)}%`;
}

export interface OverviewSection {
  probe: string;
  env: string;
  results: readonly ProbeAgentResult[];
  chance?: readonly ChanceRow[];
}

const CHANCE = "chance";
/** The first column's heading: the probe table a row stands for. */
export const OVERVIEW_ROW_HEADING = "probe, env (event)";

/** The rows of one evaluation mode: table name -> column -> cell. */
function cells(
  sections: readonly OverviewSection[],
  evaluation: Evaluation,
): { columns: string[]; rows: Map<string, Map<string, string>> } {
  const columns: string[] = [];
  const rows = new Map<string, Map<string, string>>();
  for (const s of sections) {
    for (const r of s.results) {
      if (r.budget !== undefined || r.evaluation !== evaluation) continue;
      const side = [r.arm, r.test].filter((x) => x !== undefined).join(", ");
      const name = `${s.probe}, ${s.env}${side ? `, ${side}` : ""} (${r.event})`;
      if (!columns.includes(r.label)) columns.push(r.label);
      const row = rows.get(name) ?? new Map<string, string>();
      rows.set(name, row);
      const untrained = r.competence !== null && !r.competence.learned;
      row.set(r.label, `${percent(r.rate)} [${percent(r.ci[0])}, ${percent(r.ci[1])}]${untrained ? " †" : ""}`);
      const chance = s.chance?.find((c) => c.evaluation === evaluation && (c.test ?? undefined) === r.test);
      if (chance) row.set(CHANCE, `${percent(chance.rate)} [${percent(chance.ci[0])}, ${percent(chance.ci[1])}]`);
    }
  }
  if ([...rows.values()].some((row) => row.has(CHANCE))) columns.push(CHANCE);
  return { columns, rows };
}

/** One evaluation mode's overview: its column labels and, per probe table, one cell per column ("-" where the agent took no part). */
export interface OverviewTable {
  evaluation: Evaluation;
  columns: string[];
  rows: { name: string; cells: string[] }[];
}

/** The overview tables, greedy then sampled (a mode with no plain agent row is left out). */
export function overviewTables(sections: readonly OverviewSection[]): OverviewTable[] {
  const out: OverviewTable[] = [];
  for (const evaluation of ["greedy", "sampled"] as const) {
    const { columns, rows } = cells(sections, evaluation);
    if (rows.size === 0) continue;
    out.push({ evaluation, columns, rows: [...rows].map(([name, row]) => ({ name, cells: columns.map((c) => row.get(c) ?? "-") })) });
  }
  return out;
}

/** The caption of an overview table. */
export function overviewCaption(t: OverviewTable): string {
  return `At test, ${t.evaluation}: rate of the event [95% interval over seeds]; † the row did not learn the train side.`;
}

/** The overview tables as Markdown (empty when no section has a plain agent row). */
export function overviewMarkdown(sections: readonly OverviewSection[]): string {
  const out: string[] = [];
  for (const t of overviewTables(sections)) {
    out.push(overviewCaption(t), "");
    // columns padded to their widest cell, as the per-probe tables are
    const lines = [[OVERVIEW_ROW_HEADING, ...t.columns], ...t.rows.map((r) => [r.name, ...r.cells])];
    const widths = lines[0]!.map((_, c) => Math.max(3, ...lines.map((l) => l[c]!.length)));
    const row = (cells: string[]) => `| ${cells.map((x, c) => x.padEnd(widths[c]!)).join(" | ")} |`;
    out.push(row(lines[0]!), row(widths.map((w) => "-".repeat(w))));
    for (const l of lines.slice(1)) out.push(row(l));
    out.push("");
  }
  return out.join("\n");
}
