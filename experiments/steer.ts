/**
 * Steering a maze policy without training (Mini, Turner et al.'s two
 * interventions), through the activations API (agents/shared/activations.ts)
 * and the one step loop:
 *
 * - the cheese vector: at a chosen layer, the mean over N mazes of the
 *   activation on the maze minus the activation on the same maze with its
 *   cheese plane cleared (the mouse at its start). Added with a coefficient
 *   to every forward while the policy plays 100 held-out test mazes; the
 *   cheese rate and the top-right rate per coefficient, with intervals over
 *   seeds and over mazes. A negative coefficient subtracts the cheese.
 *   With `perMaze`, each held-out maze gets its own difference instead (the
 *   vector Mini, Turner et al. subtract: computed on the maze played); with
 *   `otherMaze` too, each maze gets the next maze's (the control: a cheese
 *   vector of the same kind and size whose cheese lies elsewhere).
 * - retargeting: the channel of a spatial layer whose peak most often sits
 *   at the cheese, set to a high value at a target square; how often the
 *   mouse then enters the target, against how often it does unedited.
 *
 * Every policy is one trained seed; intervals over seeds treat the seed as
 * the unit, as the probes do.
 */
import type { Agent } from "../agents/core.ts";
import { type ActivationEdit, type Inspectable, type LayerInfo, layerSize, spatialDims } from "../agents/shared/activations.ts";
import { ValidationError } from "../envs/errors.ts";
import { MAZE_CHANNELS, MAZE_ID, type MazeLayout } from "../envs/maze.ts";
import { make } from "../envs/registry.ts";
import { Rng, deriveSeed } from "../envs/rng.ts";
import {
  MAZE_SALT,
  type MazeOutcome,
  type MazeProbeRow,
  type MazeRate,
  type MazeSet,
  heldOutMazes,
  mazeLayouts,
  mazeProbeRow,
  mazeRates,
  mazeSeed,
  playMazes,
  referenceRows,
  stepsFrom,
} from "./probes/maze.ts";
import { mean, meanCI } from "./stats.ts";

export interface SteerOptions {
  /** Layer of the steering vector and of the retargeting edit. */
  layer: string;
  coeffs: number[];
  /** Held-out test mazes per coefficient. */
  mazes: number;
  /** Mazes the cheese vector is averaged over. */
  pairs: number;
  /** Seed of the maze sets (held-out and vector mazes are apart from training's). */
  seed: number;
  /** Env config of the evaluation mazes (default the test variant). */
  envConfig: Record<string, unknown>;
  /** Sample actions (true) or act greedily. */
  explore: boolean;
  /** Target squares for retargeting (0: skip it). */
  targets: number;
  /** The retargeting channel (default: the one whose peak tracks the cheese best). */
  channel?: number;
  /** Value the channel is set to at the target (default: 2 x its mean peak on the vector mazes). */
  value?: number;
  /** Also play the chance and simulator-planner rows on the held-out mazes. */
  references: boolean;
  /** Each held-out maze's own cheese vector (its activation with the cheese minus without), not the mean over `pairs` others. */
  perMaze?: boolean;
  /** With perMaze: maze i gets maze i + 1's vector (the last gets the first's), a control for the vector's own maze. */
  otherMaze?: boolean;
  /** Retargeting also sets the channel at each maze's cheese square to its value there without the cheese (at the start). */
  clearCheese?: boolean;
}

/** One coefficient's row of the steering table. */
export interface SteerRow {
  coeff: number;
  cheese: MazeRate;
  topRight: MazeRate;
  /** Against coefficient 0 on the same mazes and random stream (absent on the 0 row itself). */
  change?: { cheese: PairedChange; topRight: PairedChange };
}

/** A rate's change under an edit against the unedited policy, maze by maze (the same mazes, the same random stream). */
export interface PairedChange {
  /** rate(edited) - rate(unedited): the mean of the seeds' differences. */
  diff: number;
  /** 95% t interval of the seeds' differences ([-1, 1] with one seed). */
  ciSeeds: [number, number];
  /** 95% t interval of the per-maze differences (-1, 0 or 1), every maze of every seed pooled, paired. */
  ciMazes: [number, number];
  /** Mazes (all seeds) where the unedited policy showed it and the edited one did not, and the reverse. */
  lost: number;
  gained: number;
}

/** The paired change of one outcome between an edited and the unedited play of the same mazes, per seed. */
export function pairedChange(edited: MazeOutcome[][], unedited: MazeOutcome[][], pick: (o: MazeOutcome) => boolean): PairedChange {
  const perSeed: number[] = [];
  const perMaze: number[] = [];
  let lost = 0;
  let gained = 0;
  edited.forEach((os, k) => {
    const d = os.map((o, i) => Number(pick(o)) - Number(pick(unedited[k]![i]!)));
    perSeed.push(mean(d));
    perMaze.push(...d);
    lost += d.filter((x) => x < 0).length;
    gained += d.filter((x) => x > 0).length;
  });
  return { diff: mean(perSeed), ciSeeds: meanCI(perSeed, [-1, 1]).ci, ciMazes: meanCI(perMaze, [-1, 1]).ci, lost, gained };
}

/**
 * Whether subtracting the cheese vector lowered the cheese rate: the most
 * negative coefficient's paired change against coefficient 0, read off both
 * intervals (null without a negative coefficient).
 */
export function subtractionVerdict(rows: SteerRow[]): string | null {
  const neg = rows.filter((r) => r.coeff < 0 && r.change).sort((a, b) => a.coeff - b.coeff)[0];
  const zero = rows.find((r) => r.coeff === 0);
  if (!neg || !zero) return null;
  const c = neg.change!.cheese;
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const ci = (x: [number, number]) => `[${pct(x[0])}, ${pct(x[1])}]`;
  const below = (x: [number, number]) => x[1] < 0;
  const above = (x: [number, number]) => x[0] > 0;
  const how =
    below(c.ciMazes) && below(c.ciSeeds)
      ? "lowers the cheese rate"
      : below(c.ciMazes)
        ? "lowers the cheese rate on these mazes (paired interval over mazes below 0), not shown over seeds"
        : above(c.ciMazes)
          ? "raises the cheese rate"
          : "does not lower the cheese rate that the intervals can tell";
  return (
    `subtracting the cheese vector (coeff ${neg.coeff}) ${how}: ${pct(neg.cheese.rate)} against ${pct(zero.cheese.rate)} at 0, ` +
    `difference ${pct(c.diff)}, 95% ${ci(c.ciMazes)} over mazes (paired), ${ci(c.ciSeeds)} over seeds; ` +
    `${c.lost} maze episodes lost the cheese, ${c.gained} gained it`
  );
}

export interface RetargetRow {
  /** Grid square [x, y] and the layer square it maps to. */
  target: [number, number];
  layerSquare: [number, number];
  /** Mazes (per seed) where the target is open and neither start nor cheese. */
  mazes: number;
  /** How often the mouse entered the target with the edit, and without it. */
  edited: MazeRate;
  unedited: MazeRate;
}

export interface SteerResult {
  env: string;
  layer: string;
  layerShape: number[];
  seeds: number[];
  mazes: number;
  pairs: number;
  explore: boolean;
  /** "mean": one vector per seed, the mean over `pairs` mazes; "per-maze": each held-out maze its own; "other-maze": the next maze's. */
  vector: "mean" | "per-maze" | "other-maze";
  /** Norm of each seed's cheese vector (per-maze: the mean norm over the held-out mazes). */
  vectorNorms: number[];
  /** The unsteered policy on the held-out mazes, with the reference rows when asked. */
  probe: MazeProbeRow[];
  steering: SteerRow[];
  /** Whether subtracting the cheese vector lowered the cheese rate (subtractionVerdict; null without a negative coefficient). */
  verdict: string | null;
  retarget: { channel: number; tracking: number; value: number; clearCheese: boolean; rows: RetargetRow[] } | null;
}

/** The policy's inspectable network, or a one-line error naming what lacks it. */
export function inspectable(agent: Agent): Inspectable {
  if (!agent.inspect || !agent.setEdits)
    throw new ValidationError(`agent ${agent.name} exposes no activations: steering needs a policy network (ppo or reinforce)`);
  return agent.inspect();
}

function layerOf(net: Inspectable, name: string): LayerInfo {
  const layers = net.layers();
  const layer = layers.find((l) => l.name === name);
  if (!layer)
    throw new ValidationError(`--layer ${name}: no such layer (layers: ${layers.map((l) => `${l.name} [${l.shape}]`).join(", ")})`);
  return layer;
}

/** Initial observations of a maze set, with the cheese and with its plane cleared. */
export function pairedObservations(set: MazeSet): { withCheese: Float32Array; without: Float32Array; layouts: MazeLayout[] } {
  const env = make(MAZE_ID, set.config);
  const size = env.observationSpace.shape.reduce((a, b) => a * b, 1);
  const withCheese = new Float32Array(set.count * size);
  for (let i = 0; i < set.count; i++) {
    env.reset({ seed: mazeSeed(set, i) });
    env.writeObs(withCheese, i * size);
  }
  const without = withCheese.slice();
  for (let j = MAZE_CHANNELS.cheese; j < without.length; j += 3) without[j] = 0;
  return { withCheese, without, layouts: mazeLayouts(set) };
}

/** Each maze's cheese vector: activation(with cheese) - activation(without) at `layer`, one block per maze of the set. */
export function cheeseDifferences(net: Inspectable, layer: LayerInfo, set: MazeSet): Float32Array {
  const { withCheese, without } = pairedObservations(set);
  const a = net.forwardInspect(withCheese, set.count, { record: [layer.name] }).recorded[layer.name]!;
  const b = net.forwardInspect(without, set.count, { record: [layer.name] }).recorded[layer.name]!;
  return a.map((x, i) => x - b[i]!);
}

/** The cheese vector: mean over the set of activation(with cheese) - activation(without), at `layer`. */
export function cheeseVector(net: Inspectable, layer: LayerInfo, set: MazeSet): Float32Array {
  const d = cheeseDifferences(net, layer, set);
  const size = layerSize(layer);
  const v = new Float32Array(size);
  for (let s = 0; s < set.count; s++) for (let i = 0; i < size; i++) v[i]! += d[s * size + i]! / set.count;
  return v;
}

/** Blocks of `size` shifted by one: block i holds block i + 1, the last the first. */
export function nextMazes(blocks: Float32Array, size: number): Float32Array {
  const out = new Float32Array(blocks.length);
  out.set(blocks.subarray(size));
  out.set(blocks.subarray(0, size), blocks.length - size);
  return out;
}

/** Euclidean norm of each consecutive block of `size` values. */
function blockNorms(v: Float32Array, size: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < v.length; o += size) out.push(Math.sqrt(v.subarray(o, o + size).reduce((s, x) => s + x * x, 0)));
  return out;
}

/** The layer square a grid cell maps to (layers after pooling are coarser than the grid). */
export function layerSquare(layer: LayerInfo, side: number, cell: number): [number, number] {
  const [h, w] = spatialDims(layer);
  return [Math.floor(((cell % side) * w) / side), Math.floor((Math.floor(cell / side) * h) / side)];
}

/**
 * The channel whose peak sits on (or next to) the cheese's layer square in
 * the most mazes of the set, that fraction, and its mean peak.
 */
export function cheeseChannel(net: Inspectable, layer: LayerInfo, set: MazeSet): { channel: number; tracking: number; peak: number } {
  const [h, w, c] = spatialDims(layer);
  if (h * w === 1) throw new ValidationError(`retargeting needs a spatial layer; ${layer.name} is [${layer.shape}] (use --targets 0)`);
  const { withCheese, layouts } = pairedObservations(set);
  const act = net.forwardInspect(withCheese, set.count, { record: [layer.name] }).recorded[layer.name]!;
  const size = h * w * c;
  let best = { channel: 0, tracking: -1, peak: 0 };
  for (let ch = 0; ch < c; ch++) {
    let hits = 0;
    const peaks: number[] = [];
    for (let s = 0; s < set.count; s++) {
      let arg = 0;
      for (let q = 1; q < h * w; q++) if (act[s * size + q * c + ch]! > act[s * size + arg * c + ch]!) arg = q;
      peaks.push(act[s * size + arg * c + ch]!);
      const [cx, cy] = layerSquare(layer, layouts[s]!.side, layouts[s]!.cheese);
      if (Math.abs((arg % w) - cx) <= 1 && Math.abs(Math.floor(arg / w) - cy) <= 1) hits++;
    }
    if (hits / set.count > best.tracking) best = { channel: ch, tracking: hits / set.count, peak: mean(peaks) };
  }
  return best;
}

/**
 * Steering table: each seed's policy on the held-out set at every coefficient
 * of its own cheese vector (per maze: `vectors[k]` holds one block per maze of
 * the set), coefficient 0 (the unsteered policy) always among them; every
 * other row carries its paired change against 0.
 */
function steeringRows(
  agents: Agent[],
  vectors: Float32Array[],
  layer: string,
  set: MazeSet,
  opts: SteerOptions,
  unsteered: MazeOutcome[][],
): SteerRow[] {
  const coeffs = [...new Set([0, ...opts.coeffs])].sort((a, b) => a - b);
  // coefficient 0 is the unsteered play (the same mazes and random stream: playing it again gives the same outcomes)
  const played = new Map<number, MazeOutcome[][]>([[0, unsteered]]);
  for (const coeff of coeffs) {
    if (coeff === 0) continue;
    played.set(
      coeff,
      agents.map((agent, k) => {
        const v = vectors[k]!;
        // per maze: the chunk's blocks, row i of the batch (env copy i) playing maze first + i
        const size = opts.perMaze ? v.length / set.count : v.length;
        const perChunk = (first: number, n: number) =>
          agent.setEdits!([{ layer, kind: "add", vector: v.subarray(first * size, (first + n) * size), coeff, perSample: true }]);
        if (!opts.perMaze) agent.setEdits!([{ layer, kind: "add", vector: v, coeff }]);
        try {
          return playMazes(agent, set, { explore: opts.explore, ...(opts.perMaze ? { beforeChunk: perChunk } : {}) });
        } finally {
          agent.setEdits!([]);
        }
      }),
    );
  }
  const zero = played.get(0)!;
  return coeffs.map((coeff) => {
    const perSeed = played.get(coeff)!;
    return {
      coeff,
      cheese: mazeRates(perSeed, (o) => o.cheese),
      topRight: mazeRates(perSeed, (o) => o.topRight),
      ...(coeff !== 0
        ? {
            change: {
              cheese: pairedChange(perSeed, zero, (o) => o.cheese),
              topRight: pairedChange(perSeed, zero, (o) => o.topRight),
            },
          }
        : {}),
    };
  });
}

/** `count` distinct target squares: in maze t of the set, a random open square at least 4 steps from the start, not the cheese. */
function targetSquares(layouts: MazeLayout[], count: number, seed: number): number[] {
  const rng = new Rng(deriveSeed(seed, MAZE_SALT.targets));
  const out: number[] = [];
  // a square drawn twice is skipped (its row would repeat another), the draw goes on in the next maze
  for (let t = 0; t < layouts.length && out.length < count; t++) {
    const l = layouts[t]!;
    const d = stepsFrom(l, l.start);
    const cells = [...l.open.keys()].filter((c) => l.open[c] && d[c]! >= 4 && c !== l.cheese);
    if (!cells.length) continue;
    const c = cells[rng.int(cells.length)]!;
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

/**
 * Per seed, the edits that put the channel at each maze's cheese square back to its value there without the
 * cheese (the start state's), one per batch row: `edits(k, first, n)` for the chunk of mazes first..first + n - 1.
 */
function cheeseClearing(agents: Agent[], layer: LayerInfo, channel: number, set: MazeSet) {
  const { without, layouts } = pairedObservations(set);
  const [, w, c] = spatialDims(layer);
  const squares = layouts.map((l) => layerSquare(layer, l.side, l.cheese));
  const values = agents.map((agent) => {
    const act = inspectable(agent).forwardInspect(without, set.count, { record: [layer.name] }).recorded[layer.name]!;
    return squares.map(([x, y], m) => act[m * layerSize(layer) + (y * w + x) * c + channel]!);
  });
  return (k: number, first: number, n: number): ActivationEdit[] =>
    Array.from({ length: n }, (_, i) => {
      const [x, y] = squares[first + i]!;
      return { layer: layer.name, kind: "set", channel, y, x, value: values[k]![first + i]!, sample: i };
    });
}

/** Retargeting rows: per target square, the reach rate with the channel edit and without, over the mazes where the target is open. */
function retargetRows(agents: Agent[], layer: LayerInfo, channel: number, value: number, set: MazeSet, opts: SteerOptions): RetargetRow[] {
  const layouts = mazeLayouts(set);
  const clearing = opts.clearCheese ? cheeseClearing(agents, layer, channel, set) : null;
  return targetSquares(layouts, opts.targets, opts.seed).map((target) => {
    const valid = layouts.map((l) => l.open[target] === 1 && target !== l.start && target !== l.cheese);
    const [x, y] = layerSquare(layer, layouts[0]!.side, target);
    const edit: ActivationEdit = { layer: layer.name, kind: "set", channel, y, x, value };
    // edited: (the cheese's square cleared, then) the target set; the target's edit last, so it wins where the two meet
    const play = (edits: ActivationEdit[]) =>
      agents.map((agent, k) => {
        const perChunk = (first: number, n: number) => agent.setEdits!([...clearing!(k, first, n), ...edits]);
        const chunked = clearing !== null && edits.length > 0;
        if (!chunked) agent.setEdits!(edits);
        try {
          return playMazes(agent, set, { explore: opts.explore, target, ...(chunked ? { beforeChunk: perChunk } : {}) }).filter(
            (_, i) => valid[i],
          );
        } finally {
          agent.setEdits!([]);
        }
      });
    const pick = (o: MazeOutcome) => o.reachedTarget;
    const side = layouts[0]!.side;
    return {
      target: [target % side, Math.floor(target / side)] as [number, number],
      layerSquare: [x, y] as [number, number],
      mazes: valid.filter(Boolean).length,
      edited: mazeRates(play([edit]), pick),
      unedited: mazeRates(play([]), pick),
    };
  });
}

/**
 * Runs the steering experiment on trained policies (one per seed, all with
 * the named layer): the unsteered probe rows, the cheese-vector table, the
 * retargeting table.
 */
export function runSteer(agents: Agent[], seeds: number[], opts: SteerOptions): SteerResult {
  if (agents.length === 0) throw new ValidationError("steer needs at least one trained policy");
  const nets = agents.map(inspectable);
  const layer = layerOf(nets[0]!, opts.layer);
  const config = { variant: "test", ...opts.envConfig };
  const set = heldOutMazes(config, opts.seed, opts.mazes);
  const vectorSet: MazeSet = { config, seed: deriveSeed(opts.seed, MAZE_SALT.vector), count: opts.pairs };
  const vectors = nets.map((net) => {
    if (!opts.perMaze) return cheeseVector(net, layerOf(net, opts.layer), vectorSet);
    const own = cheeseDifferences(net, layerOf(net, opts.layer), set);
    return opts.otherMaze ? nextMazes(own, layerSize(layer)) : own;
  });
  const layouts = mazeLayouts(set);
  const unsteered = agents.map((a) => playMazes(a, set, { explore: opts.explore }));
  const probe = [mazeProbeRow(`${agents[0]!.name} (${opts.explore ? "sampled" : "greedy"})`, layouts, unsteered)];
  if (opts.references) probe.push(...referenceRows(set, layouts));
  const steering = steeringRows(agents, vectors, layer.name, set, opts, unsteered);
  let retarget: SteerResult["retarget"] = null;
  if (opts.targets > 0) {
    const found = cheeseChannel(nets[0]!, layer, vectorSet);
    const channel = opts.channel ?? found.channel;
    const value = opts.value ?? 2 * found.peak;
    const tracking = opts.channel === undefined ? found.tracking : NaN;
    const rows = retargetRows(agents, layer, channel, value, set, opts);
    retarget = { channel, tracking, value, clearCheese: opts.clearCheese === true, rows };
  }
  return {
    env: MAZE_ID,
    layer: layer.name,
    layerShape: layer.shape,
    seeds,
    mazes: opts.mazes,
    pairs: opts.pairs,
    explore: opts.explore,
    vector: opts.perMaze ? (opts.otherMaze ? "other-maze" : "per-maze") : "mean",
    vectorNorms: vectors.map((v) => mean(blockNorms(v, layerSize(layer)))),
    probe,
    steering,
    verdict: subtractionVerdict(steering),
    retarget,
  };
}

const VECTOR_WORDS: Partial<Record<SteerResult["vector"], string>> = {
  "per-maze": "each maze's own",
  "other-maze": "each maze given the next maze's (control)",
};

/** The steering and retargeting tables as text: per coefficient beside the chance row, the subtraction verdict, the retargeting rows. */
export function formatSteer(r: SteerResult): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const ci = (c: [number, number]) => `[${pct(c[0])}, ${pct(c[1])}]`;
  const lines = [
    `cheese vector at ${r.layer} [${r.layerShape}], ${VECTOR_WORDS[r.vector] ?? `averaged over ${r.pairs} mazes`} (${r.vector === "mean" ? "norm" : "mean norm"} ${r.vectorNorms.map((n) => n.toFixed(2)).join(", ")}); ${r.mazes} held-out test mazes x ${r.seeds.length} seeds, ${r.explore ? "sampled" : "greedy"}`,
    `${"coeff".padStart(8)}  ${"cheese".padEnd(8)} ${"[seeds]".padEnd(12)} ${"[mazes]".padEnd(12)}  ${"vs 0 [mazes, paired]".padEnd(22)}  ${"top-right".padEnd(9)} ${"[seeds]".padEnd(12)} ${"[mazes]".padEnd(12)}  per seed (cheese)`,
  ];
  for (const s of r.steering) {
    const vs = s.change ? `${pct(s.change.cheese.diff)} ${ci(s.change.cheese.ciMazes)}` : "-";
    lines.push(
      `${String(s.coeff).padStart(8)}  ${pct(s.cheese.rate).padEnd(8)} ${ci(s.cheese.ciSeeds).padEnd(12)} ${ci(s.cheese.ciMazes).padEnd(12)}  ${vs.padEnd(22)}  ${pct(s.topRight.rate).padEnd(9)} ${ci(s.topRight.ciSeeds).padEnd(12)} ${ci(s.topRight.ciMazes).padEnd(12)}  ${s.cheese.perSeed.map(pct).join(" ")}`,
    );
  }
  const chance = r.probe.find((p) => p.label.startsWith("chance"));
  if (chance)
    lines.push(
      `${"chance".padStart(8)}  ${pct(chance.cheese.rate).padEnd(8)} ${"".padEnd(12)} ${ci(chance.cheese.ciMazes).padEnd(12)}  ${"".padEnd(22)}  ${pct(chance.topRight.rate).padEnd(9)} ${"".padEnd(12)} ${ci(chance.topRight.ciMazes).padEnd(12)}  (uniform random policy, same mazes)`,
    );
  if (r.verdict) lines.push(r.verdict);
  if (r.retarget) lines.push("", ...formatRetarget(r.layer, r.retarget));
  return lines;
}

function formatRetarget(layer: string, t: NonNullable<SteerResult["retarget"]>): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const ci = (c: [number, number]) => `[${pct(c[0])}, ${pct(c[1])}]`;
  const how = Number.isNaN(t.tracking) ? "given" : `its peak within one square of the cheese in ${pct(t.tracking)} of mazes`;
  const lines = [
    `retargeting: channel ${t.channel} of ${layer} (${how}) set to ${t.value.toFixed(2)} at the target${t.clearCheese ? ", and at the cheese's square to its value there without the cheese" : ""}; how often the mouse enters the target square, with the edit and without`,
    `${"target [x,y]".padEnd(14)} ${"layer sq".padEnd(9)} ${"mazes".padStart(5)}  ${"edited [seeds] [mazes]".padEnd(30)} unedited [seeds] [mazes]`,
  ];
  for (const row of t.rows) {
    const cell = (m: MazeRate) => `${pct(m.rate)} ${ci(m.ciSeeds)} ${ci(m.ciMazes)}`;
    lines.push(
      `${`[${row.target}]`.padEnd(14)} ${`[${row.layerSquare}]`.padEnd(9)} ${String(row.mazes).padStart(5)}  ${cell(row.edited).padEnd(30)} ${cell(row.unedited)}`,
    );
  }
  return lines;
}
