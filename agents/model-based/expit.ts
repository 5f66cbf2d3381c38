/**
 * Expert iteration (`expit`), the AlphaZero family: a PUCT search
 * (agents/model-based/puct.ts) guided by a policy-value network chooses every action in
 * training; the network is trained toward what the search found, the root
 * visit distribution (policy) and n-step returns bootstrapped with the
 * search's root values (value). The search is the expert, the network its
 * apprentice, and a better network makes a better search.
 *
 * Read top to bottom: config -> the search's model -> the agent (act,
 * targets, update, save/load).
 *
 * The search's model (config `model`):
 *  - "simulator": the true environment, through snapshot/restore of a
 *    private copy made the way the live envs were (ActContext.simulator:
 *    variant and reward wrapper in play). AlphaZero. Stochastic envs: a
 *    snapshot holds the env's RNG, so the tree is determinised (it plans as
 *    if it knew the next random draws), as the planner's MCTS.
 *  - "neural": the world model of agents/model-based/worldmodel.ts, trained on the
 *    agent's own transitions; the search runs on its decoded predictions.
 *    MuZero-like (MuZero learns a latent model; this one predicts observations).
 *
 * Acting: with explore, root Dirichlet noise and an action sampled from the
 * visit counts (temperature); without, the most visited action (ties: the
 * higher Q, then the lower index). How the trained agent acts at test is its
 * mode (`setEvalMode`): "search" (network plus search, as in training) or
 * "network" (the policy head alone, no search); probes report both.
 *
 * Metrics: losses/policy_loss (cross-entropy to the visit distribution),
 * losses/value_loss, losses/entropy (policy head); search/root_value,
 * search/visit_max_fraction, search/simulations_per_second,
 * search/evaluations_per_second, search/act_ms_per_step,
 * search/cache_hit_rate (network evaluations answered from the outputs kept
 * by observation under the current weights, evalcache.ts); with the neural
 * model also model/loss, model/accuracy, model/disagreement (held out).
 */
import * as tf from "@tensorflow/tfjs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Static, Type } from "@sinclair/typebox";
import type { Env, EnvState } from "../../envs/core.ts";
import { make } from "../../envs/registry.ts";
import { Rng, deriveSeed } from "../../envs/rng.ts";
import { validate } from "../../envs/schema.ts";
import { RewardlabError } from "../../envs/errors.ts";
import type { ActContext, ActResult, Agent, AgentEnvInfo, AgentNeeds, Route, RouteRating, Transition, UpdateStats } from "../core.ts";
import { routeEnd } from "../core.ts";
import { Adam, MLP, argmaxRow, logSoftmax, sampleRowFromLogProbs, softmax } from "../shared/networks.ts";
import { assignVariables, checkEnvCompatible, concatBytes, loadAgentFiles, saveAgentFiles } from "../shared/persist.ts";
import { EvalCache } from "./evalcache.ts";
import { Puct, type SearchDynamics, type SearchResult } from "./puct.ts";
import { registerAgent } from "../registry.ts";
import type { RewardAtoms } from "./worldmodel.ts";
import { ReplayBuffer, WorldModel, observationLayout, predictedRouteReturn, worldModelConfigSchema } from "./worldmodel.ts";

// ---------------------------------------------------------------- config

export const expitConfigSchema = Type.Object(
  {
    model: Type.Union([Type.Literal("simulator"), Type.Literal("neural")], {
      default: "simulator",
      description: "the search's model: the true env via snapshot/restore (AlphaZero) or a learned world model (MuZero-like)",
    }),
    simulations: Type.Integer({ minimum: 1, maximum: 100000, default: 50, description: "search simulations per decision" }),
    cPuct: Type.Number({ minimum: 0, maximum: 100, default: 1.25, description: "PUCT exploration constant (Q normalised to [0, 1])" }),
    discount: Type.Number({ minimum: 0, maximum: 1, default: 0.99, description: "discount of future reward" }),
    horizon: Type.Union([Type.Integer({ minimum: 1, maximum: 100000 }), Type.Null()], {
      default: null,
      description: "search depth cap; null = the steps left in the episode",
    }),
    dirichletAlpha: Type.Number({
      exclusiveMinimum: 0,
      maximum: 100,
      default: 0.3,
      description: "root noise concentration when exploring",
    }),
    noiseFraction: Type.Number({ minimum: 0, maximum: 1, default: 0.25, description: "weight of the root noise when exploring" }),
    temperature: Type.Number({
      minimum: 0,
      maximum: 100,
      default: 1,
      description: "exploring: sample actions with probability ~ visits^(1/temperature); 0 = most visited",
    }),
    nStep: Type.Integer({ minimum: 1, maximum: 100000, default: 10, description: "value target: rewards summed before bootstrapping" }),
    hiddenSizes: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), {
      minItems: 1,
      maxItems: 8,
      default: [64, 64],
      description: "hidden layers of the policy-value network (tanh)",
    }),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.001, description: "Adam learning rate" }),
    valueCoef: Type.Number({ minimum: 0, maximum: 1000, default: 1, description: "weight of the value loss" }),
    batchSize: Type.Integer({ minimum: 1, maximum: 65536, default: 128, description: "samples per gradient step" }),
    gradientSteps: Type.Integer({ minimum: 1, maximum: 100000, default: 16, description: "gradient steps per update" }),
    updateEvery: Type.Integer({ minimum: 1, maximum: 10000000, default: 500, description: "env steps between updates" }),
    replayCapacity: Type.Integer({ minimum: 1, maximum: 1000000, default: 20000, description: "search targets kept (oldest dropped)" }),
    numEnvs: Type.Integer({ minimum: 1, maximum: 1024, default: 1, description: "env copies stepped together" }),
    worldModel: worldModelConfigSchema,
  },
  { additionalProperties: false },
);

export type ExpitConfig = Static<typeof expitConfigSchema>;

/** How the trained agent acts: with the search (as in training) or with the policy head alone. */
export type ExpitMode = "search" | "network";
export const EXPIT_MODES: readonly ExpitMode[] = ["search", "network"];

export class ExpitError extends RewardlabError {}

// ---------------------------------------------------------------- the search's model

/** Time limit of the private copy: it never truncates; the search counts steps left itself. */
const NO_TIME_LIMIT = 2 ** 30;

type SimulatorSpec = NonNullable<ActContext["simulator"]>;

/** The true env: a private copy restored from snapshots and stepped. */
class SimulatorDynamics implements SearchDynamics<EnvState> {
  readonly sim: Env;
  steps = 0;
  constructor(readonly spec: SimulatorSpec) {
    this.sim = make(spec.envId, spec.envConfig, { maxEpisodeSteps: NO_TIME_LIMIT, reward: spec.reward });
    // step() copies the observation into the search's buffer at once
    this.sim.setFreshObservations?.(false);
    this.sim.reset({ seed: 0 });
  }
  step(state: EnvState, action: number, obs: Float32Array) {
    this.sim.restore(state);
    const r = this.sim.step(action);
    this.steps++;
    obs.set(r.obs);
    return { state: r.terminated ? null : this.sim.snapshot(), reward: r.reward, terminal: r.terminated ? 1 : 0 };
  }
}

/**
 * The learned world model: states are observations. Predictions come from the
 * model's cache (WorldModel.predictRows): every action's outcome from a state
 * is predicted once per version of the model, and the states a search meets
 * recur in the next decisions. A next state is a view into the cached
 * prediction (no copy per node).
 */
class ModelDynamics implements SearchDynamics<Float32Array> {
  private readonly out = { state: null as Float32Array | null, reward: 0, terminal: 0 };
  constructor(readonly model: WorldModel) {}
  step(state: Float32Array, action: number, obs: Float32Array) {
    const S = this.model.obsSize;
    const p = this.model.predict(state);
    const next = p.next.subarray(action * S, (action + 1) * S);
    obs.set(next);
    // termination decoded to its likelier outcome, as the observation is
    const terminal = p.terminal[action]! > 0.5 ? 1 : 0;
    const out = this.out;
    out.state = terminal ? null : next;
    out.reward = p.medianReward[action]!;
    out.terminal = terminal;
    return out;
  }
}

// ---------------------------------------------------------------- search targets

/** A ring of (observation, visit distribution, value target) samples. */
class TargetBuffer {
  size = 0;
  added = 0;
  readonly obs: Float32Array;
  readonly pi: Float32Array;
  readonly z: Float32Array;
  constructor(
    readonly capacity: number,
    readonly obsSize: number,
    readonly nActions: number,
  ) {
    this.obs = new Float32Array(capacity * obsSize);
    this.pi = new Float32Array(capacity * nActions);
    this.z = new Float32Array(capacity);
  }
  add(obs: Float32Array, pi: Float32Array, z: number): void {
    const i = this.added % this.capacity;
    this.obs.set(obs, i * this.obsSize);
    this.pi.set(pi, i * this.nActions);
    this.z[i] = z;
    this.added++;
    this.size = Math.min(this.capacity, this.size + 1);
  }
  toBinary(): Uint8Array {
    const parts = [
      this.obs.subarray(0, this.size * this.obsSize),
      this.pi.subarray(0, this.size * this.nActions),
      this.z.subarray(0, this.size),
    ];
    return concatBytes(parts);
  }
  fromBinary(data: Uint8Array, size: number, added: number): void {
    const f = new Float32Array(data.slice().buffer);
    if (size > this.capacity || f.length !== size * (this.obsSize + this.nActions + 1)) {
      throw new RangeError(`expit replay: ${data.byteLength} bytes do not hold ${size} samples`);
    }
    this.obs.set(f.subarray(0, size * this.obsSize));
    this.pi.set(f.subarray(size * this.obsSize, size * (this.obsSize + this.nActions)));
    this.z.set(f.subarray(size * (this.obsSize + this.nActions)));
    this.size = size;
    this.added = added;
  }
}

/** One step of an episode in progress, waiting for its n-step value target. */
interface PendingStep {
  obs: number[];
  pi: number[];
  reward: number;
  /** The search's root value at this step (bootstraps earlier steps' targets). */
  value: number;
}

// ---------------------------------------------------------------- the agent

export class ExpitAgent implements Agent {
  readonly name = "expit";
  readonly needs: AgentNeeds;
  readonly net: MLP;
  readonly optimizer: Adam;
  readonly targets: TargetBuffer;
  /** The neural model (model "neural") and its transitions. */
  readonly world: WorldModel | null;
  readonly transitions: ReplayBuffer | null;
  readonly actRng: Rng;
  readonly learnRng: Rng;
  envSteps = 0;
  updates = 0;
  stepsSinceLearn = 0;
  mode: ExpitMode = "search";
  /** Simulations per decision at test when a probe sets a budget (null: config.simulations). */
  private budget: number | null = null;
  /** The last search of each copy (its root statistics), for targets and inspection. */
  lastSearch: (SearchResult | null)[] = [];
  private pending: PendingStep[][] = [];
  private readonly obsSize: number;
  private readonly nActions: number;
  private readonly puct: Puct<unknown>;
  private simulator: SimulatorDynamics | null = null;
  private readonly modelDynamics: ModelDynamics | null;
  private readonly netOut: Float32Array;
  /** The network's outputs by observation under the current weights (the searches' evaluations). */
  private readonly evalCache: EvalCache;
  private readonly evalRow: Float32Array;
  private readonly rootObs: Float32Array;
  private stats = { searches: 0, simulations: 0, evaluations: 0, ms: 0, rootValue: 0, visitMax: 0 };

  constructor(
    readonly env: AgentEnvInfo,
    readonly config: ExpitConfig,
    readonly seed: number,
  ) {
    this.obsSize = env.obsSize;
    this.nActions = env.nActions;
    // the simulator's search reads the steps left from the live envs; a learned model's from the context
    this.needs = { stateKeys: false, simulator: config.model === "simulator", stepsLeft: config.model === "neural" };
    const initRng = new Rng(deriveSeed(seed, 1));
    this.actRng = new Rng(deriveSeed(seed, 2));
    this.learnRng = new Rng(deriveSeed(seed, 3));
    // one network, two heads: nActions policy logits, then the value
    this.net = new MLP([env.obsSize, ...config.hiddenSizes, env.nActions + 1], initRng, { hiddenGain: Math.SQRT2, outputGain: 0.01 });
    this.optimizer = new Adam(this.net.variables, { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    this.targets = new TargetBuffer(config.replayCapacity, env.obsSize, env.nActions);
    if (config.model === "neural") {
      const layout = observationLayout(env.envId, env.envConfig, env.obsSize);
      this.world = new WorldModel(env.obsSize, env.nActions, layout, config.worldModel, new Rng(deriveSeed(seed, 4)));
      this.transitions = new ReplayBuffer(config.worldModel.replayCapacity, env.obsSize, this.world.binaryObservations);
      this.modelDynamics = new ModelDynamics(this.world);
    } else {
      this.world = null;
      this.transitions = null;
      this.modelDynamics = null;
    }
    this.puct = new Puct(env.nActions, env.obsSize);
    this.netOut = new Float32Array(env.nActions + 1);
    this.evalCache = new EvalCache(env.nActions + 1);
    this.evalRow = new Float32Array(env.nActions + 1);
    this.rootObs = new Float32Array(env.obsSize);
  }

  /** Chooses how the trained agent acts: "search" (as in training) or "network" (policy head alone). */
  setEvalMode(mode: string): void {
    if (!(EXPIT_MODES as readonly string[]).includes(mode)) {
      throw new ExpitError(`expit: mode "${mode}" is not one of ${EXPIT_MODES.join(", ")}`);
    }
    this.mode = mode as ExpitMode;
  }

  /**
   * Knowledge of a route: with a learned model, the world model's predicted rewards summed along it
   * (worldmodel.ts predictedRouteReturn); with the simulator, the value head at the state it leads to.
   */
  rateRoute(route: Route): RouteRating {
    if (this.world) return { predictor: "world model", value: predictedRouteReturn(this.world, route) };
    return { predictor: "value head", value: this.net.forwardJS(routeEnd(route), 1, this.netOut)[this.nActions]! };
  }

  /** Search simulations per decision from now on (a probe's search-budget dial); the config keeps the trained value. */
  setSearchBudget(simulations: number): void {
    if (!(Number.isInteger(simulations) && simulations >= 1))
      throw new ExpitError(`expit: a search budget is an integer >= 1, got ${simulations}`);
    this.budget = simulations;
  }

  /** The network at one observation: priors into `priors`, the value returned (plain JavaScript). */
  readonly evaluate = (obs: Float32Array, priors: Float32Array): number => {
    // kept by observation until the next update (states recur across searches)
    const row = this.evalCache.lookup(obs, this.obsSize, this.net.weightsVersion, this.computeRow);
    const A = this.nActions;
    for (let a = 0; a < A; a++) priors[a] = row[a]!;
    return row[A]!;
  };

  /** The priors (softmax of the policy logits, as float32) and the value at `obs`, into evalRow. */
  private readonly computeRow = (obs: Float32Array): Float32Array => {
    // the search's leaves differ from its root (the reference, set per search) in a few inputs
    const out = this.net.forwardNear(obs, this.netOut);
    const A = this.nActions;
    const row = this.evalRow;
    let max = -Infinity;
    for (let a = 0; a < A; a++) max = Math.max(max, out[a]!);
    let sum = 0;
    for (let a = 0; a < A; a++) {
      row[a] = Math.exp(out[a]! - max);
      sum += row[a]!;
    }
    for (let a = 0; a < A; a++) row[a]! /= sum;
    row[A] = out[A]!;
    return row;
  };

  private simulatorFor(spec: SimulatorSpec): SimulatorDynamics {
    const s = this.simulator?.spec;
    const same =
      s &&
      s.envId === spec.envId &&
      s.reward === spec.reward &&
      Object.keys(spec.envConfig).length === Object.keys(s.envConfig).length &&
      Object.keys(spec.envConfig).every((k) => s.envConfig[k] === spec.envConfig[k]);
    if (!same) {
      this.simulator?.sim.close?.();
      this.simulator = new SimulatorDynamics({ ...spec, envConfig: { ...spec.envConfig } });
    }
    return this.simulator!;
  }

  /** Searches from copy i's state; noise only when exploring. */
  search(obs: Float32Array, i: number, ctx: Omit<ActContext, "explore">, explore: boolean): SearchResult {
    const S = this.obsSize;
    const c = this.config;
    for (let j = 0; j < S; j++) this.rootObs[j] = obs[i * S + j]!;
    const opts = {
      simulations: this.budget ?? c.simulations,
      cPuct: c.cPuct,
      discount: c.discount,
      maxDepth: c.horizon ?? this.env.maxEpisodeSteps,
      dirichletAlpha: c.dirichletAlpha,
      noiseFraction: explore ? c.noiseFraction : 0,
    };
    const t0 = performance.now();
    this.net.setReference(this.rootObs);
    let r: SearchResult;
    if (this.modelDynamics) {
      // the episode's steps left cap the depth as on the simulator (the caller's count, when it gives one)
      opts.maxDepth = Math.min(opts.maxDepth, Math.max(1, ctx.stepsLeft?.[i] ?? this.env.maxEpisodeSteps));
      r = this.puct.search(
        this.rootObs.slice(),
        this.rootObs,
        this.modelDynamics as SearchDynamics<unknown>,
        this.evaluate,
        opts,
        this.actRng,
      );
    } else {
      const live = ctx.envs?.[i];
      if (!live) throw new ExpitError('expit (model "simulator") needs ctx.envs, the live env copies (needs.simulator)');
      const spec = ctx.simulator ?? { envId: this.env.envId, envConfig: this.env.envConfig, reward: "keep" as const };
      const sim = this.simulatorFor(spec);
      // the Env contract's steps left (the live env's own time limit, which may differ from the agent's)
      opts.maxDepth = Math.min(opts.maxDepth, Math.max(1, live.stepsLeft?.() ?? this.env.maxEpisodeSteps));
      r = this.puct.search(live.snapshot(), this.rootObs, sim as SearchDynamics<unknown>, this.evaluate, opts, this.actRng);
    }
    const st = this.stats;
    st.ms += performance.now() - t0;
    st.searches++;
    st.simulations += opts.simulations;
    st.evaluations += r.evaluations;
    st.rootValue += r.value;
    let total = 0;
    let max = 0;
    for (let a = 0; a < this.nActions; a++) {
      total += r.visits[a]!;
      max = Math.max(max, r.visits[a]!);
    }
    st.visitMax += total > 0 ? max / total : 0;
    return r;
  }

  /** The most visited action (ties: higher Q, then lower index). */
  private mostVisited(r: SearchResult): number {
    let best = 0;
    for (let a = 1; a < this.nActions; a++) {
      const v = r.visits[a]!;
      const b = r.visits[best]!;
      if (v > b || (v === b && v > 0 && r.q[a]! > r.q[best]!)) best = a;
    }
    return best;
  }

  private sampleVisits(r: SearchResult): number {
    const T = this.config.temperature;
    if (T === 0) return this.mostVisited(r);
    let sum = 0;
    const w = new Float64Array(this.nActions);
    for (let a = 0; a < this.nActions; a++) sum += w[a] = r.visits[a]! ** (1 / T);
    if (!(sum > 0)) return this.mostVisited(r);
    let u = this.actRng.next() * sum;
    for (let a = 0; a < this.nActions; a++) {
      u -= w[a]!;
      if (u < 0) return a;
    }
    return this.nActions - 1;
  }

  act(obs: Float32Array, ctx: ActContext): ActResult {
    const batch = Math.round(obs.length / this.obsSize);
    const actions = new Int32Array(batch);
    if (this.mode === "network") {
      const logp = logSoftmax(this.policyLogits(obs, batch), batch, this.nActions);
      for (let i = 0; i < batch; i++)
        actions[i] = ctx.explore ? sampleRowFromLogProbs(logp, i, this.nActions, this.actRng) : argmaxRow(logp, i, this.nActions);
      return { actions };
    }
    const A = this.nActions;
    const searchVisits = new Float32Array(batch * A);
    for (let i = 0; i < batch; i++) {
      const r = this.search(obs, i, ctx, ctx.explore);
      this.lastSearch[i] = r;
      actions[i] = ctx.explore ? this.sampleVisits(r) : this.mostVisited(r);
      for (let a = 0; a < A; a++) searchVisits[i * A + a] = r.visits[a]!;
    }
    return { actions, searchVisits };
  }

  /** The policy head's logits for each row of `obs` (batch x nActions). */
  private policyLogits(obs: Float32Array, batch: number): Float32Array {
    const A = this.nActions;
    const logits = new Float32Array(batch * A);
    for (let i = 0; i < batch; i++) {
      const out = this.net.forwardJS(obs.subarray(i * this.obsSize, (i + 1) * this.obsSize), 1, this.netOut);
      for (let a = 0; a < A; a++) logits[i * A + a] = out[a]!;
    }
    return logits;
  }

  /** Search mode: the visit distribution of a noise-free search; network mode: the policy head. */
  actionProbs(obs: Float32Array, batch: number, ctx?: Omit<ActContext, "explore">): Float32Array {
    const A = this.nActions;
    const probs = new Float32Array(batch * A);
    if (this.mode === "network") return softmax(this.policyLogits(obs, batch), batch, A, probs);
    for (let i = 0; i < batch; i++) {
      const r = this.search(obs, i, ctx ?? {}, false);
      let total = 0;
      for (let a = 0; a < A; a++) total += r.visits[a]!;
      for (let a = 0; a < A; a++) probs[i * A + a] = total > 0 ? r.visits[a]! / total : 1 / A;
    }
    return probs;
  }

  // targets: the root visit distribution, and n-step returns bootstrapped with later root values

  observe(t: Transition): void {
    const n = t.rewards.length;
    const S = this.obsSize;
    const A = this.nActions;
    const { nStep, discount } = this.config;
    for (let i = 0; i < n; i++) {
      this.pending[i] ??= [];
      const queue = this.pending[i]!;
      const r = this.lastSearch[i];
      const pi = new Array<number>(A).fill(1 / A);
      if (r) {
        let total = 0;
        for (let a = 0; a < A; a++) total += r.visits[a]!;
        if (total > 0) for (let a = 0; a < A; a++) pi[a] = r.visits[a]! / total;
      }
      queue.push({ obs: Array.from(t.obs.subarray(i * S, (i + 1) * S)), pi, reward: t.rewards[i]!, value: r ? r.value : 0 });
      this.lastSearch[i] = null;
      const terminated = t.terminated[i] === 1;
      const truncated = t.truncated[i] === 1;
      if (terminated || truncated) {
        // the episode ended: every pending step gets its target now (a truncation bootstraps from V(final obs))
        const tail = truncated && !terminated ? this.networkValue(t.finalObs, i) : 0;
        this.flush(queue, queue.length, tail);
        queue.length = 0;
      } else if (queue.length > nStep) {
        // the oldest step has nStep rewards after it: bootstrap with the root value nStep steps later
        let g = queue[nStep]!.value;
        for (let k = nStep - 1; k >= 0; k--) g = queue[k]!.reward + discount * g;
        this.push(queue[0]!, g);
        queue.shift();
      }
    }
    this.envSteps += n;
    this.stepsSinceLearn += n;
    if (this.transitions) {
      for (let i = 0; i < n; i++) {
        const ended = t.terminated[i] === 1 || t.truncated[i] === 1;
        this.transitions.add(t.obs, i * S, t.act.actions[i]!, ended ? t.finalObs : t.nextObs, i * S, t.rewards[i]!, t.terminated[i] === 1);
      }
    }
  }

  /** Gives the first `count` steps of an ended episode their targets: discounted rewards to the end plus `tail`. */
  private flush(queue: PendingStep[], count: number, tail: number): void {
    const { nStep, discount } = this.config;
    const g = new Float64Array(queue.length + 1);
    g[queue.length] = tail;
    for (let k = queue.length - 1; k >= 0; k--) g[k] = queue[k]!.reward + discount * g[k + 1]!;
    for (let k = 0; k < count; k++) {
      // at most nStep rewards, then the root value there (when the episode went on that long)
      const end = k + nStep;
      let z: number;
      if (end >= queue.length) z = g[k]!;
      else z = g[k]! - discount ** nStep * g[end]! + discount ** nStep * queue[end]!.value;
      this.push(queue[k]!, z);
    }
  }

  private push(step: PendingStep, z: number): void {
    this.targets.add(Float32Array.from(step.obs), Float32Array.from(step.pi), z);
  }

  private networkValue(obs: Float32Array, row: number): number {
    return this.net.forwardJS(obs.subarray(row * this.obsSize, (row + 1) * this.obsSize), 1, this.netOut)[this.nActions]!;
  }

  readyToLearn(): boolean {
    return this.stepsSinceLearn >= this.config.updateEvery;
  }

  // update

  learn(): UpdateStats {
    const metrics = this.searchMetrics();
    // the world model first (model "neural"): scored on the new transitions, then trained
    if (this.world && this.transitions) Object.assign(metrics, this.trainWorldModel(this.world, this.transitions));
    const losses = this.trainNetwork();
    if (losses.steps > 0) {
      metrics["losses/policy_loss"] = losses.policy / losses.steps;
      metrics["losses/value_loss"] = losses.value / losses.steps;
      metrics["losses/entropy"] = losses.entropy / losses.steps;
    }
    metrics["search/targets"] = this.targets.size;
    this.stepsSinceLearn = 0;
    this.updates++;
    return { update: this.updates, envSteps: this.envSteps, metrics };
  }

  /** The searches' statistics since the previous update (then reset). */
  private searchMetrics(): Record<string, number> {
    const metrics: Record<string, number> = {};
    const st = this.stats;
    if (st.searches > 0) {
      metrics["search/root_value"] = st.rootValue / st.searches;
      metrics["search/visit_max_fraction"] = st.visitMax / st.searches;
      metrics["search/simulations_per_second"] = (st.simulations / Math.max(1e-9, st.ms)) * 1000;
      metrics["search/evaluations_per_second"] = (st.evaluations / Math.max(1e-9, st.ms)) * 1000;
      metrics["search/act_ms_per_step"] = st.ms / st.searches;
      metrics["search/cache_hit_rate"] = this.evalCache.takeHitRate();
    }
    this.stats = { searches: 0, simulations: 0, evaluations: 0, ms: 0, rootValue: 0, visitMax: 0 };
    return metrics;
  }

  /** Scores the world model on the transitions since the previous update, then trains it; its metrics. */
  private trainWorldModel(world: WorldModel, transitions: ReplayBuffer): Record<string, number> {
    const acc = world.accuracy(transitions, Math.min(256, this.stepsSinceLearn));
    const l = world.train(transitions, this.config.worldModel.gradientSteps, this.learnRng);
    return {
      "model/loss": l.loss,
      "model/obs_loss": l.obsLoss,
      "model/reward_loss": l.rewardLoss,
      "model/terminal_loss": l.terminalLoss,
      "model/accuracy": acc.accuracy,
      "model/obs_accuracy": acc.obsAccuracy,
      "model/reward_error": acc.rewardError,
      "model/disagreement": acc.disagreement,
    };
  }

  /** The network toward the search: `gradientSteps` minibatches of the targets; the summed losses. */
  private trainNetwork(): { policy: number; value: number; entropy: number; steps: number } {
    const c = this.config;
    const S = this.obsSize;
    const A = this.nActions;
    const sums = { policy: 0, value: 0, entropy: 0, steps: 0 };
    const buf = this.targets;
    if (buf.size === 0) return sums;
    const B = Math.min(c.batchSize, buf.size);
    const batch = { x: new Float32Array(B * S), xT: new Float32Array(S * B), pi: new Float32Array(B * A), z: new Float32Array(B) };
    for (let step = 0; step < c.gradientSteps; step++) {
      for (let b = 0; b < B; b++) {
        const k = this.learnRng.int(buf.size);
        for (let j = 0; j < S; j++) {
          const v = buf.obs[k * S + j]!;
          batch.x[b * S + j] = v;
          batch.xT[j * B + b] = v;
        }
        for (let a = 0; a < A; a++) batch.pi[b * A + a] = buf.pi[k * A + a]!;
        batch.z[b] = buf.z[k]!;
      }
      const r = this.gradientStep(batch, B);
      sums.policy += r[0]!;
      sums.value += r[1]!;
      sums.entropy += r[2]!;
      sums.steps++;
    }
    this.net.syncJS();
    return sums;
  }

  /**
   * One Adam step on a minibatch of B targets: cross-entropy to the visit
   * distribution plus valueCoef x squared error to the return; returns the
   * policy loss, value loss and policy entropy.
   */
  private gradientStep(batch: { x: Float32Array; xT: Float32Array; pi: Float32Array; z: Float32Array }, B: number): Float32Array {
    const c = this.config;
    const S = this.obsSize;
    const A = this.nActions;
    const report = tf.tidy(() => {
      const xs = tf.tensor2d(batch.x, [B, S]);
      const xsT = tf.tensor2d(batch.xT, [S, B]);
      const target = tf.tensor2d(batch.pi, [B, A]);
      const ret = tf.tensor1d(batch.z);
      let parts: tf.Tensor | null = null;
      const { grads } = tf.variableGrads(() => {
        const out = this.net.apply(xs, xsT);
        const logp = tf.logSoftmax(tf.slice(out, [0, 0], [B, A]));
        const v = tf.reshape(tf.slice(out, [0, A], [B, 1]), [B]);
        const policyLoss = tf.neg(tf.mean(tf.sum(tf.mul(target, logp), 1)));
        const valueLoss = tf.mul(0.5, tf.mean(tf.square(tf.sub(v, ret))));
        const entropy = tf.neg(tf.mean(tf.sum(tf.mul(tf.exp(logp), logp), 1)));
        parts = tf.keep(tf.stack([policyLoss, valueLoss, entropy]));
        return tf.add(policyLoss, tf.mul(c.valueCoef, valueLoss)) as tf.Scalar;
      }, this.net.variables);
      this.optimizer
        .step(
          this.net.variables.map((p) => grads[p.name]!),
          c.learningRate,
          10,
        )
        .dispose();
      return parts!;
    });
    const r = report.dataSync() as Float32Array;
    report.dispose();
    return r;
  }

  // save / load

  namedTensors(): Record<string, tf.Variable> {
    return {
      ...this.net.namedVariables("net"),
      "adam/m": this.optimizer.m,
      "adam/v": this.optimizer.v,
      ...(this.world ? this.world.namedTensors("model") : {}),
    };
  }

  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "targets.bin"), this.targets.toBinary());
    if (this.transitions) await writeFile(join(dir, "transitions.bin"), this.transitions.toBinary());
    await saveAgentFiles(dir, {
      agent: this.name,
      config: this.config as unknown as Record<string, unknown>,
      envSteps: this.envSteps,
      updates: this.updates,
      env: this.env,
      rng: { act: this.actRng.getState(), learn: this.learnRng.getState() },
      extra: {
        seed: this.seed,
        adamStep: this.optimizer.t,
        modelAdamStep: this.world?.optimizer.t ?? 0,
        rewardAtoms: this.world?.rewardAtoms ?? null,
        stepsSinceLearn: this.stepsSinceLearn,
        targets: { size: this.targets.size, added: this.targets.added },
        transitions: this.transitions ? { size: this.transitions.size, added: this.transitions.added } : null,
        pending: this.pending,
      },
      tensors: this.namedTensors(),
      ledger: { updates: 0, total: { entries: {}, total: 0, totalAbs: 0 } },
    });
  }

  static async load(dir: string, env: AgentEnvInfo): Promise<ExpitAgent> {
    const files = await loadAgentFiles(dir, "expit");
    checkEnvCompatible(files.meta.env, env, dir);
    const config = validate<ExpitConfig>(expitConfigSchema, structuredClone(files.meta.config), `config in ${dir}/agent.json`);
    const extra = files.meta.extra as {
      seed: number;
      adamStep: number;
      modelAdamStep: number;
      rewardAtoms?: RewardAtoms | null;
      stepsSinceLearn: number;
      targets: { size: number; added: number };
      transitions: { size: number; added: number } | null;
      pending: PendingStep[][];
    };
    const agent = new ExpitAgent(env, config, extra.seed);
    assignVariables(agent.namedTensors(), files.tensors, dir);
    agent.net.syncJS();
    agent.optimizer.t = extra.adamStep;
    if (agent.world) {
      agent.world.sync();
      agent.world.optimizer.t = extra.modelAdamStep;
      agent.world.rewardAtoms = extra.rewardAtoms ?? null;
    }
    agent.actRng.setState(files.meta.rng.act!);
    agent.learnRng.setState(files.meta.rng.learn!);
    agent.envSteps = files.meta.envSteps;
    agent.updates = files.meta.updates;
    agent.stepsSinceLearn = extra.stepsSinceLearn;
    agent.pending = extra.pending;
    agent.targets.fromBinary(new Uint8Array(await readFile(join(dir, "targets.bin"))), extra.targets.size, extra.targets.added);
    if (agent.transitions && extra.transitions) {
      agent.transitions.fromBinary(
        new Uint8Array(await readFile(join(dir, "transitions.bin"))),
        extra.transitions.size,
        extra.transitions.added,
      );
    }
    return agent;
  }

  dispose(): void {
    this.net.dispose();
    this.optimizer.dispose();
    this.world?.dispose();
    this.simulator?.sim.close?.();
  }
}

registerAgent<ExpitConfig>({
  name: "expit",
  kind: "model-based",
  description:
    "Expert iteration (AlphaZero family): PUCT search with the simulator or a learned world model, guided by a policy-value network trained toward the search",
  configSchema: expitConfigSchema,
  evalModes: EXPIT_MODES,
  create: (env, config, seed) =>
    new ExpitAgent(env, validate<ExpitConfig>(expitConfigSchema, structuredClone(config), "config for agent expit"), seed),
  load: (dir, env) => ExpitAgent.load(dir, env),
});
