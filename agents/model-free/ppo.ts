/**
 * PPO (clipped surrogate), after CleanRL's ppo.py: same defaults, same
 * losses, same order of operations, read top to bottom:
 *   config -> computed values -> maths -> networks -> rollout -> GAE -> update.
 *
 * Differences from CleanRL, on purpose:
 *  - A time-limit truncation bootstraps: gamma * V(final obs) is added to the
 *    reward of the truncated step and the episode is then treated as ended
 *    (CleanRL treats truncation as termination). `bootstrapTruncated: false`
 *    restores CleanRL's behaviour.
 *  - Acting runs the networks on the whole vector batch outside tfjs (plain
 *    JavaScript, or XNNPACK directly on wasm), with weights copied out once
 *    per update. Training does not go through tfjs operations either: the
 *    update below calls small named functions (MLPPass forward/backward,
 *    ppoLossGrad, adamStepFlat), each tested against the tfjs/autodiff or
 *    plain reference it replaces; tfjs holds the weights (save/load).
 *  - Loss metrics are means over all minibatches of the update (CleanRL logs
 *    the last minibatch's).
 *  - A gap in the stream of transitions (learning paused, env rebuilt by the
 *    run loop) ends the cut episode there, bootstrapped like a truncation.
 * Episodes carry across rollout boundaries: the run loop never resets between
 * rollouts, and the last step of a rollout bootstraps from V(next obs).
 */
import * as tf from "@tensorflow/tfjs";
import { Rng, deriveSeed } from "../../envs/rng.ts";
import { type Static, Type } from "@sinclair/typebox";
import { NullableNumber, validate } from "../../envs/schema.ts";
import { bool, hiddenSizes, int, num } from "../shared/config.ts";
import type { ActContext, ActResult, Agent, AgentEnvInfo, Route, RouteRating, Transition, UpdateStats } from "../core.ts";
import { routeEnd } from "../core.ts";
import { Ledger, LedgerBuilder } from "../shared/ledger.ts";
import {
  Adam,
  type MLP,
  argmaxRow,
  logSoftmax,
  meanStd,
  permutation,
  sampleRowFromLogProbs,
  softmax,
  rowEntropy,
  rowLogSumExp,
} from "../shared/networks.ts";
import { FlatAdam } from "../shared/flatadam.ts";
import { assignVariables, checkEnvCompatible, loadAgentFiles, saveAgentFiles } from "../shared/persist.ts";
import { registerAgent } from "../registry.ts";
import type { ActivationEdit, Inspectable } from "../shared/activations.ts";
import { type ActorCritic, buildActorCritic, networkConfigFields } from "../shared/convpolicy.ts";

// ---------------------------------------------------------------- config

/** PPO's hyperparameters, with CleanRL's defaults (ajv fills them); PPOConfig is derived from this one declaration. */
export const ppoConfigSchema = Type.Object(
  {
    learningRate: num(2.5e-4, "Adam learning rate (linearly annealed to 0 over totalSteps when annealLr)", {
      exclusiveMinimum: 0,
      maximum: 1,
    }),
    numEnvs: int(4, "Env copies acted on at once; the run loop builds its vector env with this many", { minimum: 1, maximum: 1024 }),
    numSteps: int(128, "Vector steps per rollout (per env copy)", { minimum: 1, maximum: 100000 }),
    annealLr: bool(true, "Anneal the learning rate linearly to 0 over totalSteps"),
    totalSteps: int(500000, "Total env steps of the run (all copies; the run loop sets it from its budget); used only for annealing", {
      minimum: 1,
      maximum: 50000000,
    }),
    gamma: num(0.99, "Discount factor", { minimum: 0, maximum: 1 }),
    gaeLambda: num(0.95, "GAE lambda", { minimum: 0, maximum: 1 }),
    numMinibatches: int(4, "Minibatches per epoch", { minimum: 1, maximum: 4096 }),
    updateEpochs: int(4, "Epochs over each rollout", { minimum: 1, maximum: 1000 }),
    normAdv: bool(true, "Normalise advantages per minibatch"),
    clipCoef: num(0.2, "Surrogate clipping coefficient", { minimum: 0, maximum: 10 }),
    clipVloss: bool(true, "Clip the value loss around the old values, as the policy is clipped"),
    entCoef: num(0.01, "Entropy bonus coefficient", { minimum: -10, maximum: 10 }),
    vfCoef: num(0.5, "Value loss coefficient", { minimum: 0, maximum: 1000 }),
    maxGradNorm: num(0.5, "Global gradient-norm clipping threshold", { exclusiveMinimum: 0, maximum: 1e6 }),
    targetKl: Type.Optional(
      NullableNumber({
        minimum: 0,
        maximum: 100,
        default: null,
        description: "Stop the update's epochs early once the approximate KL exceeds this (null: never)",
      }),
    ),
    hiddenSizes: hiddenSizes("Hidden layer sizes of both the actor and the critic (tanh; network mlp)"),
    ...networkConfigFields,
    adamEps: num(1e-5, "Adam epsilon (CleanRL: 1e-5)", { exclusiveMinimum: 0, maximum: 1 }),
    bootstrapTruncated: bool(true, "Bootstrap from V(final obs) at time-limit truncation (false: treat as terminal, as CleanRL)"),
  },
  { additionalProperties: false },
);
/** A resolved config: every field present (defaults filled by the schema). */
export type PPOConfig = Required<Static<typeof ppoConfigSchema>>;

/** Derived values: never set by the user. */
export interface PPOComputed {
  /** Env copies, from the env info (the run loop builds its vector env from config.numEnvs). */
  numEnvs: number;
  /** Samples per rollout: numEnvs x numSteps. */
  batchSize: number;
  minibatchSize: number;
  /** Updates in totalSteps: the annealing horizon. */
  numIterations: number;
}

export function ppoComputed(config: PPOConfig, numEnvs: number): PPOComputed {
  const batchSize = numEnvs * config.numSteps;
  return {
    numEnvs,
    batchSize,
    minibatchSize: Math.max(1, Math.floor(batchSize / config.numMinibatches)),
    numIterations: Math.max(1, Math.floor(config.totalSteps / batchSize)),
  };
}

/**
 * CleanRL's schedule, lr x (1 - (iteration - 1) / numIterations), over the
 * training budget. Past the horizon (continued learning: extinction probes,
 * live interventions after the budget) the configured rate applies again,
 * constant: a new phase of learning starts at the rate training started with,
 * instead of learning nothing at an annealed rate of 0 (docs/agents.md).
 */
export function annealedLearningRate(config: PPOConfig, computed: PPOComputed, iteration: number): number {
  if (!config.annealLr || iteration > computed.numIterations) return config.learningRate;
  return config.learningRate * (1 - (iteration - 1) / computed.numIterations);
}

// ---------------------------------------------------------------- maths (pure, tested against reference loops)

/**
 * The reward a learner stores for one step: at a truncation (not a
 * termination) the rest of the episode is estimated as gamma * V(final obs).
 */
export function bootstrappedReward(reward: number, terminated: boolean, truncated: boolean, finalValue: number, gamma: number): number {
  return truncated && !terminated ? reward + gamma * finalValue : reward;
}

/**
 * Generalised advantage estimation over a time-major rollout ([t * numEnvs + i]).
 * dones[t, i] = 1 when step t ended its episode (its reward already carries any
 * truncation bootstrap); nextValues = V(obs after the last step).
 */
export function computeGAE(r: {
  rewards: ArrayLike<number>;
  values: ArrayLike<number>;
  dones: ArrayLike<number>;
  nextValues: ArrayLike<number>;
  numSteps: number;
  numEnvs: number;
  gamma: number;
  gaeLambda: number;
}): { advantages: Float32Array; returns: Float32Array } {
  const { numSteps: T, numEnvs: N, gamma, gaeLambda } = r;
  const advantages = new Float32Array(T * N);
  const returns = new Float32Array(T * N);
  for (let i = 0; i < N; i++) {
    let lastGae = 0;
    for (let t = T - 1; t >= 0; t--) {
      const k = t * N + i;
      const nextNonTerminal = 1 - r.dones[k]!;
      const nextValue = t === T - 1 ? r.nextValues[i]! : r.values[k + N]!;
      const delta = r.rewards[k]! + gamma * nextValue * nextNonTerminal - r.values[k]!;
      lastGae = delta + gamma * gaeLambda * nextNonTerminal * lastGae;
      advantages[k] = lastGae;
      returns[k] = lastGae + r.values[k]!;
    }
  }
  return { advantages, returns };
}

export interface PPOLossCoefs {
  clipCoef: number;
  clipVloss: boolean;
  entCoef: number;
  vfCoef: number;
}

/** PPO's losses as tfjs tensors (CleanRL's formulas); call inside tf.tidy / variableGrads. */
export function ppoLoss(
  t: {
    newLogp: tf.Tensor1D;
    oldLogp: tf.Tensor1D;
    advantages: tf.Tensor1D;
    entropy: tf.Tensor1D;
    newValue: tf.Tensor1D;
    oldValue: tf.Tensor1D;
    returns: tf.Tensor1D;
  },
  c: PPOLossCoefs,
): { loss: tf.Scalar; policyLoss: tf.Scalar; valueLoss: tf.Scalar; entropy: tf.Scalar; logratio: tf.Tensor1D; ratio: tf.Tensor1D } {
  const logratio = tf.sub(t.newLogp, t.oldLogp) as tf.Tensor1D;
  const ratio = tf.exp(logratio) as tf.Tensor1D;
  const negAdv = tf.neg(t.advantages);
  const pg1 = tf.mul(negAdv, ratio);
  const pg2 = tf.mul(negAdv, tf.clipByValue(ratio, 1 - c.clipCoef, 1 + c.clipCoef));
  const policyLoss = tf.mean(tf.maximum(pg1, pg2)) as tf.Scalar;
  const unclipped = tf.squaredDifference(t.newValue, t.returns);
  let valueLoss: tf.Scalar;
  if (c.clipVloss) {
    const vClipped = tf.add(t.oldValue, tf.clipByValue(tf.sub(t.newValue, t.oldValue), -c.clipCoef, c.clipCoef));
    const clipped = tf.squaredDifference(vClipped, t.returns);
    valueLoss = tf.mul(0.5, tf.mean(tf.maximum(unclipped, clipped))) as tf.Scalar;
  } else {
    valueLoss = tf.mul(0.5, tf.mean(unclipped)) as tf.Scalar;
  }
  const entropy = tf.mean(t.entropy) as tf.Scalar;
  const loss = tf.add(tf.sub(policyLoss, tf.mul(c.entCoef, entropy)), tf.mul(c.vfCoef, valueLoss)) as tf.Scalar;
  return { loss, policyLoss, valueLoss, entropy, logratio, ratio };
}

/** Plain-JS reference of ppoLoss for tests (one loop, no tensors). */
export function ppoLossJS(
  s: {
    newLogp: number[];
    oldLogp: number[];
    advantages: number[];
    entropy: number[];
    newValue: number[];
    oldValue: number[];
    returns: number[];
  },
  c: PPOLossCoefs,
): { loss: number; policyLoss: number; valueLoss: number; entropy: number } {
  const n = s.newLogp.length;
  let pg = 0;
  let v = 0;
  let ent = 0;
  for (let i = 0; i < n; i++) {
    const ratio = Math.exp(s.newLogp[i]! - s.oldLogp[i]!);
    const clippedRatio = Math.min(Math.max(ratio, 1 - c.clipCoef), 1 + c.clipCoef);
    pg += Math.max(-s.advantages[i]! * ratio, -s.advantages[i]! * clippedRatio);
    const un = (s.newValue[i]! - s.returns[i]!) ** 2;
    const vc = s.oldValue[i]! + Math.min(Math.max(s.newValue[i]! - s.oldValue[i]!, -c.clipCoef), c.clipCoef);
    v += c.clipVloss ? Math.max(un, (vc - s.returns[i]!) ** 2) : un;
    ent += s.entropy[i]!;
  }
  const policyLoss = pg / n;
  const valueLoss = (0.5 * v) / n;
  const entropy = ent / n;
  return { loss: policyLoss - c.entCoef * entropy + c.vfCoef * valueLoss, policyLoss, valueLoss, entropy };
}

/** One minibatch as the loss sees it: network outputs and rollout data, row j of m. */
export interface PPOMinibatch {
  /** m x nActions policy logits. */
  logits: Float32Array;
  /** m values V(s). */
  values: Float32Array;
  actions: ArrayLike<number>;
  oldLogp: ArrayLike<number>;
  /** As used in the loss (normalised when normAdv). */
  advantages: ArrayLike<number>;
  returns: ArrayLike<number>;
  oldValues: ArrayLike<number>;
  m: number;
  nActions: number;
}

/** Where ppoLossGrad writes: gradients with respect to the outputs, and per-sample figures. */
export interface PPOLossGradOut {
  /** m x nActions: d loss / d logits. */
  dLogits: Float32Array;
  /** m: d loss / d V(s). */
  dValues: Float32Array;
  logratio: Float32Array;
  ratio: Float32Array;
  /** m: each sample's coefficient on grad log pi(a|s) in the loss's negative gradient (0 where the clip stops it): the ledger's unit. */
  pgCoef: Float32Array;
}

/**
 * ppoLoss and its gradient with respect to the networks' outputs (logits and
 * values), written out by hand in one pass over plain arrays: what
 * tf.variableGrads derives through ppoLoss, log-softmax and the entropy
 * (test: equal to autodiff). tf.maximum passes gradient to its first argument
 * on ties and clipByValue inside its closed range; so does this.
 */
export function ppoLossGrad(
  b: PPOMinibatch,
  c: PPOLossCoefs,
  out: PPOLossGradOut,
): { loss: number; policyLoss: number; valueLoss: number; entropy: number } {
  const { m, nActions: A } = b;
  const inv = 1 / m;
  let pg = 0;
  let vl = 0;
  let ent = 0;
  for (let j = 0; j < m; j++) {
    const o = j * A;
    // log-softmax and entropy of the row
    const lse = rowLogSumExp(b.logits, o, A);
    const h = rowEntropy(b.logits, o, A, lse);
    ent += h;
    // the clipped surrogate: max(-A r, -A clip(r)); d/d log pi(a|s) = -A r where the chosen term passes gradient
    const act = b.actions[j]!;
    const adv = b.advantages[j]!;
    const logratio = b.logits[o + act]! - lse - b.oldLogp[j]!;
    const ratio = Math.exp(logratio);
    const lo = 1 - c.clipCoef;
    const hi = 1 + c.clipCoef;
    const clipped = Math.min(Math.max(ratio, lo), hi);
    const pg1 = -adv * ratio;
    const pg2 = -adv * clipped;
    const coef = pg1 >= pg2 || (ratio >= lo && ratio <= hi) ? adv * ratio : 0;
    pg += Math.max(pg1, pg2);
    out.logratio[j] = logratio;
    out.ratio[j] = ratio;
    out.pgCoef[j] = coef * inv;
    // d loss / d logits: policy term through log pi(a|s), entropy bonus through every logit
    const gLogp = -coef * inv;
    for (let a = 0; a < A; a++) {
      const lp = b.logits[o + a]! - lse;
      const p = Math.exp(lp);
      out.dLogits[o + a] = gLogp * ((a === act ? 1 : 0) - p) + c.entCoef * inv * p * (lp + h);
    }
    // the value loss, 0.5 mean(max(unclipped, clipped)) or 0.5 mean(unclipped)
    const v = b.values[j]!;
    const ret = b.returns[j]!;
    const un = (v - ret) ** 2;
    let dv = v - ret;
    if (c.clipVloss) {
      const d = v - b.oldValues[j]!;
      const dc = Math.min(Math.max(d, -c.clipCoef), c.clipCoef);
      const vc = b.oldValues[j]! + dc;
      const cl = (vc - ret) ** 2;
      vl += Math.max(un, cl);
      if (un < cl) dv = d >= -c.clipCoef && d <= c.clipCoef ? vc - ret : 0;
    } else {
      vl += un;
    }
    out.dValues[j] = c.vfCoef * inv * dv;
  }
  const policyLoss = pg * inv;
  const valueLoss = 0.5 * vl * inv;
  const entropy = ent * inv;
  return { loss: policyLoss - c.entCoef * entropy + c.vfCoef * valueLoss, policyLoss, valueLoss, entropy };
}

/**
 * Whether the clipped surrogate passes gradient for a sample: min(r A, clip(r) A)
 * picks the unclipped term (ratio inside the clip range, or outside it on the
 * side where the unclipped term is smaller). The ledger counts only these samples.
 */
export function clipPassesGradient(ratio: number, advantage: number, clipCoef: number): boolean {
  return advantage >= 0 ? ratio <= 1 + clipCoef : ratio >= 1 - clipCoef;
}

/** 1 - Var(returns - values) / Var(returns); NaN when the returns do not vary (as CleanRL). */
export function explainedVariance(values: ArrayLike<number>, returns: ArrayLike<number>): number {
  const n = returns.length;
  let my = 0;
  let md = 0;
  for (let i = 0; i < n; i++) {
    my += returns[i]!;
    md += returns[i]! - values[i]!;
  }
  my /= n;
  md /= n;
  let vy = 0;
  let vd = 0;
  for (let i = 0; i < n; i++) {
    vy += (returns[i]! - my) ** 2;
    vd += (returns[i]! - values[i]! - md) ** 2;
  }
  return vy === 0 ? NaN : 1 - vd / vy;
}

// ---------------------------------------------------------------- the agent

export class PPOAgent implements Agent {
  readonly name = "ppo";
  readonly needs = { stateKeys: false, simulator: false };
  readonly computed: PPOComputed;
  /** The policy and value networks (network "mlp": two MLPs; "cnn": one convolutional torso with two heads). */
  readonly nets: ActorCritic;
  readonly optimizer: Adam;
  /** Sampling (act) and shuffling (learn) draw from separate streams, so evaluation never changes training. */
  readonly actRng: Rng;
  readonly learnRng: Rng;
  readonly ledger = new Ledger();
  envSteps = 0;
  updates = 0;

  private readonly obsSize: number;
  private readonly nActions: number;
  // rollout storage, time-major [t * numEnvs + i]
  private step = 0;
  private readonly obs: Float32Array;
  private readonly actions: Int32Array;
  private readonly logProbs: Float32Array;
  private readonly values: Float32Array;
  private readonly rewards: Float32Array;
  private readonly dones: Uint8Array;
  private readonly stateKeys: Int32Array;
  /** Observations after the latest step, and whether each copy's episode ended there. */
  private readonly lastNextObs: Float32Array;
  private readonly lastDone: Uint8Array;
  private haveLast = false;
  private scratch = new Map<number, { logits: Float32Array; values: Float32Array }>();
  /** The weights and Adam's moments as flat arrays during an update (written back at its end). */
  private adam: FlatAdam | null = null;
  /** Cumulative time inside learn() by phase, and the multiply-add FLOPs done (for the bench). */
  readonly timing = { forwardMs: 0, backwardMs: 0, optimiserMs: 0, flops: 0 };

  constructor(
    readonly env: AgentEnvInfo,
    readonly config: PPOConfig,
    seed: number,
  ) {
    this.obsSize = env.obsSize;
    this.nActions = env.nActions;
    this.computed = ppoComputed(config, env.numEnvs);
    const initRng = new Rng(deriveSeed(seed, 1));
    this.actRng = new Rng(deriveSeed(seed, 2));
    this.learnRng = new Rng(deriveSeed(seed, 3));
    this.nets = buildActorCritic(env, config, initRng);
    this.optimizer = new Adam(this.nets.variables, { beta1: 0.9, beta2: 0.999, eps: config.adamEps });
    const B = this.computed.batchSize;
    this.obs = new Float32Array(B * env.obsSize);
    this.actions = new Int32Array(B);
    this.logProbs = new Float32Array(B);
    this.values = new Float32Array(B);
    this.rewards = new Float32Array(B);
    this.dones = new Uint8Array(B);
    this.stateKeys = new Int32Array(B);
    this.lastNextObs = new Float32Array(env.numEnvs * env.obsSize);
    this.lastDone = new Uint8Array(env.numEnvs);
  }

  /** The actor MLP (network "mlp"). */
  get actor(): MLP {
    return this.mlp("actor");
  }

  /** The critic MLP (network "mlp"). */
  get critic(): MLP {
    return this.mlp("critic");
  }

  private mlp(which: "actor" | "critic"): MLP {
    const net = (this.nets as Partial<Record<"actor" | "critic", MLP>>)[which];
    if (!net) throw new Error(`ppo: network "${this.config.network}" has no ${which} MLP`);
    return net;
  }

  /** The policy network's layers, recorded and edited (agents/shared/activations.ts). */
  inspect(): Inspectable {
    return this.nets.inspectable();
  }

  /** Edits in force for act() and actionProbs() (an empty list removes them); learning never sees them. */
  setEdits(edits: readonly ActivationEdit[]): void {
    this.nets.setEdits(edits);
  }

  private buffers(batch: number): { logits: Float32Array; values: Float32Array } {
    let b = this.scratch.get(batch);
    if (!b) this.scratch.set(batch, (b = { logits: new Float32Array(batch * this.nActions), values: new Float32Array(batch) }));
    return b;
  }

  act(obs: Float32Array, ctx: ActContext): ActResult {
    const batch = obs.length / this.obsSize;
    const { logits, values } = this.buffers(batch);
    this.nets.act(obs, batch, logits, values);
    const logp = logSoftmax(logits, batch, this.nActions, logits);
    const actions = new Int32Array(batch);
    const logProbs = new Float32Array(batch);
    for (let s = 0; s < batch; s++) {
      const a = ctx.explore ? sampleRowFromLogProbs(logp, s, this.nActions, this.actRng) : argmaxRow(logp, s, this.nActions);
      actions[s] = a;
      logProbs[s] = logp[s * this.nActions + a]!;
    }
    return { actions, logProbs, values: Float32Array.from(values) };
  }

  /** pi(a|s) for each row: the softmax policy (greedy acting takes its argmax). */
  actionProbs(obs: Float32Array, batch: number): Float32Array {
    return softmax(this.nets.policyLogits(obs, batch), batch, this.nActions);
  }

  /** The critic's value of the state the route leads to (core.ts routeEnd). */
  rateRoute(route: Route): RouteRating {
    return { predictor: "critic", value: this.valueOf(routeEnd(route), 0) };
  }

  private valueOf(obs: Float32Array, row: number): number {
    const S = this.obsSize;
    return this.nets.valuesOf(obs.subarray(row * S, (row + 1) * S), 1)[0]!;
  }

  // rollout

  observe(tr: Transition): void {
    const { numEnvs: N } = this.computed;
    const S = this.obsSize;
    const { gamma } = this.config;
    if (tr.rewards.length !== N) throw new RangeError(`ppo: transition has ${tr.rewards.length} env copies, the agent was built for ${N}`);
    if (this.step >= this.config.numSteps) throw new Error("ppo: observe() on a full rollout; call learn() when readyToLearn()");
    const t = this.step;
    // a gap in the stream: the cut episode ends at the previous step, bootstrapped
    if (this.haveLast && t > 0) {
      for (let i = 0; i < N; i++) {
        if (this.lastDone[i] || rowsEqual(tr.obs, this.lastNextObs, i, S)) continue;
        const k = (t - 1) * N + i;
        this.rewards[k]! += gamma * this.valueOf(this.lastNextObs, i);
        this.dones[k] = 1;
      }
    }
    this.obs.set(tr.obs, t * N * S);
    let logProbs: Float32Array | undefined = tr.act.logProbs;
    let values: Float32Array | undefined = tr.act.values;
    if (!logProbs || !values) ({ logProbs, values } = this.evaluateActions(tr.obs, tr.act.actions));
    for (let i = 0; i < N; i++) {
      const k = t * N + i;
      const terminated = tr.terminated[i] === 1;
      const truncated = tr.truncated[i] === 1;
      const finalValue = truncated && !terminated && this.config.bootstrapTruncated ? this.valueOf(tr.finalObs, i) : 0;
      this.actions[k] = tr.act.actions[i]!;
      this.logProbs[k] = logProbs[i]!;
      this.values[k] = values[i]!;
      this.rewards[k] = bootstrappedReward(tr.rewards[i]!, terminated, truncated, finalValue, gamma);
      this.dones[k] = terminated || truncated ? 1 : 0;
      this.stateKeys[k] = tr.stateKeys[i]!;
      this.lastDone[i] = this.dones[k]!;
    }
    this.lastNextObs.set(tr.nextObs);
    this.haveLast = true;
    this.step++;
    this.envSteps += N;
  }

  /** log pi(a|s) and V(s) when the transition's act result lacks them. */
  private evaluateActions(obs: Float32Array, actions: Int32Array): { logProbs: Float32Array; values: Float32Array } {
    const batch = actions.length;
    const logp = logSoftmax(this.nets.policyLogits(obs, batch), batch, this.nActions);
    return {
      logProbs: Float32Array.from(actions, (a, s) => logp[s * this.nActions + a]!),
      values: this.nets.valuesOf(obs, batch),
    };
  }

  readyToLearn(): boolean {
    return this.step >= this.config.numSteps;
  }

  /** Drops the rollout collected so far: the next update learns only from transitions observed after this call. */
  resetRollout(): void {
    this.step = 0;
    this.haveLast = false;
    this.lastDone.fill(0);
  }

  // GAE

  /** Advantages and returns of the rollout collected so far (no side effects; learn() uses it). */
  rolloutTargets(): { advantages: Float32Array; returns: Float32Array; steps: number } {
    const N = this.computed.numEnvs;
    const T = this.step;
    const nextValues = this.nets.valuesOf(this.lastNextObs, N);
    const { advantages, returns } = computeGAE({
      rewards: this.rewards.subarray(0, T * N),
      values: this.values.subarray(0, T * N),
      dones: this.dones.subarray(0, T * N),
      nextValues,
      numSteps: T,
      numEnvs: N,
      gamma: this.config.gamma,
      gaeLambda: this.config.gaeLambda,
    });
    return { advantages, returns, steps: T };
  }

  // update

  private flatAdam(size: number): FlatAdam {
    if (this.adam?.size !== size) this.adam = new FlatAdam(size);
    return this.adam;
  }

  /**
   * A reference algorithm, kept whole to read top to bottom beside CleanRL's
   * ppo.py: GAE over the rollout, then epochs of shuffled minibatches (the
   * clipped surrogate, the clipped value loss, the entropy bonus, one Adam
   * step with the global norm clip), early stop on approx_kl, the ledger and
   * the metrics.
   */
  learn(): UpdateStats {
    if (this.step === 0) throw new Error("ppo: learn() with an empty rollout");
    const c = this.config;
    const S = this.obsSize;
    const A = this.nActions;
    const { advantages, returns, steps } = this.rolloutTargets();
    const B = steps * this.computed.numEnvs;
    const M = Math.min(this.computed.minibatchSize, B);
    const iteration = this.updates + 1;
    const lr = annealedLearningRate(c, this.computed, iteration);

    // the weights and Adam's moments as flat arrays for the whole update (written back at its end)
    const fast = this.nets.trainer(M);
    const params = this.nets.variables;
    const adam = this.flatAdam(fast.numParams).load(params, this.optimizer);
    const grads = adam.grads;
    const mbObs = new Float32Array(M * S);
    const flopsBefore = fast.flops;
    const mbActions = new Int32Array(M);
    const mbOldLogp = new Float32Array(M);
    const mbAdv = new Float32Array(M);
    const mbRet = new Float32Array(M);
    const mbOldV = new Float32Array(M);
    const g: PPOLossGradOut = {
      dLogits: new Float32Array(M * A),
      dValues: new Float32Array(M),
      logratio: new Float32Array(M),
      ratio: new Float32Array(M),
      pgCoef: new Float32Array(M),
    };
    const ledgerWeights = new Float64Array(B);
    const sums = { policyLoss: 0, valueLoss: 0, entropy: 0, approxKl: 0, oldApproxKl: 0, clipfrac: 0, minibatches: 0 };
    const perm = new Int32Array(B);
    const t = this.timing;

    for (let epoch = 0; epoch < c.updateEpochs; epoch++) {
      permutation(B, this.learnRng, perm);
      let lastApproxKl = 0;
      for (let start = 0; start < B; start += M) {
        const idx = perm.subarray(start, Math.min(start + M, B));
        const m = idx.length;
        const t0 = performance.now();
        gatherRows(this.obs, S, idx, mbObs);
        for (let j = 0; j < m; j++) {
          const b = idx[j]!;
          mbActions[j] = this.actions[b]!;
          mbOldLogp[j] = this.logProbs[b]!;
          mbAdv[j] = advantages[b]!;
          mbRet[j] = returns[b]!;
          mbOldV[j] = this.values[b]!;
        }
        if (c.normAdv) {
          const { mean, std } = meanStd(mbAdv, 0, m);
          for (let j = 0; j < m; j++) mbAdv[j] = (mbAdv[j]! - mean) / (std + 1e-8);
        }

        // forward, loss, backward, Adam
        fast.setParams(adam.params);
        const { logits, values } = fast.forward(mbObs, m);
        const l = ppoLossGrad(
          { logits, values, actions: mbActions, oldLogp: mbOldLogp, advantages: mbAdv, returns: mbRet, oldValues: mbOldV, m, nActions: A },
          c,
          g,
        );
        const t1 = performance.now();
        fast.backward(g.dLogits, g.dValues, m, grads);
        const t2 = performance.now();
        adam.step(lr, this.optimizer.opts, c.maxGradNorm);
        const t3 = performance.now();
        t.forwardMs += t1 - t0;
        t.backwardMs += t2 - t1;
        t.optimiserMs += t3 - t2;

        let kl = 0;
        let oldKl = 0;
        let clipped = 0;
        for (let j = 0; j < m; j++) {
          const logratio = g.logratio[j]!;
          const ratio = g.ratio[j]!;
          oldKl += -logratio;
          kl += ratio - 1 - logratio;
          if (Math.abs(ratio - 1) > c.clipCoef) clipped++;
          // the sample's coefficient on grad log pi in this minibatch's loss (0 where the clip stops it)
          ledgerWeights[idx[j]!] += g.pgCoef[j]!;
        }
        lastApproxKl = kl / m;
        sums.policyLoss += l.policyLoss;
        sums.valueLoss += l.valueLoss;
        sums.entropy += l.entropy;
        sums.approxKl += kl / m;
        sums.oldApproxKl += oldKl / m;
        sums.clipfrac += clipped / m;
        sums.minibatches++;
      }
      if (c.targetKl !== null && lastApproxKl > c.targetKl) break;
    }

    t.flops += fast.flops - flopsBefore;
    adam.store(params, this.optimizer);
    this.nets.sync();
    const ledgerBuilder = new LedgerBuilder(A);
    ledgerBuilder.addBatch(this.stateKeys, this.actions, ledgerWeights, lr, B);
    const ledger = ledgerBuilder.build();
    this.ledger.record(ledger);
    this.updates = iteration;
    this.step = 0;
    const n = sums.minibatches;
    return {
      update: iteration,
      envSteps: this.envSteps,
      metrics: {
        "losses/policy_loss": sums.policyLoss / n,
        "losses/value_loss": sums.valueLoss / n,
        "losses/entropy": sums.entropy / n,
        "losses/approx_kl": sums.approxKl / n,
        "losses/old_approx_kl": sums.oldApproxKl / n,
        "losses/clipfrac": sums.clipfrac / n,
        "losses/explained_variance": explainedVariance(this.values.subarray(0, B), returns),
        "charts/learning_rate": lr,
      },
      ledger,
    };
  }

  // save / load

  async save(dir: string): Promise<void> {
    await saveAgentFiles(dir, {
      agent: this.name,
      config: this.config,
      envSteps: this.envSteps,
      updates: this.updates,
      env: this.env,
      rng: { act: this.actRng.getState(), learn: this.learnRng.getState() },
      extra: { adamStep: this.optimizer.t },
      tensors: this.namedTensors(),
      ledger: this.ledger.toJSON(),
    });
  }

  /** Every tensor save() writes, under stable names. */
  namedTensors(): Record<string, tf.Variable> {
    return {
      ...this.nets.namedVariables(),
      "adam/m": this.optimizer.m,
      "adam/v": this.optimizer.v,
    };
  }

  static async load(dir: string, env: AgentEnvInfo): Promise<PPOAgent> {
    const files = await loadAgentFiles(dir, "ppo");
    checkEnvCompatible(files.meta.env, env, dir);
    const config = validate<PPOConfig>(ppoConfigSchema, structuredClone(files.meta.config), `config in ${dir}/agent.json`);
    const agent = new PPOAgent(env, config, 0);
    assignVariables(agent.namedTensors(), files.tensors, dir);
    agent.optimizer.t = Number(files.meta.extra.adamStep ?? 0);
    agent.actRng.setState(files.meta.rng.act!);
    agent.learnRng.setState(files.meta.rng.learn!);
    agent.envSteps = files.meta.envSteps;
    agent.updates = files.meta.updates;
    if (files.ledger) Object.assign(agent.ledger, Ledger.fromJSON(files.ledger));
    agent.nets.sync();
    return agent;
  }

  dispose(): void {
    this.nets.dispose();
    this.optimizer.dispose();
  }
}

/** Copies rows idx of a row-major matrix (rows of `size`) into x (m x size). */
export function gatherRows(src: Float32Array, size: number, idx: ArrayLike<number>, x: Float32Array): void {
  for (let j = 0; j < idx.length; j++) x.set(src.subarray(idx[j]! * size, (idx[j]! + 1) * size), j * size);
}

function rowsEqual(a: Float32Array, b: Float32Array, row: number, size: number): boolean {
  const o = row * size;
  for (let j = 0; j < size; j++) if (a[o + j] !== b[o + j]) return false;
  return true;
}

registerAgent<PPOConfig>({
  name: "ppo",
  description: "Proximal Policy Optimization (clipped), CleanRL's ppo.py defaults; bootstraps at truncation",
  kind: "model-free",
  configSchema: ppoConfigSchema,
  create: (env, config, seed) => new PPOAgent(env, config, seed),
  load: (dir, env) => PPOAgent.load(dir, env),
});
