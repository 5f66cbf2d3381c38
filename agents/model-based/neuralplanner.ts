/**
 * The planner with a neural world model (`planner` with `model: "neural"`):
 * it learns an ensemble world model (agents/model-based/worldmodel.ts) from its own
 * experience and plans over the model's predictions alone. No state keys, no
 * simulator: at test, with learning off, it acts on what its model believes
 * about the observation in front of it, a layout it may never have seen.
 *
 * Planning: graph search over imagined observations, then value iteration.
 * From the current observation, breadth first, every imagined state is
 * expanded by predicting all actions at once (decoded to a valid
 * observation; the ensemble's median reward); imagined states are merged by a hash of their
 * observation, up to `neural.maxImagined` states and `horizon` steps deep
 * (unexpanded states are worth 0); a step the model thinks more likely
 * terminal than not ends there. Value iteration over that graph (`horizon`
 * sweeps, or until it settles) gives
 *   Q(s, a) = r(s, a) [+ bonus x disagreement(s, a) when exploring]
 *             + discount x [not terminal] x V(s').
 * The graph and its values are kept until the model changes (learn()), and
 * extended when an observation the agent meets is not in it: acting is a
 * lookup most of the time. Until the model has trained once, exploration is
 * uniformly random (an untrained model imagines noise).
 *
 * Exploration: the disagreement bonus in the imagined reward (optimism where
 * the ensemble is unsure) plus `neural.epsilon` random actions. The bonus
 * applies only while the agent is learning (observe() followed the previous
 * act()): with learning off the model cannot change, so a bonus would be a
 * fixed lure, and the agent would circle the states it is unsure of forever.
 * Metrics (every learn()): model/loss, model/obs_loss, model/reward_loss,
 * model/terminal_loss; held-out one-step model/accuracy, model/obs_accuracy,
 * model/reward_error, model/disagreement on the transitions collected since
 * the previous update (before training on them); planner/imagined_states,
 * planner/value_start, planner/plan_ms.
 */
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Rng, deriveSeed } from "../../envs/rng.ts";
import { ValidationError } from "../../envs/errors.ts";
import type { ActContext, ActResult, Agent, AgentEnvInfo, Route, RouteRating, Transition, UpdateStats } from "../core.ts";
import { observationKey } from "../shared/obskey.ts";
import { assignVariables, checkEnvCompatible, loadAgentFiles, saveAgentFiles } from "../shared/persist.ts";
import type { ModelPrediction, RewardAtoms } from "./worldmodel.ts";
import { ReplayBuffer, WorldModel, observationLayout, predictedRouteReturn } from "./worldmodel.ts";

// ---------------------------------------------------------------- config (its schema: modelconfig.ts)

export { type NeuralPlannerConfig, neuralPlannerConfigSchema } from "./modelconfig.ts";
import type { NeuralPlannerConfig } from "./modelconfig.ts";

/** The planner config fields this model reads (agents/model-based/planner.ts holds the whole config). */
export type PlannerSettings = Readonly<Record<string, unknown>> & {
  model: string;
  objective: string;
  discount: number;
  horizon: number | null;
  neural: NeuralPlannerConfig;
};

// ---------------------------------------------------------------- imagined search graph

/** States whose predictions are made together while imagining (one batch of the ensemble's forward passes). */
const PREDICT_AHEAD = 256;

/** The model's imagined state graph for one version of the model. */
export class ImaginedGraph {
  readonly keys = new Map<number, number>();
  readonly obs: Float32Array[] = [];
  readonly depth: number[] = [];
  readonly expanded: boolean[] = [];
  /** Per node x action: successor node (-1: none), reward, termination probability, disagreement. */
  readonly next: number[] = [];
  readonly reward: number[] = [];
  readonly terminal: number[] = [];
  readonly disagreement: number[] = [];
  /** Values with and without the exploration bonus; null when the graph changed since. */
  private values: [Float64Array | null, Float64Array | null] = [null, null];
  expansions = 0;

  constructor(
    readonly model: WorldModel,
    readonly nActions: number,
    readonly maxNodes: number,
    readonly maxDepth: number,
  ) {}

  get size(): number {
    return this.obs.length;
  }

  private add(obs: Float32Array, offset: number, key: number, depth: number): number {
    const n = this.obs.length;
    this.keys.set(key, n);
    this.obs.push(obs.slice(offset, offset + this.model.obsSize));
    this.depth.push(depth);
    this.expanded.push(false);
    for (let a = 0; a < this.nActions; a++) {
      this.next.push(-1);
      this.reward.push(0);
      this.terminal.push(0);
      this.disagreement.push(0);
    }
    return n;
  }

  /**
   * Makes sure the observation is an expanded node, imagining breadth first
   * from it; returns its node index, or -1 when the graph is full: when the
   * root cannot be added, or (unless `partial`) when an imagined successor
   * had to be dropped, which would leave the root's value cut off at the
   * drop (the caller then imagines afresh from the root alone).
   */
  ensure(obs: Float32Array, offset: number, partial = false): number {
    const S = this.model.obsSize;
    const A = this.nActions;
    const key = observationKey(obs, offset, S);
    let root = this.keys.get(key);
    if (root !== undefined && this.expanded[root]) return root;
    if (root === undefined) {
      if (this.size >= this.maxNodes) return -1;
      root = this.add(obs, offset, key, 0);
    } else {
      this.depth[root] = 0;
    }
    const queue = [root];
    // the model's predictions for queued states, made a batch at a time ahead of the expansion
    const predicted = new Map<number, ModelPrediction>();
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      if (this.expanded[s] || this.depth[s]! >= this.maxDepth) continue;
      if (!predicted.has(s)) this.predictAhead(queue, qi, predicted);
      const p = predicted.get(s)!;
      this.expansions++;
      this.expanded[s] = true;
      for (let a = 0; a < A; a++) {
        const e = s * A + a;
        this.reward[e] = p.medianReward[a]!;
        // termination is decoded like the observation, to its likelier outcome: the mean would
        // mix in the value of a state after the end, which the model never saw and can only invent
        this.terminal[e] = p.terminal[a]! > 0.5 ? 1 : 0;
        this.disagreement[e] = p.disagreement[a]!;
        if (this.terminal[e] === 1) continue;
        const k = observationKey(p.next, a * S, S);
        let n = this.keys.get(k);
        if (n === undefined) {
          if (this.size >= this.maxNodes) {
            if (!partial) return -1;
            continue;
          }
          n = this.add(p.next, a * S, k, this.depth[s]! + 1);
        }
        this.next[e] = n;
        if (!this.expanded[n]) queue.push(n);
      }
    }
    this.values = [null, null];
    return root;
  }

  /** Predicts, in one batch, up to PREDICT_AHEAD of the states queue[from..] that will be expanded. */
  private predictAhead(queue: number[], from: number, predicted: Map<number, ModelPrediction>): void {
    const S = this.model.obsSize;
    const chosen = new Set<number>();
    for (let qi = from; qi < queue.length && chosen.size < PREDICT_AHEAD; qi++) {
      const s = queue[qi]!;
      if (!this.expanded[s] && this.depth[s]! < this.maxDepth && !predicted.has(s)) chosen.add(s);
    }
    const nodes = [...chosen];
    const rows = new Float32Array(nodes.length * S);
    nodes.forEach((s, i) => rows.set(this.obs[s]!, i * S));
    const preds = this.model.predictRows(rows, nodes.length);
    nodes.forEach((s, i) => predicted.set(s, preds[i]!));
  }

  /**
   * State values by value iteration (`sweeps` at most, in place, states in
   * index order), with or without the bonus. Each expanded state's edges are
   * first flattened to Q = base + coef x v[successor] (base: reward plus
   * bonus x disagreement; coef: discount x not terminal; a missing successor
   * reads a slot that stays 0, as an unexpanded one does): the same
   * arithmetic as q(), without its lookups in every sweep.
   */
  solve(discount: number, bonus: number, sweeps: number): Float64Array {
    const slot = bonus > 0 ? 1 : 0;
    const cached = this.values[slot];
    if (cached) return cached;
    const A = this.nActions;
    const n = this.size;
    const states = new Int32Array(n);
    let m = 0;
    for (let s = 0; s < n; s++) if (this.expanded[s]) states[m++] = s;
    const base = new Float64Array(m * A);
    const coef = new Float64Array(m * A);
    const succ = new Int32Array(m * A);
    for (let i = 0; i < m; i++) {
      for (let a = 0; a < A; a++) {
        const e = states[i]! * A + a;
        const k = i * A + a;
        base[k] = this.reward[e]! + bonus * this.disagreement[e]!;
        coef[k] = discount * (1 - this.terminal[e]!);
        succ[k] = this.next[e]! >= 0 ? this.next[e]! : n;
      }
    }
    const v = new Float64Array(n + 1);
    for (let it = 0; it < sweeps; it++) {
      let residual = 0;
      for (let i = 0, k = 0; i < m; i++) {
        // the best action's Q (a comparison instead of Math.max: they differ only on NaN, which no Q is, and the sign of a zero)
        let best = -Infinity;
        for (const end = k + A; k < end; k++) {
          const q = base[k]! + coef[k]! * v[succ[k]!]!;
          if (q > best) best = q;
        }
        const s = states[i]!;
        const d = Math.abs(best - v[s]!);
        if (d > residual) residual = d;
        v[s] = best;
      }
      if (residual < 1e-9) break;
    }
    const values = v.subarray(0, n);
    this.values[slot] = values;
    return values;
  }

  q(s: number, a: number, v: Float64Array, discount: number, bonus: number): number {
    const e = s * this.nActions + a;
    const n = this.next[e]!;
    const future = n >= 0 && this.expanded[n] ? v[n]! : 0;
    return this.reward[e]! + bonus * this.disagreement[e]! + discount * (1 - this.terminal[e]!) * future;
  }
}

// ---------------------------------------------------------------- the agent

export class NeuralPlanner implements Agent {
  readonly name = "planner";
  readonly needs = { stateKeys: false, simulator: false };
  readonly model: WorldModel;
  readonly buffer: ReplayBuffer;
  readonly actRng: Rng;
  readonly trainRng: Rng;
  envSteps = 0;
  updates = 0;
  /** Env steps since the last learn(). */
  stepsSinceLearn = 0;
  /** The model has been trained at least once. */
  trained = false;
  private graph: ImaginedGraph | null = null;
  private readonly neural: NeuralPlannerConfig;
  private readonly obsSize: number;
  private readonly nActions: number;
  private readonly sweeps: number;
  private lastRootValue = Number.NaN;
  /** observe() was called since the last act(): the agent is learning. */
  private learning = false;

  constructor(
    readonly env: AgentEnvInfo,
    readonly config: PlannerSettings,
    readonly seed: number,
  ) {
    if (config.objective !== "reward") {
      throw new ValidationError(`planner: objective "${config.objective}" needs model "simulator" (a neural model only sees rewards)`);
    }
    this.neural = config.neural;
    this.obsSize = env.obsSize;
    this.nActions = env.nActions;
    this.sweeps = Math.min(config.horizon ?? env.maxEpisodeSteps, env.maxEpisodeSteps);
    this.actRng = new Rng(deriveSeed(seed, 2));
    this.trainRng = new Rng(deriveSeed(seed, 3));
    const layout = observationLayout(env.envId, env.envConfig, env.obsSize);
    this.model = new WorldModel(env.obsSize, env.nActions, layout, this.neural, new Rng(deriveSeed(seed, 1)));
    this.buffer = new ReplayBuffer(this.neural.replayCapacity, env.obsSize, this.model.binaryObservations);
  }

  /** The imagined graph of the current model (made on first use after each update). */
  imagined(): ImaginedGraph {
    this.graph ??= new ImaginedGraph(this.model, this.nActions, this.neural.maxImagined, this.sweeps);
    return this.graph;
  }

  /** Q-values of row `row` of `obs` under the model (bonus > 0 adds the exploration bonus); null when nothing could be imagined. */
  qValues(obs: Float32Array, row: number, bonus: number): Float64Array | null {
    let g = this.imagined();
    let s = g.ensure(obs, row * this.obsSize);
    if (s < 0) {
      // the graph is full: start a fresh one from here (it keeps what this root's imagination fits)
      this.graph = null;
      g = this.imagined();
      s = g.ensure(obs, row * this.obsSize, true);
      if (s < 0) return null;
    }
    const v = g.solve(this.config.discount, bonus, this.sweeps);
    this.lastRootValue = v[s]!;
    const q = new Float64Array(this.nActions);
    for (let a = 0; a < this.nActions; a++) q[a] = g.q(s, a, v, this.config.discount, bonus);
    return q;
  }

  act(obs: Float32Array, ctx: ActContext): ActResult {
    const batch = Math.round(obs.length / this.obsSize);
    const actions = new Int32Array(batch);
    const bonus = ctx.explore && this.learning ? this.neural.bonus : 0;
    this.learning = false;
    for (let i = 0; i < batch; i++) {
      if (ctx.explore && (!this.trained || (this.neural.epsilon > 0 && this.actRng.next() < this.neural.epsilon))) {
        actions[i] = this.actRng.int(this.nActions);
        continue;
      }
      const q = this.qValues(obs, i, bonus);
      const best = q ? argmaxTies(q) : [0];
      // a uniform draw among tied optima, exploring or not: the policy actionProbs describes, as the other planners
      // (taking the first would let a model that ties a useless move with a useful one repeat the useless one forever)
      actions[i] = best.length > 1 ? best[this.actRng.int(best.length)]! : best[0]!;
    }
    return { actions };
  }

  actionProbs(obs: Float32Array, batch: number): Float32Array {
    const A = this.nActions;
    const probs = new Float32Array(batch * A);
    for (let i = 0; i < batch; i++) {
      const q = this.qValues(obs, i, 0);
      const best = q ? argmaxTies(q) : [0];
      for (const a of best) probs[i * A + a] = 1 / best.length;
    }
    return probs;
  }

  /** The world model's predicted rewards summed along the route (worldmodel.ts predictedRouteReturn). */
  rateRoute(route: Route): RouteRating {
    return { predictor: "world model", value: predictedRouteReturn(this.model, route) };
  }

  /** The model's one-step belief about (obs row, action): decoded next observation, reward, termination, disagreement. */
  believe(obs: Float32Array, row: number, action: number) {
    const p = this.model.predict(obs, row);
    const S = this.obsSize;
    return {
      next: p.next.slice(action * S, (action + 1) * S),
      reward: p.medianReward[action]!,
      terminal: p.terminal[action]!,
      disagreement: p.disagreement[action]!,
    };
  }

  observe(t: Transition): void {
    const n = t.rewards.length;
    const S = this.obsSize;
    for (let i = 0; i < n; i++) {
      const ended = t.terminated[i] === 1 || t.truncated[i] === 1;
      // where the episode ended nextObs is already the next episode's first observation
      this.buffer.add(t.obs, i * S, t.act.actions[i]!, ended ? t.finalObs : t.nextObs, i * S, t.rewards[i]!, t.terminated[i] === 1);
    }
    this.envSteps += n;
    this.stepsSinceLearn += n;
    this.learning = true;
  }

  readyToLearn(): boolean {
    return this.stepsSinceLearn >= this.neural.updateEvery;
  }

  learn(): UpdateStats {
    const t0 = performance.now();
    // score the model on what it has not trained on yet, then train
    const acc = this.model.accuracy(this.buffer, Math.min(this.neural.heldOut, this.stepsSinceLearn));
    // training only while the model is wrong, when exactGradientSteps is set (null: every update runs gradientSteps)
    const exactSteps = this.neural.exactGradientSteps;
    const wrong = exactSteps === null ? null : this.wrongSinceLearn();
    const steps = wrong === 0 && exactSteps !== null ? exactSteps : this.neural.gradientSteps;
    const metrics: Record<string, number> = {};
    if (steps > 0) {
      const losses = this.model.train(this.buffer, steps, this.trainRng);
      this.graph = null;
      metrics["model/loss"] = losses.loss;
      metrics["model/obs_loss"] = losses.obsLoss;
      metrics["model/reward_loss"] = losses.rewardLoss;
      metrics["model/terminal_loss"] = losses.terminalLoss;
    } else if (this.model.learnRewardAtoms(this.buffer)) {
      // the weights stay; the imagined graph stays too unless the rewards predictions decode to changed
      this.graph = null;
    }
    const trainMs = performance.now() - t0;
    this.trained = true;
    this.stepsSinceLearn = 0;
    this.updates++;
    if (wrong !== null) metrics["model/new_wrong"] = wrong;
    Object.assign(metrics, {
      "model/gradient_steps": steps,
      "model/accuracy": acc.accuracy,
      "model/obs_accuracy": acc.obsAccuracy,
      "model/reward_error": acc.rewardError,
      "model/disagreement": acc.disagreement,
      "model/replay_size": this.buffer.size,
      "model/train_ms": trainMs,
    });
    if (Number.isFinite(this.lastRootValue)) metrics["planner/value_start"] = this.lastRootValue;
    return { update: this.updates, envSteps: this.envSteps, metrics };
  }

  /**
   * How many of the transitions since the last update (data the model has
   * not trained on) it predicts wrong (WorldModel.accuracy's `wrong`); all
   * of them before the first update.
   */
  private wrongSinceLearn(): number {
    const fresh = Math.min(this.stepsSinceLearn, this.buffer.size);
    if (!this.trained) return fresh;
    return this.model.accuracy(this.buffer, fresh).wrong;
  }

  // save / load

  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "replay.bin"), this.buffer.toBinary());
    await saveAgentFiles(dir, {
      agent: "planner",
      config: { ...this.config },
      envSteps: this.envSteps,
      updates: this.updates,
      env: this.env,
      rng: { act: this.actRng.getState(), train: this.trainRng.getState() },
      extra: {
        seed: this.seed,
        adamStep: this.model.optimizer.t,
        stepsSinceLearn: this.stepsSinceLearn,
        trained: this.trained,
        replaySize: this.buffer.size,
        replayAdded: this.buffer.added,
        rewardAtoms: this.model.rewardAtoms,
      },
      tensors: this.model.namedTensors("model"),
      ledger: { updates: 0, total: { entries: {}, total: 0, totalAbs: 0 } },
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Loads a neural planner saved by save(); `config` is the saved config, already validated by the caller. */
export async function loadNeuralPlanner(dir: string, env: AgentEnvInfo, config: PlannerSettings): Promise<NeuralPlanner> {
  const files = await loadAgentFiles(dir, "planner");
  checkEnvCompatible(files.meta.env, env, dir);
  const extra = files.meta.extra as {
    seed: number;
    adamStep: number;
    stepsSinceLearn: number;
    trained: boolean;
    replaySize: number;
    replayAdded: number;
    rewardAtoms?: RewardAtoms | null;
  };
  const agent = new NeuralPlanner(env, config, extra.seed);
  assignVariables(agent.model.namedTensors("model"), files.tensors, dir);
  agent.model.optimizer.t = extra.adamStep;
  agent.model.sync();
  agent.actRng.setState(files.meta.rng.act!);
  agent.trainRng.setState(files.meta.rng.train!);
  agent.envSteps = files.meta.envSteps;
  agent.updates = files.meta.updates;
  agent.stepsSinceLearn = extra.stepsSinceLearn;
  agent.trained = extra.trained;
  agent.buffer.fromBinary(new Uint8Array(await readFile(join(dir, "replay.bin"))), extra.replaySize, extra.replayAdded);
  agent.model.rewardAtoms = extra.rewardAtoms ?? null;
  return agent;
}

/** Every index of the largest value. */
export function argmaxTies(q: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let a = 0; a < q.length; a++) max = Math.max(max, q[a]!);
  const out: number[] = [];
  for (let a = 0; a < q.length; a++) if (q[a] === max) out.push(a);
  return out.length ? out : [0];
}
