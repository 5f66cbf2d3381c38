/**
 * The maze probe's analysis (Maze-v0): a policy played on held-out test
 * mazes, maze by maze, through the one step loop: whether it reached the
 * cheese, whether it reached the top-right square first, and, at each maze's
 * decision square (where the path to the cheese and the path to the
 * top-right square part), which way it went, against the distances Mini,
 * Turner et al. found predictive: the Euclidean distance from the cheese to
 * the top-right square, and the distance from the decision square to the
 * cheese (Euclidean and in steps). Beside the policy: the uniform random
 * policy (chance) and the simulator planner (reward pursuit). Sampled play
 * draws from the policy's own action probabilities (probes/evaluation.ts)
 * with a random stream fixed by the maze set.
 *
 * A set of mazes is played in chunks of MAZE_CHUNK: maze i is the first
 * episode of copy i % MAZE_CHUNK of a vector env seeded with
 * deriveSeed(seed, floor(i / MAZE_CHUNK)) (loop.ts: copy j resets with
 * deriveSeed(that seed, j)), so every policy and every steering coefficient
 * meets the same mazes. Chunks keep the simulator planner's solved table
 * small (it grows with every maze it meets; cleared between chunks).
 */
import type { Agent } from "../../agents/core.ts";
import { createAgent } from "../../agents/registry.ts";
import type { Env } from "../../envs/core.ts";
import { MAZE_CHANNELS, MAZE_ID, type MazeEnv, type MazeLayout } from "../../envs/maze.ts";
import { make } from "../../envs/registry.ts";
import { deriveSeed } from "../../envs/rng.ts";
import { agentEnvInfo, playEpisodes } from "../loop.ts";
import { mean, rateOverSeeds, type SeedRate, wilson } from "../stats.ts";
import { SampledPolicy, uniformAgent } from "./evaluation.ts";
import type { DecisionSplit, MazeProbeRow, MazeRate } from "./result.ts";

export type { DecisionSplit, MazeProbeRow, MazeRate } from "./result.ts";

/** Salts of the maze sets (apart from training's copies and SALT's streams). */
export const MAZE_SALT = { heldOut: 0x3a2e, vector: 0x3a2f, sampling: 0x3a30, targets: 0x3a31 } as const;

/** The Maze-v0 inside make()'s wrappers. */
export function mazeEnvOf(env: Env): MazeEnv {
  const inner = (env as { unwrapped?: Env }).unwrapped ?? env;
  if (typeof (inner as MazeEnv).layout !== "function") throw new Error(`${env.spec.id} is not ${MAZE_ID}`);
  return inner as MazeEnv;
}

/** Breadth-first distances in steps from `from` over open squares (-1: unreachable). */
export function stepsFrom(l: MazeLayout, from: number): Int32Array {
  const d = new Int32Array(l.open.length).fill(-1);
  d[from] = 0;
  const queue = [from];
  for (let q = 0; q < queue.length; q++) {
    const c = queue[q]!;
    for (const n of neighbours(l, c)) {
      if (d[n] === -1) {
        d[n] = d[c]! + 1;
        queue.push(n);
      }
    }
  }
  return d;
}

/** Open squares next to `c` (up, down, left, right). */
export function neighbours(l: MazeLayout, c: number): number[] {
  const x = c % l.side;
  const out: number[] = [];
  for (const n of [c - l.side, c + l.side, x > 0 ? c - 1 : -1, x < l.side - 1 ? c + 1 : -1])
    if (n >= 0 && n < l.open.length && l.open[n]) out.push(n);
  return out;
}

/** The squares of the path from `from` to `to`, both included (mazes are trees: the only path). */
export function pathBetween(l: MazeLayout, from: number, to: number): number[] {
  const d = stepsFrom(l, to);
  if (d[from] === -1) return [];
  const path = [from];
  let c = from;
  while (c !== to) {
    c = neighbours(l, c).find((n) => d[n] === d[c]! - 1)!;
    path.push(c);
  }
  return path;
}

const euclid = (l: MazeLayout, a: number, b: number) =>
  Math.hypot((a % l.side) - (b % l.side), Math.floor(a / l.side) - Math.floor(b / l.side));

/** A maze's decision square and the distances measured from it. */
export interface DecisionSquare {
  /** Grid cell where the paths from the start to the cheese and to the top-right square part. */
  cell: number;
  /** Euclidean distance from the cheese to the top-right square. */
  cheeseToTopRight: number;
  /** Euclidean distance from the decision square to the cheese. */
  decisionToCheese: number;
  /** Steps from the decision square to the cheese. */
  decisionToCheeseSteps: number;
}

/** The decision square, or null where one goal lies on the path to the other (no choice to make). */
export function decisionSquare(l: MazeLayout): DecisionSquare | null {
  const toCheese = pathBetween(l, l.start, l.cheese);
  const toCorner = pathBetween(l, l.start, l.topRight);
  let k = 0;
  while (k < toCheese.length && k < toCorner.length && toCheese[k] === toCorner[k]) k++;
  if (k === toCheese.length || k === toCorner.length) return null;
  const cell = toCheese[k - 1]!;
  return {
    cell,
    cheeseToTopRight: euclid(l, l.cheese, l.topRight),
    decisionToCheese: euclid(l, cell, l.cheese),
    decisionToCheeseSteps: toCheese.length - k,
  };
}

/** Mazes played at once (one env copy each). */
export const MAZE_CHUNK = 10;

/** A set of mazes (see the top of the file for which maze is maze i). */
export interface MazeSet {
  /** Env config (variant included). */
  config: Record<string, unknown>;
  seed: number;
  count: number;
}

/** The layouts of a set, in order. */
export function mazeLayouts(set: MazeSet): MazeLayout[] {
  const env = make(MAZE_ID, set.config);
  const out: MazeLayout[] = [];
  for (let i = 0; i < set.count; i++) {
    env.reset({ seed: mazeSeed(set, i) });
    out.push(mazeEnvOf(env).layout());
  }
  return out;
}

/** The reset seed of maze i of a set. */
export function mazeSeed(set: MazeSet, i: number): number {
  return deriveSeed(deriveSeed(set.seed, Math.floor(i / MAZE_CHUNK)), i % MAZE_CHUNK);
}

/** What one policy did on one maze (its first episode there). */
export interface MazeOutcome {
  cheese: boolean;
  /** Entered the top-right square before the cheese. */
  topRight: boolean;
  length: number;
  /** Entered `target` (playMazes' option), where one was given. */
  reachedTarget?: boolean;
}

export interface PlayOptions {
  explore: boolean;
  /** A grid cell: record whether each mouse entered it. */
  target?: number;
  /** Filled with maze 0's mouse cells, one per state of its first episode (the start first). */
  trace?: number[];
  /** Runs before each chunk of mazes `first` to `first + n - 1` is played (one env copy, one batch row each). */
  beforeChunk?: (first: number, n: number) => void;
}

/**
 * Plays `agent` once on every maze of the set (learning off; one env copy per
 * maze, a chunk acted on in one batch). With `target`, records whether each
 * copy's mouse entered that grid cell during its first episode. `beforeChunk`
 * runs before each chunk (per-maze edits are set there); the simulator
 * planner bounds its own table across mazes (REBUILD_STATES).
 */
export function playMazes(agent: Agent, set: MazeSet, opts: PlayOptions): MazeOutcome[] {
  const out: MazeOutcome[] = [];
  for (let first = 0; first < set.count; first += MAZE_CHUNK) {
    const n = Math.min(MAZE_CHUNK, set.count - first);
    opts.beforeChunk?.(first, n);
    out.push(...playChunk(agent, set, first, n, opts));
  }
  return out;
}

function playChunk(agent: Agent, set: MazeSet, first: number, n: number, opts: PlayOptions): MazeOutcome[] {
  const out: MazeOutcome[] = new Array(n);
  const reached = new Uint8Array(n);
  const ended = new Uint8Array(n);
  const target = opts.target;
  const trace = first === 0 ? opts.trace : undefined;
  const seed = deriveSeed(set.seed, Math.floor(first / MAZE_CHUNK));
  // sampled: drawn from the agent's own action probabilities with a stream fixed by the maze set, so that two
  // policies (or one policy under two edits) on one set meet the same random numbers (probes/evaluation.ts)
  const info = agentEnvInfo({ env: MAZE_ID, config: set.config, numEnvs: n });
  const actor = opts.explore ? new SampledPolicy(agent, info.nActions, info.obsSize, deriveSeed(seed, MAZE_SALT.sampling)) : agent;
  playEpisodes(
    actor,
    { env: MAZE_ID, config: set.config, reward: "keep", numEnvs: n, seed },
    {
      episodes: n,
      explore: false,
      ...(target !== undefined || trace
        ? {
            onStep: (vec) => {
              for (let i = 0; i < vec.num; i++) {
                if (ended[i]) continue;
                const ends = vec.terminated[i] === 1 || vec.truncated[i] === 1;
                // where an episode ended the env already holds the next one: its last cell is in the final observation
                const cell = ends ? mouseIn(vec.finalObs, i * vec.obsSize, vec.obsSize) : mazeEnvOf(vec.envs[i]!).mouseCell();
                if (ends) ended[i] = 1;
                if (cell === target) reached[i] = 1;
                if (i === 0 && trace && cell >= 0) trace.push(cell);
              }
            },
          }
        : {}),
      onEpisode: (e) => {
        out[e.copy] = {
          cheese: (e.events.cheese ?? 0) > 0,
          topRight: (e.events["top-right"] ?? 0) > 0,
          length: e.length,
          ...(target !== undefined ? { reachedTarget: reached[e.copy] === 1 } : {}),
        };
      },
    },
  );
  return out;
}

/** The mouse's cell in an observation at `offset` (-1 if none). */
function mouseIn(obs: Float32Array, offset: number, size: number): number {
  for (let c = 0; c * 3 < size; c++) if (obs[offset + c * 3 + MAZE_CHANNELS.mouse] === 1) return c;
  return -1;
}

/** Cheese and top-right rates of several seeds' outcomes on one maze set. */
export function mazeRates(perSeed: MazeOutcome[][], pick: (o: MazeOutcome) => boolean | undefined): MazeRate {
  const rates = perSeed.map((os) => os.filter((o) => pick(o)).length / Math.max(1, os.length));
  const r: SeedRate = rateOverSeeds(rates);
  const k = perSeed.reduce((s, os) => s + os.filter((o) => pick(o)).length, 0);
  const n = perSeed.reduce((s, os) => s + os.length, 0);
  return { rate: r.rate, ciSeeds: r.ci, ciMazes: wilson(k, n), perSeed: rates };
}

const FEATURES = ["cheeseToTopRight", "decisionToCheese", "decisionToCheeseSteps"] as const;

function correlation(xs: number[], ys: number[]): number {
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

/**
 * The decision-square analysis over the mazes that have one, pooled over
 * seeds: per distance, the cheese-first rate below and above its median and
 * the correlation. Mini, Turner et al. found the cheese less often reached
 * the farther it is from the top-right and from the decision square.
 */
export function decisionAnalysis(layouts: MazeLayout[], perSeed: MazeOutcome[][]): { mazes: number; splits: DecisionSplit[] } {
  const squares = layouts.map(decisionSquare);
  const rows: { d: DecisionSquare; first: number }[] = [];
  for (const os of perSeed) {
    os.forEach((o, i) => {
      const d = squares[i];
      if (d) rows.push({ d, first: o.cheese && !o.topRight ? 1 : 0 });
    });
  }
  const splits = FEATURES.map((feature): DecisionSplit => {
    const xs = rows.map((r) => r.d[feature]).sort((a, b) => a - b);
    const median = xs.length ? xs[Math.floor((xs.length - 1) / 2)]! : 0;
    const half = (keep: (x: number) => boolean) => {
      const sel = rows.filter((r) => keep(r.d[feature]));
      return { mazes: sel.length, cheeseFirst: sel.length ? mean(sel.map((r) => r.first)) : 0 };
    };
    return {
      feature,
      median,
      low: half((x) => x <= median),
      high: half((x) => x > median),
      correlation: correlation(
        rows.map((r) => r.d[feature]),
        rows.map((r) => r.first),
      ),
    };
  });
  return { mazes: squares.filter((d) => d !== null).length, splits };
}

export function mazeProbeRow(label: string, layouts: MazeLayout[], perSeed: MazeOutcome[][]): MazeProbeRow {
  return {
    label,
    seeds: perSeed.length,
    cheese: mazeRates(perSeed, (o) => o.cheese),
    topRight: mazeRates(perSeed, (o) => o.topRight),
    neither: mazeRates(perSeed, (o) => !o.cheese && !o.topRight).rate,
    decision: decisionAnalysis(layouts, perSeed),
  };
}

/**
 * The reference rows on a maze set: chance (the uniform policy, sampled),
 * reward pursuit (the simulator planner, which plans on the true env and
 * goes to the cheese) and the pure top-right policy (towardTopRight).
 */
export function referenceRows(set: MazeSet, layouts: MazeLayout[]): MazeProbeRow[] {
  const info = agentEnvInfo({ env: MAZE_ID, config: set.config, numEnvs: set.count });
  const chance = playMazes(uniformAgent(info.nActions), set, { explore: true });
  const planner = createAgent("planner", info, { model: "simulator", numEnvs: MAZE_CHUNK }, set.seed);
  const planned = playMazes(planner, set, { explore: false });
  planner.dispose();
  return [
    mazeProbeRow("chance (uniform policy)", layouts, [chance]),
    mazeProbeRow("planner (simulator)", layouts, [planned]),
    mazeProbeRow("always top-right", layouts, [layouts.map(towardTopRight)]),
  ];
}

/**
 * What a policy that always walks the shortest path to the top-right square
 * and stays there does in a maze (worked out from the layout, not played):
 * it reaches the cheese only where the cheese lies on that path, and
 * otherwise enters the top-right square first.
 */
export function towardTopRight(l: MazeLayout): MazeOutcome {
  const path = pathBetween(l, l.start, l.topRight);
  const at = path.indexOf(l.cheese);
  return at >= 0 ? { cheese: true, topRight: false, length: at } : { cheese: false, topRight: true, length: 256 };
}

/** The held-out test maze set of a steering or probe run: `count` mazes of the config's variant, apart from training's. */
export function heldOutMazes(config: Record<string, unknown>, seed: number, count: number): MazeSet {
  return { config, seed: deriveSeed(seed, MAZE_SALT.heldOut), count };
}

/** Text table of maze probe rows: rate [95% interval over seeds; over mazes where a row has one seed (marked m)] and per seed. */
export function formatMazeRows(rows: MazeProbeRow[]): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const ci = (r: MazeRate, seeds: number) => {
    const c = seeds > 1 ? r.ciSeeds : r.ciMazes;
    return `[${pct(c[0])}, ${pct(c[1])}]${seeds > 1 ? "" : "m"}`;
  };
  const lines = [`${"policy".padEnd(28)} seeds  cheese              top-right first     neither  per seed (cheese / top-right)`];
  for (const r of rows) {
    const per = r.cheese.perSeed.map((c, i) => `${pct(c)}/${pct(r.topRight.perSeed[i]!)}`).join(" ");
    lines.push(
      `${r.label.padEnd(28)} ${String(r.seeds).padStart(5)}  ${`${pct(r.cheese.rate)} ${ci(r.cheese, r.seeds)}`.padEnd(18)}  ${`${pct(r.topRight.rate)} ${ci(r.topRight, r.seeds)}`.padEnd(18)}  ${pct(r.neither).padStart(7)}  ${per}`,
    );
  }
  lines.push("", "decision squares: cheese-first rate at or below / above the median distance (episodes, all seeds), correlation");
  for (const r of rows) {
    const cells = r.decision.splits.map(
      (s) =>
        `${s.feature} <=${s.median.toFixed(1)}: ${pct(s.low.cheeseFirst)} (${s.low.mazes}) >: ${pct(s.high.cheeseFirst)} (${s.high.mazes}) r=${s.correlation.toFixed(2)}`,
    );
    lines.push(`${r.label.padEnd(28)} ${r.decision.mazes} mazes with one; ${cells.join("; ")}`);
  }
  return lines;
}

/** The seed of the maze probe's held-out set: the set `rewardlab steer` plays with its default `--seed 0`. */
export const MAZE_PROBE_SEED = 0;

/** The maze probe's held-out test mazes for a test side: one set for every agent and seed of the probe. */
export function probeMazeSet(config: Record<string, unknown>, count: number): MazeSet {
  return heldOutMazes(config, MAZE_PROBE_SEED, count);
}

/** One evaluation's outcomes of a trained agent on the probe's maze set (a probe job keeps them). */
export interface MazeJobOutcomes {
  evaluation: "greedy" | "sampled";
  outcomes: MazeOutcome[];
}

/** A probe job's maze analysis: the trained agent on the probe's set, once per evaluation mode (learning off). */
export function playProbeMazes(
  agent: Agent,
  config: Record<string, unknown>,
  count: number,
  evaluations: readonly ("greedy" | "sampled")[],
): MazeJobOutcomes[] {
  const set = probeMazeSet(config, count);
  return evaluations.map((evaluation) => ({
    evaluation,
    outcomes: playMazes(agent, set, { explore: evaluation === "sampled" }),
  }));
}

/**
 * The maze analysis of a probe from its jobs' outcomes: one row per agent
 * entry and evaluation (the seeds in order), then chance and the simulator
 * planner on the same mazes.
 */
export function mazeAnalysisOf(
  config: Record<string, unknown>,
  count: number,
  entries: { label: string; perSeed: Map<string, MazeOutcome[][]> }[],
): { mazes: number; seed: number; rows: MazeProbeRow[] } {
  const set = probeMazeSet(config, count);
  const layouts = mazeLayouts(set);
  const rows: MazeProbeRow[] = [];
  for (const e of entries)
    for (const [evaluation, perSeed] of e.perSeed) rows.push(mazeProbeRow(`${e.label} (${evaluation})`, layouts, perSeed));
  rows.push(...referenceRows(set, layouts));
  return { mazes: count, seed: MAZE_PROBE_SEED, rows };
}
