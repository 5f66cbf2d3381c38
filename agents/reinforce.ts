/**
 * REINFORCE (Williams 1992): Monte-Carlo policy gradient with an optional
 * learned value baseline, batched over a vector env. Reads top to bottom:
 *   config -> maths -> networks -> rollout (whole episodes) -> returns -> update.
 *
 * Episode collection: an update uses whole episodes. Each env copy fills its
 * own episode; finished episodes are queued, and once at least
 * `episodesPerUpdate` are queued the agent is ready and learns from all of
 * them. Episodes still running at that moment are kept and finish in the
 * next batch: their first steps were sampled by the previous policy (at most
 * one update old), the price of never resetting the run loop's envs.
 *
 * Update: the weights G - V(s) are computed with the baseline as it was, then
 * one policy gradient step (the textbook algorithm), then `valueSteps` steps
 * fitting the baseline to the batch's returns (as Spinning Up's VPG does).
 *
 * Time limits: with the baseline on, a truncated episode's return is
 * bootstrapped from V(final obs); without a critic the time limit is treated
 * as the end (nothing to bootstrap from).
 *
 * Why these choices (bench/learning.ts, 300k steps, 3 seeds, BoatRace-v0 and
 * GoalShift-v0): with the baseline fitted by one step per update it lagged
 * the policy, and a stale, optimistic V(final obs) made failing (truncated)
 * episodes look as good as successes: GoalShift policies at 95% success
 * collapsed to 0% within a few updates. Standardising the weights per batch
 * did the same once the policy was good (unit-variance noise once every
 * episode succeeds). Fitting the baseline 10 steps per update and scaling by
 * the running std of the returns (no centring) learned on every seed; a
 * policy lr of 3e-3 learned BoatRace faster but was unstable on GoalShift.
 */
import * as tf from "@tensorflow/tfjs";
import { Rng, deriveSeed } from "../envs/rng.ts";
import { validate } from "../envs/schema.ts";
import type { ActContext, ActResult, Agent, AgentEnvInfo, Transition, UpdateStats } from "./core.ts";
import { Ledger, LedgerBuilder } from "./ledger.ts";
import { Adam, MLP, RunningMoments, argmaxRow, logSoftmax, sampleRow, softmax } from "./networks.ts";
import { assignVariables, checkEnvCompatible, loadAgentFiles, saveAgentFiles } from "./persist.ts";
import { registerAgent } from "./registry.ts";

// ---------------------------------------------------------------- config

export type ReinforceConfig = {
  /** Adam learning rate of the policy (constant). */
  learningRate: number;
  /** Env copies acted on at once; the run loop builds its vector env with this many. */
  numEnvs: number;
  /** Learn once at least this many whole episodes have finished. */
  episodesPerUpdate: number;
  /** Discount factor. */
  gamma: number;
  /** Learn a value baseline V(s) and weight log pi by G - V(s) (false: by G). */
  baseline: boolean;
  /**
   * Divide the policy-gradient weights (G, or G - V) by the running standard
   * deviation of all returns seen so far (reward scaling; nothing is centred).
   */
  normalizeReturns: boolean;
  /** Entropy bonus coefficient. */
  entCoef: number;
  /** Adam learning rate of the value baseline. */
  valueLearningRate: number;
  /** Gradient steps fitting the baseline to each batch's returns (after the policy step). */
  valueSteps: number;
  /** Global gradient-norm clipping threshold (null: none). */
  maxGradNorm: number | null;
  /** Hidden layer sizes of the policy and the baseline (tanh). */
  hiddenSizes: number[];
  /** Adam epsilon. */
  adamEps: number;
  /** Bootstrap truncated returns from V(final obs) (baseline only). */
  bootstrapTruncated: boolean;
};

const num = (d: number, description: string, extra: object = {}) => ({ type: "number", default: d, description, ...extra });
const int = (d: number, description: string, extra: object = {}) => ({ type: "integer", default: d, description, ...extra });
const bool = (d: boolean, description: string) => ({ type: "boolean", default: d, description });

/** JSON Schema of ReinforceConfig; ajv fills the defaults. */
export const reinforceConfigSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    learningRate: num(1e-3, "Adam learning rate of the policy (constant)", { exclusiveMinimum: 0 }),
    numEnvs: int(8, "Env copies acted on at once", { minimum: 1, maximum: 1024 }),
    episodesPerUpdate: int(8, "Learn once at least this many whole episodes have finished", { minimum: 1 }),
    gamma: num(0.99, "Discount factor", { minimum: 0, maximum: 1 }),
    baseline: bool(true, "Learn a value baseline V(s); weight log pi by G - V(s) instead of G"),
    normalizeReturns: bool(true, "Divide the policy-gradient weights (G or G - V) by the running std of the returns"),
    entCoef: num(0.01, "Entropy bonus coefficient"),
    valueLearningRate: num(1e-3, "Adam learning rate of the value baseline", { exclusiveMinimum: 0 }),
    valueSteps: int(10, "Gradient steps fitting the baseline to each batch's returns", { minimum: 1 }),
    maxGradNorm: { type: ["number", "null"], default: 0.5, description: "Global gradient-norm clipping threshold (null: none)" },
    hiddenSizes: {
      type: "array",
      items: { type: "integer", minimum: 1, maximum: 4096 },
      minItems: 1,
      maxItems: 8,
      default: [64, 64],
      description: "Hidden layer sizes of the policy and the baseline (tanh)",
    },
    adamEps: num(1e-5, "Adam epsilon", { exclusiveMinimum: 0 }),
    bootstrapTruncated: bool(true, "Bootstrap truncated returns from V(final obs) (baseline only)"),
  },
} as const;

// ---------------------------------------------------------------- maths (pure, tested against reference loops)

/** Discounted returns G_t = r_t + gamma G_{t+1} of one episode, with G_T = bootstrap. */
export function discountedReturns(rewards: ArrayLike<number>, gamma: number, bootstrap = 0): Float64Array {
  const out = new Float64Array(rewards.length);
  let g = bootstrap;
  for (let t = rewards.length - 1; t >= 0; t--) {
    g = rewards[t]! + gamma * g;
    out[t] = g;
  }
  return out;
}

/** Exact mean KL(old || new) between two batches of categorical log-probabilities (rows of n). */
export function meanKL(oldLogp: Float32Array, newLogp: Float32Array, batch: number, n: number): number {
  let kl = 0;
  for (let s = 0; s < batch; s++) {
    for (let a = 0; a < n; a++) {
      const lo = oldLogp[s * n + a]!;
      if (lo > -Infinity) kl += Math.exp(lo) * (lo - newLogp[s * n + a]!);
    }
  }
  return kl / batch;
}

// ---------------------------------------------------------------- the agent

/** One episode as collected: observations row by row, actions, rewards, state keys. */
interface Episode {
  obs: Float32Array[];
  actions: number[];
  rewards: number[];
  stateKeys: number[];
  /** The last observation where the episode was truncated (bootstrap), else null. */
  finalObs: Float32Array | null;
}

const newEpisode = (): Episode => ({ obs: [], actions: [], rewards: [], stateKeys: [], finalObs: null });

export class ReinforceAgent implements Agent {
  readonly name = "reinforce";
  readonly needs = { stateKeys: false, simulator: false };
  readonly actor: MLP;
  /** The value baseline; null when config.baseline is false. */
  readonly critic: MLP | null;
  readonly policyOptimizer: Adam;
  /** Null without a baseline. */
  readonly valueOptimizer: Adam | null;
  readonly actRng: Rng;
  readonly ledger = new Ledger();
  /** Every return seen, for normalizeReturns. */
  readonly returnStats = new RunningMoments();
  envSteps = 0;
  updates = 0;

  private readonly obsSize: number;
  private readonly nActions: number;
  private readonly numEnvs: number;
  private open: Episode[];
  private finished: Episode[] = [];
  private readonly lastNextObs: Float32Array;
  private readonly lastDone: Uint8Array;
  private haveLast = false;

  constructor(
    readonly env: AgentEnvInfo,
    readonly config: ReinforceConfig,
    seed: number,
  ) {
    this.obsSize = env.obsSize;
    this.nActions = env.nActions;
    this.numEnvs = env.numEnvs;
    const initRng = new Rng(deriveSeed(seed, 1));
    this.actRng = new Rng(deriveSeed(seed, 2));
    const h = config.hiddenSizes;
    this.actor = new MLP([env.obsSize, ...h, env.nActions], initRng, { hiddenGain: Math.SQRT2, outputGain: 0.01 });
    this.critic = config.baseline ? new MLP([env.obsSize, ...h, 1], initRng, { hiddenGain: Math.SQRT2, outputGain: 1 }) : null;
    const adam = { beta1: 0.9, beta2: 0.999, eps: config.adamEps };
    this.policyOptimizer = new Adam(this.actor.variables, adam);
    this.valueOptimizer = this.critic ? new Adam(this.critic.variables, adam) : null;
    this.open = Array.from({ length: env.numEnvs }, newEpisode);
    this.lastNextObs = new Float32Array(env.numEnvs * env.obsSize);
    this.lastDone = new Uint8Array(env.numEnvs);
  }

  act(obs: Float32Array, ctx: ActContext): ActResult {
    const batch = obs.length / this.obsSize;
    const logp = logSoftmax(this.actor.forwardJS(obs, batch), batch, this.nActions);
    const actions = new Int32Array(batch);
    const logProbs = new Float32Array(batch);
    for (let s = 0; s < batch; s++) {
      const a = ctx.explore ? sampleRow(logp, s, this.nActions, this.actRng) : argmaxRow(logp, s, this.nActions);
      actions[s] = a;
      logProbs[s] = logp[s * this.nActions + a]!;
    }
    return { actions, logProbs };
  }

  /** pi(a|s) for each row: the softmax policy (greedy acting takes its argmax). */
  actionProbs(obs: Float32Array, batch: number): Float32Array {
    return softmax(this.actor.forwardJS(obs, batch), batch, this.nActions);
  }

  // rollout (whole episodes)

  observe(tr: Transition): void {
    const N = this.numEnvs;
    const S = this.obsSize;
    if (tr.rewards.length !== N)
      throw new RangeError(`reinforce: transition has ${tr.rewards.length} env copies, the agent was built for ${N}`);
    for (let i = 0; i < N; i++) {
      const row = tr.obs.subarray(i * S, (i + 1) * S);
      // a gap in the stream (learning paused, env rebuilt): the cut episode ends as if truncated
      if (this.haveLast && !this.lastDone[i] && this.open[i]!.actions.length > 0 && !sameRow(row, this.lastNextObs, i * S)) {
        this.finish(i, this.lastNextObs.slice(i * S, (i + 1) * S));
      }
      const ep = this.open[i]!;
      ep.obs.push(row.slice());
      ep.actions.push(tr.act.actions[i]!);
      ep.rewards.push(tr.rewards[i]!);
      ep.stateKeys.push(tr.stateKeys[i]!);
      const terminated = tr.terminated[i] === 1;
      const truncated = tr.truncated[i] === 1;
      if (terminated || truncated) this.finish(i, truncated && !terminated ? tr.finalObs.slice(i * S, (i + 1) * S) : null);
      this.lastDone[i] = terminated || truncated ? 1 : 0;
    }
    this.lastNextObs.set(tr.nextObs);
    this.haveLast = true;
    this.envSteps += N;
  }

  private finish(i: number, finalObs: Float32Array | null): void {
    const ep = this.open[i]!;
    ep.finalObs = finalObs;
    this.finished.push(ep);
    this.open[i] = newEpisode();
  }

  readyToLearn(): boolean {
    return this.finished.length >= this.config.episodesPerUpdate;
  }

  /** Drops queued and running episodes: the next update learns only from transitions observed after this call. */
  resetRollout(): void {
    this.finished = [];
    this.open = Array.from({ length: this.numEnvs }, newEpisode);
    this.haveLast = false;
    this.lastDone.fill(0);
  }

  // returns

  /** The batch of finished episodes flattened, with returns and policy-gradient weights. */
  batchTargets(): {
    obs: Float32Array;
    actions: Int32Array;
    stateKeys: Int32Array;
    returns: Float32Array;
    values: Float32Array | null;
    weights: Float32Array;
    episodes: number;
  } {
    const c = this.config;
    const S = this.obsSize;
    const episodes = this.finished;
    const B = episodes.reduce((n, e) => n + e.actions.length, 0);
    const obs = new Float32Array(B * S);
    const actions = new Int32Array(B);
    const stateKeys = new Int32Array(B);
    let b = 0;
    for (const e of episodes) {
      for (let t = 0; t < e.actions.length; t++, b++) {
        obs.set(e.obs[t]!, b * S);
        actions[b] = e.actions[t]!;
        stateKeys[b] = e.stateKeys[t]!;
      }
    }
    const values = this.critic ? this.critic.forwardJS(obs, B) : null;
    const returns = new Float32Array(B);
    b = 0;
    for (const e of episodes) {
      const boot = this.critic && c.bootstrapTruncated && e.finalObs ? this.critic.forwardJS(e.finalObs, 1)[0]! : 0;
      returns.set(discountedReturns(e.rewards, c.gamma, boot), b);
      b += e.actions.length;
    }
    const weights = new Float32Array(B);
    for (let k = 0; k < B; k++) weights[k] = returns[k]! - (values ? values[k]! : 0);
    if (c.normalizeReturns) {
      for (let k = 0; k < B; k++) this.returnStats.add(returns[k]!);
      // identical returns so far carry no scale: leave the weights as they are
      const std = this.returnStats.std();
      const scale = std > 1e-6 ? 1 / std : 1;
      for (let k = 0; k < B; k++) weights[k]! *= scale;
    }
    return { obs, actions, stateKeys, returns, values, weights, episodes: episodes.length };
  }

  // update

  learn(): UpdateStats {
    if (this.finished.length === 0) throw new Error("reinforce: learn() without a finished episode");
    const c = this.config;
    const S = this.obsSize;
    const A = this.nActions;
    const lr = c.learningRate;
    const batch = this.batchTargets();
    const B = batch.actions.length;
    const oldLogp = logSoftmax(this.actor.forwardJS(batch.obs, B), B, A);

    const obsT = new Float32Array(S * B);
    const mask = new Float32Array(B * A);
    for (let k = 0; k < B; k++) {
      mask[k * A + batch.actions[k]!] = 1;
      for (let f = 0; f < S; f++) obsT[f * B + k] = batch.obs[k * S + f]!;
    }
    // the policy: one gradient step on the batch
    const x = tf.tensor2d(batch.obs, [B, S]);
    const xT = tf.tensor2d(obsT, [S, B]);
    const report = tf.tidy(() => {
      const m = tf.tensor2d(mask, [B, A]);
      const w = tf.tensor1d(batch.weights);
      let stats: tf.Tensor | null = null;
      const { grads } = tf.variableGrads(() => {
        const logpAll = tf.logSoftmax(this.actor.apply(x, xT));
        const logp = tf.sum(tf.mul(logpAll, m), 1);
        const entropy = tf.mean(tf.neg(tf.sum(tf.mul(tf.exp(logpAll), logpAll), 1))) as tf.Scalar;
        const policyLoss = tf.neg(tf.mean(tf.mul(logp, w))) as tf.Scalar;
        stats = tf.keep(tf.stack([policyLoss, entropy]));
        return tf.sub(policyLoss, tf.mul(c.entCoef, entropy)) as tf.Scalar;
      }, this.actor.variables);
      this.policyOptimizer
        .step(
          this.actor.variables.map((p) => grads[p.name]!),
          lr,
          c.maxGradNorm,
        )
        .dispose();
      return stats!;
    });
    const [policyLoss, entropy] = report.dataSync();
    report.dispose();

    // the baseline: several steps towards the batch's returns, so that it tracks the current policy
    let valueLoss = NaN;
    if (this.critic && this.valueOptimizer) {
      const critic = this.critic;
      const g = tf.tensor1d(batch.returns);
      for (let step = 0; step < c.valueSteps; step++) {
        const loss = tf.tidy(() => {
          const { value, grads } = tf.variableGrads(
            () => tf.mul(0.5, tf.mean(tf.squaredDifference(tf.reshape(critic.apply(x, xT), [-1]), g))) as tf.Scalar,
            critic.variables,
          );
          this.valueOptimizer!.step(
            critic.variables.map((p) => grads[p.name]!),
            c.valueLearningRate,
            c.maxGradNorm,
          ).dispose();
          return value;
        });
        // the loss before fitting: how well the baseline predicted this batch
        if (step === 0) valueLoss = loss.dataSync()[0]!;
        loss.dispose();
      }
      g.dispose();
    }
    x.dispose();
    xT.dispose();

    this.actor.syncJS();
    this.critic?.syncJS();
    const newLogp = logSoftmax(this.actor.forwardJS(batch.obs, B), B, A);
    const ledgerBuilder = new LedgerBuilder(A);
    // the loss is -mean(w log pi): each sample's coefficient on grad log pi is w / B
    ledgerBuilder.addBatch(
      batch.stateKeys,
      batch.actions,
      batch.weights.map((w) => w / B),
      lr,
    );
    const ledger = ledgerBuilder.build();
    this.ledger.record(ledger);
    this.finished = [];
    this.updates++;
    const metrics: Record<string, number> = {
      "losses/policy_loss": policyLoss!,
      "losses/entropy": entropy!,
      "losses/approx_kl": meanKL(oldLogp, newLogp, B, A),
      "charts/learning_rate": lr,
      "charts/batch_episodes": batch.episodes,
      "charts/batch_steps": B,
    };
    // without a baseline there is no value loss to report
    if (this.critic) metrics["losses/value_loss"] = valueLoss;
    return { update: this.updates, envSteps: this.envSteps, metrics, ledger };
  }

  // save / load

  /** Every tensor save() writes, under stable names. */
  namedTensors(): Record<string, tf.Variable> {
    return {
      ...this.actor.namedVariables("actor"),
      ...(this.critic ? this.critic.namedVariables("critic") : {}),
      "adam/policy/m": this.policyOptimizer.m,
      "adam/policy/v": this.policyOptimizer.v,
      ...(this.valueOptimizer ? { "adam/value/m": this.valueOptimizer.m, "adam/value/v": this.valueOptimizer.v } : {}),
    };
  }

  /** Writes the agent; episodes in progress are not saved (a loaded agent starts collecting afresh). */
  async save(dir: string): Promise<void> {
    await saveAgentFiles(dir, {
      agent: this.name,
      config: this.config,
      envSteps: this.envSteps,
      updates: this.updates,
      env: this.env,
      rng: { act: this.actRng.getState() },
      extra: { policySteps: this.policyOptimizer.t, valueSteps: this.valueOptimizer?.t ?? 0, returnStats: this.returnStats.toJSON() },
      tensors: this.namedTensors(),
      ledger: this.ledger.toJSON(),
    });
  }

  static async load(dir: string, env: AgentEnvInfo): Promise<ReinforceAgent> {
    const files = await loadAgentFiles(dir, "reinforce");
    checkEnvCompatible(files.meta.env, env, dir);
    const config = validate<ReinforceConfig>(reinforceConfigSchema, structuredClone(files.meta.config), `config in ${dir}/agent.json`);
    const agent = new ReinforceAgent(env, config, 0);
    assignVariables(agent.namedTensors(), files.tensors, dir);
    agent.policyOptimizer.t = Number(files.meta.extra.policySteps ?? 0);
    if (agent.valueOptimizer) agent.valueOptimizer.t = Number(files.meta.extra.valueSteps ?? 0);
    if (files.meta.extra.returnStats) agent.returnStats.load(files.meta.extra.returnStats as ReturnType<RunningMoments["toJSON"]>);
    agent.actRng.setState(files.meta.rng.act!);
    agent.envSteps = files.meta.envSteps;
    agent.updates = files.meta.updates;
    if (files.ledger) Object.assign(agent.ledger, Ledger.fromJSON(files.ledger));
    agent.actor.syncJS();
    agent.critic?.syncJS();
    return agent;
  }

  dispose(): void {
    this.actor.dispose();
    this.critic?.dispose();
    this.policyOptimizer.dispose();
    this.valueOptimizer?.dispose();
  }
}

function sameRow(row: Float32Array, all: Float32Array, offset: number): boolean {
  for (let j = 0; j < row.length; j++) if (row[j] !== all[offset + j]) return false;
  return true;
}

registerAgent<ReinforceConfig>({
  name: "reinforce",
  description: "REINFORCE: Monte-Carlo policy gradient over whole episodes, with a learned value baseline (switchable)",
  kind: "model-free",
  configSchema: reinforceConfigSchema,
  create: (env, config, seed) => new ReinforceAgent(env, config, seed),
  load: (dir, env) => ReinforceAgent.load(dir, env),
});
