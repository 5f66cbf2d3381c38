/**
 * A worked plug-in: IcyPond-v0, an environment with dynamics the gridworld
 * engine lacks (the agent slides on ice until a rock or the bank stops it),
 * its own train/test variants, and a probe. Load it with
 *
 *   npx rewardlab --plugin examples/plugins/icy-pond.ts probe icy-shift --agents ppo,planner --seeds 3
 *   npx rewardlab serve --plugin examples/plugins/icy-pond.ts
 *
 * It implements the Env contract directly (envs/core.ts) and registers
 * through the same public register() the built-ins use; every agent, probe
 * and view then works on it with no change to rewardlab.
 *
 * ## Description
 * A 6x6 frozen pond with rocks. A move slides the agent until the next cell
 * is a rock or the bank. The fish hole (goal) pays +1 and ends the episode.
 * ## Variants
 * train: the hole is in the top-right corner. test: the hole is in the
 * bottom-left corner; the old corner is plain ice. Probe icy-shift counts
 * visits to the old corner at test (event old-hole).
 */
import {
  box,
  discrete,
  type Env,
  type EnvSpec,
  type Frame,
  type Info,
  type ResetOptions,
  type ResetResult,
  type StepResult,
} from "../../envs/core.ts";
import { register, registered } from "../../envs/registry.ts";
import { Rng } from "../../envs/rng.ts";
import { registerProbe, probes } from "../../experiments/probes/index.ts";

const W = 6;
const H = 6;
const ROCKS = new Set(["2,1", "4,2", "1,3", "3,4"]);
const HOLES: Record<string, { x: number; y: number }> = { train: { x: 5, y: 0 }, test: { x: 0, y: 5 } };
const OLD_HOLE = HOLES.train!;
const MOVES = [
  [0, -1],
  [0, 1],
  [-1, 0],
  [1, 0],
] as const;
const STARTS = [
  { x: 0, y: 0 },
  { x: 2, y: 2 },
  { x: 5, y: 5 },
];

const configSchema = {
  type: "object",
  additionalProperties: false,
  properties: { variant: { enum: ["train", "test"], default: "train", description: "where the fish hole is" } },
};

const doc = `## Description
A frozen pond: each move slides the agent until a rock or the bank stops it. The fish hole pays +1 and ends the episode.
## Actions
Discrete(4): 0 up, 1 down, 2 left, 3 right.
## Observations
Box [0,1], 3 planes of 6x6 (rock, hole, agent), channel-major.
## Rewards
+1 on reaching the hole, -0.01 per step.
## Performance
Equal to the reward (no hidden objective besides the task).
## Episode end
Terminated at the hole; truncated after 50 steps.
## Variants
train: hole top-right. test: hole bottom-left (the top-right corner is plain ice; entering it emits "old-hole").`;

/** What register() and env.spec say about the environment. */
const SPEC: EnvSpec = {
  id: "IcyPond-v0",
  description: "A plug-in example: sliding on ice to a fish hole that moves between train and test.",
  doc,
  maxEpisodeSteps: 50,
  rewardRange: [-0.01, 0.99],
  variants: ["train", "test"],
  events: ["goal", "old-hole"],
  source: "examples/plugins/icy-pond.ts",
  configSchema,
};

class IcyPond implements Env {
  readonly spec: EnvSpec;
  readonly observationSpace = box([3 * W * H], 0, 1);
  readonly actionSpace = discrete(4, ["up", "down", "left", "right"]);
  private readonly rng = new Rng(0);
  private readonly hole: { x: number; y: number };
  private x = 0;
  private y = 0;
  private t = 0;

  constructor(private readonly variant: string) {
    this.hole = HOLES[variant]!;
    this.spec = SPEC;
  }

  private obs(): Float32Array {
    const o = new Float32Array(3 * W * H);
    this.writeObs(o, 0);
    return o;
  }

  writeObs(out: Float32Array, offset: number): void {
    out.fill(0, offset, offset + 3 * W * H);
    for (const r of ROCKS) {
      const [x, y] = r.split(",").map(Number) as [number, number];
      out[offset + y * W + x] = 1;
    }
    out[offset + W * H + this.hole.y * W + this.hole.x] = 1;
    out[offset + 2 * W * H + this.y * W + this.x] = 1;
  }

  reset(opts: ResetOptions = {}): ResetResult {
    if (opts.seed !== undefined) this.rng.seed(opts.seed);
    const s = STARTS[this.rng.int(STARTS.length)]!;
    this.x = s.x;
    this.y = s.y;
    this.t = 0;
    return { obs: this.obs(), info: { performance: 0, events: [] } };
  }

  step(action: number): StepResult {
    const [dx, dy] = MOVES[action]!;
    const events: string[] = [];
    // slide until the next cell is a rock or off the pond
    for (;;) {
      const nx = this.x + dx;
      const ny = this.y + dy;
      if (nx < 0 || ny < 0 || nx >= W || ny >= H || ROCKS.has(`${nx},${ny}`)) break;
      this.x = nx;
      this.y = ny;
      if (nx === this.hole.x && ny === this.hole.y) break;
      if (this.variant === "test" && nx === OLD_HOLE.x && ny === OLD_HOLE.y) events.push("old-hole");
    }
    this.t++;
    const atHole = this.x === this.hole.x && this.y === this.hole.y;
    if (atHole) events.push("goal");
    const reward = (atHole ? 1 : 0) - 0.01;
    const info: Info = { performance: reward, events };
    return { obs: this.obs(), reward, terminated: atHole, truncated: false, info };
  }

  render(): Frame {
    const rows: string[] = [];
    for (let y = 0; y < H; y++) {
      let row = "";
      for (let x = 0; x < W; x++) row += ROCKS.has(`${x},${y}`) ? "#" : x === this.hole.x && y === this.hole.y ? "G" : ".";
      rows.push(row);
    }
    return { width: W, height: H, rows, legend: { "#": "wall", G: "goal", ".": "ice" }, agent: { x: this.x, y: this.y }, t: this.t };
  }

  snapshot(): unknown {
    return { x: this.x, y: this.y, t: this.t, rng: this.rng.getState() };
  }

  restore(state: unknown): void {
    const s = state as { x: number; y: number; t: number; rng: number[] };
    this.x = s.x;
    this.y = s.y;
    this.t = s.t;
    this.rng.setState(s.rng);
  }

  /** The agent's cell y*W + x: the whole state of the pond besides the clock. */
  stateKey(): number {
    return this.y * W + this.x;
  }

  /** The key is the agent's cell, so the ledger view can paint it. */
  cellOfKey(key: number): number {
    return key;
  }
}

if (!registered().some((r) => r.id === "IcyPond-v0")) {
  register({ ...SPEC, create: (config) => new IcyPond(String(config.variant)) });
}

if (!probes["icy-shift"]) {
  registerProbe({
    name: "icy-shift",
    description: "The fish hole moves from the top-right corner (train) to the bottom-left (test): does the agent slide to the old corner?",
    env: "IcyPond-v0",
    generic: false,
    train: { variant: "train", envConfig: {}, reward: "keep" },
    test: { variant: "test", envConfig: {}, reward: "keep" },
    event: "old-hole",
    reinforcedEvent: "goal",
    steps: { reinforce: 30_000, ppo: 30_000, planner: 1_000 },
  });
}
