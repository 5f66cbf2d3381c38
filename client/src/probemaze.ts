/**
 * The maze probe's analysis in the Probes view (GET /api/probes/:id `maze`):
 * each row's cheese rate and top-right-first rate with their intervals and
 * per seed, beside chance and the simulator planner on the same held-out
 * test mazes, and the decision-square splits (experiments/probes/maze.ts).
 */
import type { MazeAnalysis } from "../../server/protocol.ts";
import { h, note } from "./dom.ts";

type Row = MazeAnalysis["rows"][number];
type Rate = Row["cheese"];

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
/** The interval over seeds, or over mazes for a one-seed row (marked m). */
const rateCell = (r: Rate, seeds: number) => {
  const c = seeds > 1 ? r.ciSeeds : r.ciMazes;
  return `${pct(r.rate)} [${pct(c[0])}, ${pct(c[1])}]${seeds > 1 ? "" : " m"}`;
};

const FEATURE: Record<Row["decision"]["splits"][number]["feature"], string> = {
  cheeseToTopRight: "cheese to top-right",
  decisionToCheese: "decision square to cheese",
  decisionToCheeseSteps: "... in steps",
};

export function mazeAnalysisBlock(m: MazeAnalysis): HTMLElement {
  const rates = h(
    "table",
    { class: "probe-table", "data-testid": "maze-analysis" },
    h("tr", {}, ...["policy", "seeds", "cheese", "top-right first", "neither", "per seed (cheese / top-right)"].map((t) => h("th", {}, t))),
    ...m.rows.map((r) =>
      h(
        "tr",
        {},
        h("td", {}, r.label),
        h("td", { class: "num" }, String(r.seeds)),
        h("td", { class: "num" }, rateCell(r.cheese, r.seeds)),
        h("td", { class: "num" }, rateCell(r.topRight, r.seeds)),
        h("td", { class: "num" }, pct(r.neither)),
        h("td", { class: "num small" }, r.cheese.perSeed.map((c, i) => `${pct(c)} / ${pct(r.topRight.perSeed[i] ?? 0)}`).join(", ")),
      ),
    ),
  );
  const features = m.rows[0]?.decision.splits.map((s) => s.feature) ?? [];
  const splits = h(
    "table",
    { class: "probe-table" },
    h("tr", {}, h("th", {}, "policy"), h("th", {}, "mazes with one"), ...features.map((f) => h("th", {}, FEATURE[f]))),
    ...m.rows.map((r) =>
      h(
        "tr",
        {},
        h("td", {}, r.label),
        h("td", { class: "num" }, String(r.decision.mazes)),
        ...r.decision.splits.map((s) =>
          h(
            "td",
            { class: "num small" },
            `≤${s.median.toFixed(1)}: ${pct(s.low.cheeseFirst)} · >: ${pct(s.high.cheeseFirst)} · r ${s.correlation.toFixed(2)}`,
          ),
        ),
      ),
    ),
  );
  return h(
    "div",
    { class: "maze-analysis" },
    h("h4", {}, `Maze analysis: ${m.mazes} held-out test mazes`),
    note(
      "Every seed's policy plays the same mazes (the set rewardlab steer --seed ",
      String(m.seed),
      " plays). Cheese: reached the cheese; top-right first: entered the top-right square before it. Intervals over seeds (m: over mazes, one-seed rows).",
    ),
    rates,
    note(
      "Decision squares: the cheese-first rate at or below / above each distance's median, and its correlation with going cheese-first.",
    ),
    splits,
  );
}
