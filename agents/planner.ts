/**
 * The model-based planner: a textbook reward maximiser, the contrast case for
 * the model-free learners. It searches for the actions that maximise the
 * predicted reward (or, as config, the hidden performance), with one of two
 * models:
 *
 * - `simulator`: the true environment. A private copy, made with make() the
 *   way the live envs were (ActContext.simulator: variant and reward wrapper),
 *   without a time limit, is restored from a live env's snapshot and stepped.
 *   - exhaustive: BFS over stateKey() through snapshot/restore from the live
 *     state, then finite-horizon value iteration over (state, steps left):
 *     V_0 = 0, V_h(s) = max_a E[r + discount * V_{h-1}(s')]. Steps left come
 *     from the TimeLimit part of the live snapshot (`elapsed`), so the time
 *     limit is part of the problem: truncation is no terminal value, just
 *     nothing left to earn. This is the exact optimum of the discounted
 *     return to the episode's end (discount 1: of the return itself; on
 *     BoatRace-v0 the default 0.99 also earns the optimal 50). The solved
 *     table is cached per (env, config, reward wrapper, planner settings) and
 *     shared, so acting is a lookup; a live state missing from it (a new
 *     layout or supervisor drawn at reset) extends it.
 *   - mcts: UCT from the live snapshot to a depth of min(horizon, steps
 *     left), random rollouts, values min-max normalised within the tree; the
 *     decision is seeded by (seed, state key, elapsed) so it is reproducible.
 *   - auto: exhaustive while at most maxStates states are reachable (and the
 *     value table fits in memory), else MCTS (also when the env has no keys).
 * - `learned`: a tabular model of its own experience (agents/models.ts):
 *   counts N(s,a,s'), mean rewards, terminal outcomes, keyed by state key,
 *   planned by discounted value iteration with R-max optimism, so it explores.
 *
 * Stochastic environments. A snapshot holds the env's RNG, so a restored copy
 * replays the live env's own future draws: stepping one snapshot is
 * deterministic. The exhaustive table keys states by stateKey() (which leaves
 * the RNG out) and keeps, per state, up to `samples` snapshots that reached it
 * after different numbers of steps (so, in an env that draws every step, with
 * different RNG states). BFS steps one snapshot per state; then the other
 * snapshots of states are stepped (about one more BFS worth): any outcome
 * unlike the first's marks the env stochastic, and every state is expanded
 * from all its snapshots. The model is the empirical distribution of these
 * sampled successors, and value iteration takes the expectation over it. (An
 * env whose RNG advances only on some actions yields fewer distinct samples.)
 * MCTS from the live snapshot is a determinised search: it plans as if it knew
 * the env's next random draws (an optimistic bound on a planner that doesn't).
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Env, EnvState } from "../envs/core.ts";
import { make, registered, specOf } from "../envs/registry.ts";
import { Rng, deriveSeed } from "../envs/rng.ts";
import { validate } from "../envs/schema.ts";
import { RewardlabError } from "../envs/errors.ts";
import type { ActContext, ActResult, Agent, AgentEnvInfo, AgentNeeds, Transition, UpdateStats } from "./core.ts";
import {
  LearnedModel,
  MdpBuilder,
  argmaxAll,
  finiteHorizonQ,
  finiteHorizonValues,
  type LearnedModelJson,
  type TabularMdp,
} from "./models.ts";
import { NeuralPlanner, type NeuralPlannerConfig, loadNeuralPlanner, neuralPlannerConfigSchema } from "./neuralplanner.ts";
import { registerAgent } from "./registry.ts";

// config

export type PlannerConfig = {
  /** Plan with the true environment ("simulator", via snapshot/restore), a tabular model learned from experience, or a neural world model (agents/neuralplanner.ts). */
  model: "simulator" | "learned" | "neural";
  /** Simulator search: exact value iteration ("exhaustive"), "mcts", or "auto" (exhaustive when at most maxStates states are reachable). */
  search: "auto" | "exhaustive" | "mcts";
  /** What the planner maximises: the reward signal, or (simulator only) the hidden performance. */
  objective: "reward" | "performance";
  /** Largest reachable state set solved exactly; beyond it auto switches to MCTS and exhaustive fails. */
  maxStates: number;
  /** Planning depth in steps; null plans to the end of the episode (the steps left in the time limit). */
  horizon: number | null;
  /** MCTS simulations per decision. */
  simulations: number;
  /** UCT exploration constant (values are normalised to [0, 1] within each tree). */
  ucbC: number;
  /** Discount of future reward (the learned model needs < 1 for its R-max bound). */
  discount: number;
  /** Stochastic envs, exhaustive search: sampled successors per state-action (snapshots kept per state). */
  samples: number;
  /** Env copies stepped together by the run loop. */
  numEnvs: number;
  /**
   * Learned model: what identifies a state. "state" uses the env's stateKey()
   * (the full dynamic state, privileged: it ignores static walls, so variants
   * that differ only by walls share keys); "observation" hashes what the agent
   * sees, so a changed layout is a new state (and works on envs without stateKey()).
   */
  modelKey: "state" | "observation";
  /** Learned model: the optimistic reward of an under-visited state-action; null takes the env's reward range maximum. */
  rmaxReward: number | null;
  /** Learned model: visits after which a state-action's estimate replaces the optimistic value. */
  optimismVisits: number;
  /** Env steps (over all copies) between learn() calls: re-plans the learned model, reports metrics. */
  replanEvery: number;
  /** Learned model: also re-plan (at the next act) as soon as a state-action reaches optimismVisits, textbook R-max. */
  replanOnKnown: boolean;
  /** Probability of a uniform random action when acting with explore = true. */
  epsilon: number;
  /** Model "neural": the world model ensemble and its imagined search. */
  neural: NeuralPlannerConfig;
};

export const plannerConfigSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    model: {
      enum: ["simulator", "learned", "neural"],
      default: "simulator",
      description: "true environment via snapshot/restore, a learned tabular model, or a neural world model",
    },
    search: {
      enum: ["auto", "exhaustive", "mcts"],
      default: "auto",
      description: "simulator search: value iteration, MCTS, or auto by state count",
    },
    objective: {
      enum: ["reward", "performance"],
      default: "reward",
      description: "maximise the reward signal or (simulator only) the hidden performance",
    },
    maxStates: { type: "integer", minimum: 1, maximum: 2000000, default: 20000, description: "largest reachable state set solved exactly" },
    horizon: {
      type: ["integer", "null"],
      minimum: 1,
      maximum: 100000,
      default: null,
      description: "planning depth; null = steps left in the episode",
    },
    simulations: { type: "integer", minimum: 1, maximum: 100000, default: 200, description: "MCTS simulations per decision" },
    ucbC: { type: "number", minimum: 0, maximum: 100, default: 1.41, description: "UCT exploration constant on normalised values" },
    discount: { type: "number", minimum: 0, maximum: 1, default: 0.99, description: "discount of future reward" },
    samples: {
      type: "integer",
      minimum: 1,
      maximum: 256,
      default: 8,
      description: "sampled successors per state-action in stochastic envs",
    },
    numEnvs: { type: "integer", minimum: 1, maximum: 1024, default: 1, description: "env copies stepped together" },
    modelKey: {
      enum: ["state", "observation"],
      default: "state",
      description: "learned model: states by the env's stateKey() or by a hash of the observation",
    },
    rmaxReward: {
      type: ["number", "null"],
      minimum: -1e6,
      maximum: 1e6,
      default: null,
      description: "learned model: optimistic reward; null = env reward range max",
    },
    optimismVisits: {
      type: "integer",
      minimum: 1,
      maximum: 100000,
      default: 1,
      description: "learned model: visits before a state-action is known",
    },
    replanEvery: { type: "integer", minimum: 1, maximum: 10000000, default: 100, description: "env steps between learn() calls" },
    replanOnKnown: { type: "boolean", default: true, description: "learned model: re-plan when a state-action becomes known" },
    epsilon: { type: "number", minimum: 0, maximum: 1, default: 0, description: "random-action probability when exploring" },
    neural: neuralPlannerConfigSchema,
  },
} as const;

// the simulator model: a private env copy, an exact table when small, MCTS otherwise

/** Time limit of the private copy: it never truncates; the planner counts steps left itself. */
const NO_TIME_LIMIT = 2 ** 30;

/** How the live envs were made (ActContext.simulator): the private copy is made the same way. */
type SimulatorSpec = NonNullable<ActContext["simulator"]>;

interface SimModelOptions extends SimulatorSpec {
  objective: PlannerConfig["objective"];
  discount: number;
  /** Largest number of steps left the table is solved for. */
  horizon: number;
  maxStates: number;
  samples: number;
}

interface MctsResult {
  visits: Int32Array;
  q: Float64Array;
  rootValue: number;
}

class MctsNode {
  readonly n: Int32Array;
  readonly w: Float64Array;
  total = 0;
  readonly children: (Map<number, MctsNode> | undefined)[];
  constructor(nActions: number) {
    this.n = new Int32Array(nActions);
    this.w = new Float64Array(nActions);
    this.children = new Array(nActions);
  }
}

export class SimulatorModel {
  readonly sim: Env;
  readonly nActions: number;
  /** Every step of the private copy (BFS, stochasticity check, MCTS, rollouts). */
  simSteps = 0;
  /** The reachable set exceeded maxStates (or the table would be too big): use MCTS. */
  tooLarge = false;
  stochastic = false;
  /** Time spent building and solving the table. */
  planMs = 0;
  /** Of which stepping the private copy (BFS and the stochasticity check). */
  searchMs = 0;
  private readonly keys = new Map<number, number>();
  private readonly builder: MdpBuilder;
  /** Per state: its snapshots and the steps after which each was reached, as [snap, depth, snap, depth, ...]; null once solved. */
  private pools: (unknown[] | null)[] = [];
  /** Per state: how many of its snapshots have been expanded. */
  private expanded: number[] = [];
  private mdp: TabularMdp | null = null;
  private values: Float64Array | null = null;
  private readonly qBuf: Float64Array;

  constructor(readonly opts: SimModelOptions) {
    this.sim = make(opts.envId, opts.envConfig, { maxEpisodeSteps: NO_TIME_LIMIT, reward: opts.reward });
    this.sim.reset({ seed: 0 });
    this.nActions = this.sim.actionSpace.n;
    this.builder = new MdpBuilder(this.nActions);
    this.qBuf = new Float64Array(this.nActions);
  }

  get nStates(): number {
    return this.builder.nStates;
  }

  get transitions(): number {
    return this.builder.transitions;
  }

  private step(action: number): { reward: number; terminated: boolean } {
    this.simSteps++;
    const r = this.sim.step(action);
    return { reward: this.opts.objective === "performance" ? r.info.performance : r.reward, terminated: r.terminated };
  }

  // exhaustive: BFS over state keys, then finite-horizon value iteration

  /**
   * Makes sure the table covers the state reached by `snap` (key `key`):
   * builds it on first use, extends it from an unknown state. Returns false
   * when the reachable set is too large (the caller falls back to MCTS).
   */
  ensureTable(snap: EnvState, key: number): boolean {
    if (this.tooLarge) return false;
    if (this.keys.has(key) && this.values) return true;
    const t0 = performance.now();
    const first = this.nStates === 0;
    const s = this.addState(key, snap, 0);
    let ok: boolean;
    if (first) {
      // one snapshot per state; keep a second (reached after more steps) to test for stochasticity
      ok = this.explore([s], 1, 2);
      if (ok && this.isStochastic()) {
        this.stochastic = true;
        ok = this.explore(
          Array.from({ length: this.nStates }, (_, i) => i),
          this.opts.samples,
          this.opts.samples,
        );
      }
    } else {
      const k = this.stochastic ? this.opts.samples : 1;
      ok = this.explore([s], k, k);
    }
    this.pools = this.pools.map(() => null);
    this.searchMs += performance.now() - t0;
    if (ok && (this.opts.horizon + 1) * this.nStates > 16_000_000) ok = false;
    if (!ok) {
      this.tooLarge = true;
      this.mdp = null;
      this.values = null;
      this.planMs += performance.now() - t0;
      return false;
    }
    this.mdp = this.builder.build();
    this.values = finiteHorizonValues(this.mdp, this.opts.horizon, this.opts.discount);
    this.planMs += performance.now() - t0;
    return true;
  }

  private addState(key: number, snap: EnvState, depth: number): number {
    const s = this.builder.addState();
    this.keys.set(key, s);
    this.pools.push([snap, depth]);
    this.expanded.push(0);
    return s;
  }

  /**
   * Expands queued states from up to `expandLimit` of their snapshots, adding
   * successors; states reached again after a new number of steps collect up to
   * `collectLimit` snapshots. False when maxStates is exceeded.
   */
  private explore(queue: number[], expandLimit: number, collectLimit: number): boolean {
    const A = this.nActions;
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      const pool = this.pools[s];
      if (!pool) continue;
      // the bound is re-read: a self-loop may add a snapshot of s while s is expanded
      for (let j = this.expanded[s]!; j < Math.min(pool.length / 2, expandLimit); j++) {
        const snap = pool[2 * j];
        const depth = (pool[2 * j + 1] as number) + 1;
        for (let a = 0; a < A; a++) {
          this.sim.restore(snap);
          const { reward, terminated } = this.step(a);
          if (terminated) {
            this.builder.record(s, a, -1, reward);
            continue;
          }
          const key = this.sim.stateKey();
          let n = this.keys.get(key);
          if (n === undefined) {
            if (this.nStates >= this.opts.maxStates) return false;
            n = this.addState(key, this.sim.snapshot(), depth);
            queue.push(n);
          } else if (
            this.offer(n, depth, collectLimit) &&
            this.expanded[n]! > 0 &&
            this.expanded[n]! < Math.min(this.pools[n]!.length / 2, expandLimit)
          ) {
            queue.push(n);
          }
          this.builder.record(s, a, n, reward);
        }
        this.expanded[s] = j + 1;
      }
    }
    return true;
  }

  /**
   * Steps the other snapshots of each state (round j: every state's j-th),
   * passing new snapshots on to successors, within a budget of about one more
   * BFS: any outcome unlike the first snapshot's means the env is stochastic.
   */
  private isStochastic(): boolean {
    const K = this.opts.samples;
    const budget = this.nStates * this.nActions + 4096;
    let steps = 0;
    for (let j = 1; j < K; j++) {
      let any = false;
      for (let s = 0; s < this.nStates; s++) {
        const pool = this.pools[s];
        if (!pool || pool.length / 2 <= j) continue;
        any = true;
        const depth = (pool[2 * j + 1] as number) + 1;
        for (let a = 0; a < this.nActions; a++) {
          this.sim.restore(pool[2 * j]);
          const { reward, terminated } = this.step(a);
          const next = terminated ? -1 : (this.keys.get(this.sim.stateKey()) ?? -2);
          const seen = this.builder.outcomes(s, a);
          if (seen.length !== 3 || seen[0] !== next || seen[1] !== reward) return true;
          if (next >= 0) this.offer(next, depth, K);
        }
        steps += this.nActions;
        if (steps >= budget) return false;
      }
      if (!any) break;
    }
    return false;
  }

  /** Keeps the current sim state as another snapshot of state n, if reached after a new number of steps. */
  private offer(n: number, depth: number, collectLimit: number): boolean {
    const p = this.pools[n];
    if (!p || p.length / 2 >= collectLimit) return false;
    for (let k = 1; k < p.length; k += 2) if (p[k] === depth) return false;
    p.push(this.sim.snapshot(), depth);
    return true;
  }

  /** Q(s, a) with `stepsLeft` steps left (capped at the table's horizon); null if the state isn't in the table. */
  tableQ(key: number, stepsLeft: number): Float64Array | null {
    const s = this.keys.get(key);
    if (s === undefined || !this.mdp || !this.values) return null;
    const h = Math.max(1, Math.min(this.opts.horizon, stepsLeft));
    return finiteHorizonQ(this.mdp, this.values, s, h, this.opts.discount, this.qBuf);
  }

  /** Optimal value of a state with `stepsLeft` steps left, or NaN. */
  tableValue(key: number, stepsLeft: number): number {
    const q = this.tableQ(key, stepsLeft);
    return q ? Math.max(...q) : NaN;
  }

  // MCTS (UCT) from a snapshot, random rollouts to the depth limit

  mcts(root: EnvState, depth: number, simulations: number, ucbC: number, rng: Rng): MctsResult {
    const A = this.nActions;
    const gamma = this.opts.discount;
    const tree = new MctsNode(A);
    let qMin = Infinity;
    let qMax = -Infinity;
    const pathNodes: MctsNode[] = [];
    const pathActions: number[] = [];
    const pathRewards: number[] = [];
    for (let sim = 0; sim < simulations; sim++) {
      this.sim.restore(root);
      pathNodes.length = pathActions.length = pathRewards.length = 0;
      let node = tree;
      let d = 0;
      let leaf = 0;
      // selection and expansion
      while (d < depth) {
        const a = this.select(node, ucbC, qMin, qMax, rng);
        const { reward, terminated } = this.step(a);
        d++;
        pathNodes.push(node);
        pathActions.push(a);
        pathRewards.push(reward);
        if (terminated) break;
        const key = this.sim.stateKey();
        const children = (node.children[a] ??= new Map());
        const child = children.get(key);
        if (!child) {
          children.set(key, new MctsNode(A));
          leaf = this.rollout(depth - d, rng);
          break;
        }
        node = child;
      }
      // backup
      let g = leaf;
      for (let i = pathNodes.length - 1; i >= 0; i--) {
        g = pathRewards[i]! + gamma * g;
        const n = pathNodes[i]!;
        const a = pathActions[i]!;
        n.n[a]!++;
        n.w[a]! += g;
        n.total++;
        const q = n.w[a]! / n.n[a]!;
        if (q < qMin) qMin = q;
        if (q > qMax) qMax = q;
      }
    }
    const q = new Float64Array(A);
    let rootValue = -Infinity;
    for (let a = 0; a < A; a++) {
      q[a] = tree.n[a]! > 0 ? tree.w[a]! / tree.n[a]! : -Infinity;
      if (q[a]! > rootValue) rootValue = q[a]!;
    }
    return { visits: Int32Array.from(tree.n), q, rootValue };
  }

  private select(node: MctsNode, c: number, qMin: number, qMax: number, rng: Rng): number {
    const A = this.nActions;
    let untried = 0;
    for (let a = 0; a < A; a++) if (node.n[a] === 0) untried++;
    if (untried > 0) {
      let k = rng.int(untried);
      for (let a = 0; a < A; a++) if (node.n[a] === 0 && k-- === 0) return a;
    }
    const range = qMax - qMin;
    const logN = Math.log(node.total);
    let best = 0;
    let bestScore = -Infinity;
    for (let a = 0; a < A; a++) {
      const q = node.w[a]! / node.n[a]!;
      const score = (range > 0 ? (q - qMin) / range : 0.5) + c * Math.sqrt(logN / node.n[a]!);
      if (score > bestScore) {
        bestScore = score;
        best = a;
      }
    }
    return best;
  }

  private rollout(steps: number, rng: Rng): number {
    let g = 0;
    let disc = 1;
    for (let t = 0; t < steps; t++) {
      const { reward, terminated } = this.step(rng.int(this.nActions));
      g += disc * reward;
      disc *= this.opts.discount;
      if (terminated) break;
    }
    return g;
  }
}

/** Simulator models (private env copy + solved table) shared by planners with the same env and settings. */
const simModels = new Map<string, SimulatorModel>();
const SIM_CACHE_SIZE = 8;

function simulatorModel(opts: SimModelOptions): SimulatorModel {
  const key = JSON.stringify([
    opts.envId,
    opts.envConfig,
    opts.reward,
    opts.objective,
    opts.discount,
    opts.horizon,
    opts.maxStates,
    opts.samples,
  ]);
  let model = simModels.get(key);
  if (model) {
    simModels.delete(key); // re-insert: most recently used last
  } else {
    model = new SimulatorModel(opts);
    if (simModels.size >= SIM_CACHE_SIZE) {
      const oldest = simModels.keys().next().value as string;
      simModels.get(oldest)!.sim.close?.();
      simModels.delete(oldest);
    }
  }
  simModels.set(key, model);
  return model;
}

/** Drops every cached plan (benchmarks, tests). */
export function clearPlanCache(): void {
  for (const m of simModels.values()) m.sim.close?.();
  simModels.clear();
}

function sameSpec(a: SimulatorSpec, b: SimulatorSpec): boolean {
  if (a.envId !== b.envId || a.reward !== b.reward) return false;
  const ka = Object.keys(a.envConfig);
  if (ka.length !== Object.keys(b.envConfig).length) return false;
  return ka.every((k) => a.envConfig[k] === b.envConfig[k]);
}

/** Steps already taken in the episode, read from the TimeLimit wrapper's part of a snapshot. */
function elapsedIn(snap: EnvState): number | undefined {
  let s = snap as { inner?: unknown; elapsed?: unknown } | null;
  for (let depth = 0; depth < 16 && s && typeof s === "object"; depth++) {
    if (typeof s.elapsed === "number") return s.elapsed;
    s = s.inner as typeof s;
  }
  return undefined;
}

// the agent

interface PlannerState {
  envSteps: number;
  updates: number;
  rng: number[];
  elapsed: number[];
  startKey: number;
  stepsSinceLearn: number;
  newlyKnown: boolean;
  model: LearnedModelJson | null;
}

export interface PlannerSave extends PlannerState {
  agent: "planner";
  config: PlannerConfig;
  seed: number;
  env: AgentEnvInfo;
}

/** Misuse of the planner: a missing context, an unsolvable configuration. */
export class PlannerError extends RewardlabError {}

export class PlannerAgent implements Agent {
  readonly name = "planner";
  readonly needs: AgentNeeds;
  private readonly rng: Rng;
  private readonly nActions: number;
  private readonly horizonCap: number;
  /** Learned model: the optimistic reward and the value of an under-visited state-action. */
  private readonly rmax: number;
  private readonly vMax: number;
  /** The simulator model last planned with, and the spec it was made from. */
  private sim: SimulatorModel | null = null;
  private simSpec: SimulatorSpec | null = null;
  private readonly learned: LearnedModel | null;
  private state: Omit<PlannerState, "model" | "rng">;
  private lastRootValue = NaN;
  /** Learned model: re-plans since the last learn() (learn() and, with replanOnKnown, acting). */
  private planStats = { replans: 0, sweeps: 0, residual: 0, ms: 0 };
  private readonly qBuf: Float64Array;

  constructor(
    readonly env: AgentEnvInfo,
    readonly config: PlannerConfig,
    readonly seed: number,
    saved?: PlannerState,
  ) {
    if (config.model === "learned" && config.objective !== "reward") {
      throw new PlannerError(`planner: objective "${config.objective}" needs model "simulator" (the learned model only sees rewards)`);
    }
    if (config.model === "learned" && config.discount >= 1) {
      throw new PlannerError("planner: the learned model needs discount < 1 (its optimistic value is rmaxReward / (1 - discount))");
    }
    this.needs = { stateKeys: config.model === "learned" && config.modelKey === "state", simulator: config.model === "simulator" };
    this.nActions = env.nActions;
    this.horizonCap = Math.min(config.horizon ?? env.maxEpisodeSteps, env.maxEpisodeSteps);
    this.rmax = config.rmaxReward ?? (registered().some((r) => r.id === env.envId) ? specOf(env.envId).rewardRange[1] : 1);
    this.vMax = config.discount < 1 ? this.rmax / (1 - config.discount) : Infinity;
    this.qBuf = new Float64Array(env.nActions);
    this.rng = new Rng(seed);
    this.learned = config.model === "learned" ? (saved?.model ? LearnedModel.fromJSON(saved.model) : new LearnedModel(env.nActions)) : null;
    if (saved) this.rng.setState(saved.rng);
    this.state = saved
      ? {
          envSteps: saved.envSteps,
          updates: saved.updates,
          elapsed: [...saved.elapsed],
          startKey: saved.startKey,
          stepsSinceLearn: saved.stepsSinceLearn,
          newlyKnown: saved.newlyKnown,
        }
      : { envSteps: 0, updates: 0, elapsed: [], startKey: -1, stepsSinceLearn: 0, newlyKnown: false };
  }

  get envSteps(): number {
    return this.state.envSteps;
  }

  /** Simulated env steps so far (shared by planners using the same cached simulator model). */
  get simSteps(): number {
    return this.sim?.simSteps ?? 0;
  }

  /**
   * The simulator model for the envs in play: made as ctx.simulator says (the
   * variant and reward wrapper of the live envs), else from the env info.
   */
  private simModel(spec?: SimulatorSpec): SimulatorModel {
    const want: SimulatorSpec = spec ?? this.simSpec ?? { envId: this.env.envId, envConfig: this.env.envConfig, reward: "keep" };
    if (this.sim && this.simSpec && sameSpec(want, this.simSpec)) return this.sim;
    this.simSpec = { ...want, envConfig: { ...want.envConfig } };
    return (this.sim = simulatorModel({
      ...this.simSpec,
      objective: this.config.objective,
      discount: this.config.discount,
      horizon: this.horizonCap,
      maxStates: this.config.maxStates,
      samples: this.config.samples,
    }));
  }

  /** The greedy actions (all ties) for copy i. */
  private greedy(i: number, obs: Float32Array, ctx: Omit<ActContext, "explore"> | undefined): number[] {
    if (this.learned) {
      if (this.config.replanOnKnown && this.state.newlyKnown) this.replan();
      let key: number;
      if (this.config.modelKey === "observation") {
        key = observationKey(obs, i * this.env.obsSize, this.env.obsSize);
      } else {
        const keys = ctx?.stateKeys;
        if (!keys) throw new PlannerError('planner (model "learned") needs ctx.stateKeys (needs.stateKeys)');
        key = keys[i]!;
      }
      const q = this.learned.qValues(key, this.config.discount, this.vMax, this.config.optimismVisits, this.qBuf);
      return argmaxAll(q);
    }
    const env = ctx?.envs?.[i];
    if (!env) throw new PlannerError('planner (model "simulator") needs ctx.envs, the live env copies (needs.simulator)');
    const model = this.simModel(ctx?.simulator);
    const snap = env.snapshot();
    const key = env.stateKey();
    const elapsed = elapsedIn(snap) ?? this.state.elapsed[i] ?? 0;
    const stepsLeft = Math.max(1, this.env.maxEpisodeSteps - elapsed);
    if (this.config.search !== "mcts" && key !== -1 && model.ensureTable(snap, key)) {
      return argmaxAll(model.tableQ(key, stepsLeft)!);
    }
    if (this.config.search === "exhaustive") {
      throw new PlannerError(
        key === -1
          ? `planner: ${this.env.envId} has no stateKey(); use search "mcts" or "auto"`
          : `planner: more than maxStates=${this.config.maxStates} states are reachable in ${this.env.envId} (or the table is too big); raise maxStates or use search "mcts"`,
      );
    }
    // MCTS; the decision is a function of the state (seeded by it), so acting is reproducible
    const rng = new Rng(deriveSeed(deriveSeed(this.seed, key >>> 0), elapsed));
    const depth = Math.min(this.config.horizon ?? stepsLeft, stepsLeft);
    const r = model.mcts(snap, depth, this.config.simulations, this.config.ucbC, rng);
    this.lastRootValue = r.rootValue;
    const most = argmaxAll(r.visits, 0);
    const q = most.map((a) => r.q[a]!);
    return argmaxAll(q).map((j) => most[j]!);
  }

  act(obs: Float32Array, ctx: ActContext): ActResult {
    const batch = Math.max(1, Math.round(obs.length / Math.max(1, this.env.obsSize)));
    const actions = new Int32Array(batch);
    for (let i = 0; i < batch; i++) {
      actions[i] = this.greedy(i, obs, ctx)[0]!;
      if (ctx.explore && this.config.epsilon > 0 && this.rng.next() < this.config.epsilon) actions[i] = this.rng.int(this.nActions);
    }
    return { actions };
  }

  actionProbs(obs: Float32Array, batch: number, ctx?: Omit<ActContext, "explore">): Float32Array {
    const probs = new Float32Array(batch * this.nActions);
    for (let i = 0; i < batch; i++) {
      const best = this.greedy(i, obs, ctx);
      for (const a of best) probs[i * this.nActions + a] = 1 / best.length;
    }
    return probs;
  }

  observe(t: Transition): void {
    const batch = t.rewards.length;
    const st = this.state;
    const byObs = this.config.modelKey === "observation";
    const size = this.env.obsSize;
    const keyOf = (i: number) => (byObs ? observationKey(t.obs, i * size, size) : t.stateKeys[i]!);
    for (let i = 0; i < batch; i++) {
      const ended = t.terminated[i] === 1 || t.truncated[i] === 1;
      if ((st.elapsed[i] ?? 0) === 0 && i === 0) st.startKey = keyOf(0);
      st.elapsed[i] = ended ? 0 : (st.elapsed[i] ?? 0) + 1;
      if (this.learned) {
        const key = keyOf(i);
        // where the episode ended, the successor is the final observation (nextObs is already the next episode's first)
        const next = byObs ? observationKey(ended ? t.finalObs : t.nextObs, i * size, size) : t.nextStateKeys[i]!;
        const terminated = t.terminated[i] === 1;
        if (key === -1) throw new PlannerError(`planner: the learned model needs state keys; ${this.env.envId} has no stateKey()`);
        // a truncated step whose successor key the loop couldn't give is skipped (its successor is unknown)
        if (next === -1 && !terminated) continue;
        const n = this.learned.observe(key, t.act.actions[i]!, t.rewards[i]!, next, terminated);
        if (n === this.config.optimismVisits) st.newlyKnown = true;
      }
    }
    st.envSteps += batch;
    st.stepsSinceLearn += batch;
  }

  readyToLearn(): boolean {
    return this.state.stepsSinceLearn >= this.config.replanEvery;
  }

  /** Value iteration on the learned model with R-max optimism (warm-started from the last plan). */
  private replan(): void {
    const t0 = performance.now();
    const r = this.learned!.plan(this.config.discount, this.rmax, this.config.optimismVisits);
    this.planStats.replans++;
    this.planStats.sweeps += r.sweeps;
    this.planStats.residual = r.residual;
    this.planStats.ms += performance.now() - t0;
    this.state.newlyKnown = false;
  }

  learn(): UpdateStats {
    const st = this.state;
    const metrics: Record<string, number> = {};
    if (this.learned) {
      // plan: value iteration on the learned model with R-max optimism
      this.replan();
      const ps = this.planStats;
      const S = this.learned.nStates;
      metrics["model/states"] = S;
      metrics["model/transitions"] = this.learned.transitions;
      metrics["model/known_fraction"] = S > 0 ? this.learned.knownCount(this.config.optimismVisits) / (S * this.nActions) : 0;
      metrics["planner/replans"] = ps.replans;
      metrics["planner/sweeps"] = ps.sweeps;
      metrics["planner/residual"] = ps.residual;
      metrics["planner/plan_ms"] = ps.ms;
      this.planStats = { replans: 0, sweeps: 0, residual: 0, ms: 0 };
      if (st.startKey !== -1) {
        metrics["planner/value_start"] = Math.max(
          ...this.learned.qValues(st.startKey, this.config.discount, this.vMax, this.config.optimismVisits, this.qBuf),
        );
      }
    } else {
      // the simulator is exact: nothing to learn; report the plan
      const m = this.simModel();
      const mcts = this.config.search === "mcts" || m.tooLarge;
      metrics["model/states"] = m.nStates;
      metrics["model/transitions"] = m.transitions;
      metrics["planner/mcts"] = mcts ? 1 : 0;
      metrics["planner/stochastic"] = m.stochastic ? 1 : 0;
      metrics["planner/sim_steps"] = m.simSteps;
      metrics["planner/plan_ms"] = m.planMs;
      const v = mcts ? this.lastRootValue : m.tableValue(st.startKey, this.env.maxEpisodeSteps);
      if (Number.isFinite(v)) metrics["planner/value_start"] = v;
    }
    st.stepsSinceLearn = 0;
    st.newlyKnown = false;
    return { update: ++st.updates, envSteps: st.envSteps, metrics };
  }

  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const out: PlannerSave = {
      agent: "planner",
      config: this.config,
      seed: this.seed,
      env: this.env,
      ...this.state,
      elapsed: [...this.state.elapsed],
      rng: this.rng.getState(),
      model: this.learned ? this.learned.toJSON() : null,
    };
    await writeFile(join(dir, "agent.json"), JSON.stringify(out));
  }

  dispose(): void {
    // no tensors; the simulator model is cached and shared
  }
}

export async function loadPlanner(dir: string, env: AgentEnvInfo): Promise<PlannerAgent> {
  const saved = JSON.parse(await readFile(join(dir, "agent.json"), "utf8")) as PlannerSave;
  if (saved.agent !== "planner") throw new PlannerError(`${dir}/agent.json holds agent "${saved.agent}", not "planner"`);
  const config = validate<PlannerConfig>(plannerConfigSchema, structuredClone(saved.config), "config for agent planner");
  return new PlannerAgent(env, config, saved.seed, saved);
}

registerAgent<PlannerConfig>({
  name: "planner",
  kind: "model-based",
  description:
    "Model-based reward maximiser: value iteration or MCTS with the true simulator, or R-max value iteration on a learned tabular model, or search over a learned neural world model",
  configSchema: plannerConfigSchema,
  create: (env, config, seed) => {
    const c = validate<PlannerConfig>(plannerConfigSchema, structuredClone(config), "config for agent planner");
    return c.model === "neural" ? new NeuralPlanner(env, c, seed) : new PlannerAgent(env, c, seed);
  },
  load: async (dir, env) => {
    const saved = JSON.parse(await readFile(join(dir, "agent.json"), "utf8")) as { config?: { model?: string } };
    if (saved.config?.model !== "neural") return loadPlanner(dir, env);
    const config = validate<PlannerConfig>(plannerConfigSchema, structuredClone(saved.config), "config for agent planner");
    return loadNeuralPlanner(dir, env, config);
  },
});

/**
 * A state id for the learned model from what the agent observes: two
 * independent 32-bit FNV-1a hashes of the observation's float bits, combined
 * into a 53-bit integer (collisions among the few thousand observations of a
 * gridworld: about 1e-9). Never -1, which means "no key".
 */
export function observationKey(obs: Float32Array, offset: number, size: number): number {
  const bits = new Uint32Array(obs.buffer, obs.byteOffset + offset * 4, size);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ size;
  for (let j = 0; j < size; j++) {
    const b = bits[j]!;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ ((b >>> 16) | (b << 16)), 0x5bd1e995);
  }
  return (h1 >>> 0) + (h2 & 0x1fffff) * 2 ** 32;
}
