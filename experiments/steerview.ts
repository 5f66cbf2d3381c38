/**
 * Live steering of one trained Maze-v0 policy, for the client's steering
 * view (server/steer.ts): on one maze, with a layer, a vector and a
 * coefficient (and optionally a target square for the channel edit), the
 * policy's action probabilities with the mouse on every open square, the
 * path probability of every square (the geometric mean of the action
 * probabilities along the shortest path from the start to it), and the
 * edited policy played from the start through the one step loop.
 *
 * A session holds one loaded agent and caches what does not depend on the
 * request: the cheese vector and the cheese-tracking channel per layer.
 */
import { Type, type Static } from "@sinclair/typebox";
import type { Agent } from "../agents/core.ts";
import { type ActivationEdit, type Inspectable, type LayerInfo, spatialDims } from "../agents/shared/activations.ts";
import type { Frame } from "../envs/core.ts";
import { ValidationError } from "../envs/errors.ts";
import { MAZE_CHANNELS, MAZE_ID, type MazeLayout } from "../envs/maze.ts";
import { make } from "../envs/registry.ts";
import { deriveSeed } from "../envs/rng.ts";
import { MAZE_SALT, type MazeSet, mazeLayouts, mazeSeed, playMazes, stepsFrom } from "./probes/maze.ts";
import { cheeseChannel, cheeseDifferences, cheeseVector, inspectable, layerSquare } from "./steer.ts";

/** What the view asks for (POST /api/runs/:id/steer). */
export const steerViewRequestSchema = Type.Object(
  {
    seed: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0, description: "which test maze" }),
    layer: Type.String({ minLength: 1, maxLength: 64, description: "layer of the vector and the edit" }),
    vector: Type.Union([Type.Literal("cheese"), Type.Literal("own"), Type.Literal("none")], {
      default: "cheese",
      description:
        "steering vector: cheese (the mean over 64 other mazes), own (this maze's own: its activation with the cheese minus without, the vector docs/mazes.md finds moves the policy), none",
    }),
    coeff: Type.Number({ minimum: -20, maximum: 20, default: 0, description: "coefficient of the vector" }),
    target: Type.Optional(
      Type.Union([Type.Null(), Type.Tuple([Type.Integer({ minimum: 0, maximum: 63 }), Type.Integer({ minimum: 0, maximum: 63 })])], {
        description: "[x, y]: set the cheese channel high at this square",
      }),
    ),
    play: Type.Boolean({ default: true, description: "play the edited policy from the start" }),
  },
  { additionalProperties: false },
);
export type SteerViewRequest = Static<typeof steerViewRequestSchema>;

/** What the view draws. */
export interface SteerView {
  layers: LayerInfo[];
  layer: string;
  frame: Frame;
  actions: string[];
  /** side x side x nActions action probabilities (0 on walls). */
  probs: number[];
  /** side x side path probabilities (-1 on walls). */
  pathProb: number[];
  /** The retargeting channel of the layer (null for a dense layer) and the value the edit sets. */
  channel: { channel: number; value: number; tracking: number } | null;
  /** The edited policy's mouse cells from the start (when asked to play). */
  trajectory: number[];
  outcome: { cheese: boolean; topRight: boolean; reachedTarget: boolean | null } | null;
}

/** Mazes the session's vectors and channels are computed on. */
const VECTOR_MAZES = 64;

export class SteerSession {
  private readonly net: Inspectable;
  private readonly vectors = new Map<string, Float32Array>();
  private readonly channels = new Map<string, { channel: number; value: number; tracking: number } | null>();
  private readonly vectorSet: MazeSet;

  constructor(
    readonly agent: Agent,
    private readonly envConfig: Record<string, unknown>,
  ) {
    this.net = inspectable(agent);
    this.vectorSet = { config: this.config(), seed: deriveSeed(0, MAZE_SALT.vector), count: VECTOR_MAZES };
  }

  layers(): LayerInfo[] {
    return this.net.layers();
  }

  private config(): Record<string, unknown> {
    return { ...this.envConfig, variant: "test" };
  }

  private layer(name: string): LayerInfo {
    const layer = this.layers().find((l) => l.name === name);
    if (!layer)
      throw new ValidationError(
        `layer: no layer "${name}" (layers: ${this.layers()
          .map((l) => l.name)
          .join(", ")})`,
      );
    return layer;
  }

  private vector(layer: LayerInfo): Float32Array {
    let v = this.vectors.get(layer.name);
    if (!v) this.vectors.set(layer.name, (v = cheeseVector(this.net, layer, this.vectorSet)));
    return v;
  }

  private channel(layer: LayerInfo): SteerView["channel"] {
    if (!this.channels.has(layer.name)) {
      const [h, w] = spatialDims(layer);
      const found = h * w > 1 ? cheeseChannel(this.net, layer, this.vectorSet) : null;
      this.channels.set(layer.name, found ? { channel: found.channel, value: 2 * found.peak, tracking: found.tracking } : null);
    }
    return this.channels.get(layer.name)!;
  }

  /** The edits a request asks for, checked against the maze's grid. */
  private edits(req: SteerViewRequest, layer: LayerInfo, side: number): ActivationEdit[] {
    const edits: ActivationEdit[] = [];
    if (req.vector !== "none" && req.coeff !== 0) {
      const vector =
        req.vector === "own" ? cheeseDifferences(this.net, layer, { config: this.config(), seed: req.seed, count: 1 }) : this.vector(layer);
      edits.push({ layer: layer.name, kind: "add", vector, coeff: req.coeff });
    }
    if (req.target) {
      const [x, y] = req.target;
      if (x >= side || y >= side) throw new ValidationError(`target: [${x}, ${y}] is outside the ${side}x${side} maze`);
      const ch = this.channel(layer);
      if (!ch) throw new ValidationError(`target: layer ${layer.name} is dense; retargeting needs a spatial layer`);
      const [lx, ly] = layerSquare(layer, side, y * side + x);
      edits.push({ layer: layer.name, kind: "set", channel: ch.channel, y: ly, x: lx, value: ch.value });
    }
    return edits;
  }

  view(req: SteerViewRequest): SteerView {
    const layer = this.layer(req.layer);
    const set: MazeSet = { config: this.config(), seed: req.seed, count: 1 };
    const layout = mazeLayouts(set)[0]!;
    const env = make(MAZE_ID, set.config);
    env.reset({ seed: mazeSeed(set, 0) });
    const frame = env.render();
    const obs = new Float32Array(env.observationSpace.shape.reduce((a, b) => a * b, 1));
    env.writeObs(obs, 0);
    const edits = this.edits(req, layer, layout.side);
    const probs = this.squareProbs(layout, obs, edits, env.actionSpace.n);
    const pathProb = pathProbabilities(layout, probs, env.actionSpace.n);
    const trajectory: number[] = [];
    let outcome: SteerView["outcome"] = null;
    if (req.play) {
      const target = req.target ? req.target[1] * layout.side + req.target[0] : undefined;
      this.agent.setEdits!(edits);
      try {
        const [o] = playMazes(this.agent, set, { explore: false, trace: trajectory, ...(target !== undefined ? { target } : {}) });
        outcome = { cheese: o!.cheese, topRight: o!.topRight, reachedTarget: o!.reachedTarget ?? null };
      } finally {
        this.agent.setEdits!([]);
      }
    }
    return {
      layers: this.layers(),
      layer: layer.name,
      frame,
      actions: [...env.actionSpace.labels],
      probs: Array.from(probs),
      pathProb: Array.from(pathProb),
      channel: this.channel(layer),
      trajectory,
      outcome,
    };
  }

  /** Action probabilities with the mouse moved to every open square (one batched forward, with the edits). */
  private squareProbs(l: MazeLayout, obs: Float32Array, edits: ActivationEdit[], nActions: number): Float32Array {
    const cells = [...l.open.keys()].filter((c) => l.open[c]);
    const size = obs.length;
    const batch = new Float32Array(cells.length * size);
    cells.forEach((cell, k) => {
      batch.set(obs, k * size);
      batch[k * size + l.start * 3 + MAZE_CHANNELS.mouse] = 0;
      batch[k * size + cell * 3 + MAZE_CHANNELS.mouse] = 1;
    });
    const { logits } = this.net.forwardInspect(batch, cells.length, { edits });
    const out = new Float32Array(l.open.length * nActions);
    cells.forEach((cell, k) => {
      let max = -Infinity;
      for (let a = 0; a < nActions; a++) max = Math.max(max, logits[k * nActions + a]!);
      let sum = 0;
      for (let a = 0; a < nActions; a++) sum += Math.exp(logits[k * nActions + a]! - max);
      for (let a = 0; a < nActions; a++) out[cell * nActions + a] = Math.exp(logits[k * nActions + a]! - max) / sum;
    });
    return out;
  }
}

const MOVES: [number, number][] = [
  [0, -1],
  [0, 1],
  [-1, 0],
  [1, 0],
];

/**
 * Path probability of every square: the geometric mean of the policy's
 * probability of the right action at each square of the shortest path from
 * the start to it (1 at the start, -1 on walls). Actions are up, down, left,
 * right as Maze-v0 numbers them.
 */
export function pathProbabilities(l: MazeLayout, probs: Float32Array, nActions: number): Float32Array {
  const d = stepsFrom(l, l.start);
  const logSum = new Float64Array(l.open.length);
  const out = new Float32Array(l.open.length).fill(-1);
  const order = [...d.keys()].filter((c) => d[c]! >= 0).sort((a, b) => d[a]! - d[b]!);
  for (const c of order) {
    if (c === l.start) {
      out[c] = 1;
      continue;
    }
    const x = c % l.side;
    const y = Math.floor(c / l.side);
    // the parent is the neighbour one step nearer the start; the action moves from it to c
    for (const [a, [dx, dy]] of MOVES.entries()) {
      const px = x - dx;
      const py = y - dy;
      const p = py * l.side + px;
      if (px < 0 || py < 0 || px >= l.side || py >= l.side || d[p] !== d[c]! - 1) continue;
      logSum[c] = logSum[p]! + Math.log(Math.max(1e-12, probs[p * nActions + a]!));
      out[c] = Math.exp(logSum[c]! / d[c]!);
      break;
    }
  }
  return out;
}
