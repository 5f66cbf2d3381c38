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
import { Rng, deriveSeed } from "../../envs/rng.ts";
import { type Static, Type } from "@sinclair/typebox";
import { NullableNumber, validate } from "../../envs/schema.ts";
import { bool, hiddenSizes, int, num } from "../shared/config.ts";
import type { ActContext, ActResult, Agent, AgentEnvInfo, Route, RouteRating, Transition, UpdateStats } from "../core.ts";
import { routeEnd } from "../core.ts";
import { Ledger, LedgerBuilder } from "../shared/ledger.ts";
import { type Matmul, createMatmul } from "../shared/backend.ts";
import {
  Adam,
  FastForward,
  MLP,
  MLPPass,
  RunningMoments,
  argmaxRow,
  logSoftmax,
  sampleRowFromLogProbs,
  softmax,
  rowEntropy,
  rowLogSumExp,
} from "../shared/networks.ts";
import { FlatAdam } from "../shared/flatadam.ts";
import { assignVariables, checkEnvCompatible, loadAgentFiles, saveAgentFiles } from "../shared/persist.ts";
import { registerAgent } from "../registry.ts";
import { type ActivationEdit, type Inspectable, checkEdits } from "../shared/activations.ts";
import type { ConvTrainer } from "../shared/convnet.ts";
import { type PolicyNetwork, buildNetwork, networkConfigFields, networkInspectable, networkTrainer } from "../shared/convpolicy.ts";

// ---------------------------------------------------------------- config

/** REINFORCE's hyperparameters (ajv fills the defaults); ReinforceConfig is derived from this one declaration. */
export const reinforceConfigSchema = Type.Object(
  {
    learningRate: num(1e-3, "Adam learning rate of the policy (constant)", { exclusiveMinimum: 0 }),
    numEnvs: int(8, "Env copies acted on at once; the run loop builds its vector env with this many", { minimum: 1, maximum: 1024 }),
    episodesPerUpdate: int(8, "Learn once at least this many whole episodes have finished", { minimum: 1 }),
    gamma: num(0.99, "Discount factor", { minimum: 0, maximum: 1 }),
    baseline: bool(true, "Learn a value baseline V(s) and weight log pi by G - V(s) (false: by G)"),
    normalizeReturns: bool(
      true,
      "Divide the policy-gradient weights (G, or G - V) by the running standard deviation of all returns seen so far (reward scaling; nothing is centred)",
    ),
    entCoef: num(0.01, "Entropy bonus coefficient"),
    valueLearningRate: num(1e-3, "Adam learning rate of the value baseline", { exclusiveMinimum: 0 }),
    valueSteps: int(10, "Gradient steps fitting the baseline to each batch's returns (after the policy step)", { minimum: 1 }),
    maxGradNorm: Type.Optional(NullableNumber({ default: 0.5, description: "Global gradient-norm clipping threshold (null: none)" })),
    hiddenSizes: hiddenSizes("Hidden layer sizes of the policy and the baseline (tanh; network mlp)"),
    ...networkConfigFields,
    adamEps: num(1e-5, "Adam epsilon", { exclusiveMinimum: 0 }),
    bootstrapTruncated: bool(true, "Bootstrap truncated returns from V(final obs) (baseline only)"),
  },
  { additionalProperties: false },
);
/** A resolved config: every field present (defaults filled by the schema). */
export type ReinforceConfig = Required<Static<typeof reinforceConfigSchema>>;

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

/**
 * REINFORCE's policy loss, -mean(w log pi(a|s)) - entCoef mean(H), and its
 * gradient with respect to the logits, by hand in one pass (what tfjs
 * autodiff derives through log-softmax and the entropy; test: equal).
 */
export function reinforceLossGrad(
  b: { logits: Float32Array; actions: ArrayLike<number>; weights: ArrayLike<number>; m: number; nActions: number },
  entCoef: number,
  dLogits: Float32Array,
): { loss: number; policyLoss: number; entropy: number } {
  const { m, nActions: A } = b;
  const inv = 1 / m;
  let pl = 0;
  let ent = 0;
  for (let j = 0; j < m; j++) {
    const o = j * A;
    // log-softmax and entropy of the row
    const lse = rowLogSumExp(b.logits, o, A);
    const h = rowEntropy(b.logits, o, A, lse);
    const act = b.actions[j]!;
    const w = b.weights[j]!;
    pl -= w * (b.logits[o + act]! - lse);
    ent += h;
    for (let a = 0; a < A; a++) {
      const lp = b.logits[o + a]! - lse;
      const p = Math.exp(lp);
      dLogits[o + a] = -w * inv * ((a === act ? 1 : 0) - p) + entCoef * inv * p * (lp + h);
    }
  }
  const policyLoss = pl * inv;
  const entropy = ent * inv;
  return { loss: policyLoss - entCoef * entropy, policyLoss, entropy };
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
  readonly actor: PolicyNetwork;
  /** The value baseline; null when config.baseline is false. */
  readonly critic: PolicyNetwork | null;
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
  /** The policy's and the baseline's forward on the fast backend (MLPs; forwardJS elsewhere, and for the batched ConvNet). */
  private readonly acting: FastForward | null;
  /** Edits in force for act() and actionProbs() (activations.ts). */
  private edits: readonly ActivationEdit[] = [];
  /** The training fast path's buffers, built at the first update on the current backend. */
  /** The policy's (0) and the baseline's (1) weights and Adam moments as flat arrays during an update. */
  private readonly adam: [FlatAdam | null, FlatAdam | null] = [null, null];
  private fast: {
    backend: string;
    rows: number;
    mm: Matmul;
    actor: MLPPass | ConvTrainer;
    critic: MLPPass | ConvTrainer | null;
  } | null = null;

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
    this.actor = buildNetwork(env, config, env.nActions, 0.01, initRng);
    this.critic = config.baseline ? buildNetwork(env, config, 1, 1, initRng) : null;
    const adam = { beta1: 0.9, beta2: 0.999, eps: config.adamEps };
    this.policyOptimizer = new Adam(this.actor.variables, adam);
    this.valueOptimizer = this.critic ? new Adam(this.critic.variables, adam) : null;
    const mlps = [this.actor, this.critic].filter((n): n is MLP => n instanceof MLP);
    this.acting = this.actor instanceof MLP ? new FastForward(mlps) : null;
    this.open = Array.from({ length: env.numEnvs }, newEpisode);
    this.lastNextObs = new Float32Array(env.numEnvs * env.obsSize);
    this.lastDone = new Uint8Array(env.numEnvs);
  }

  act(obs: Float32Array, ctx: ActContext): ActResult {
    const batch = obs.length / this.obsSize;
    const logits = this.edits.length > 0 ? this.editedLogits(obs, batch) : new Float32Array(batch * this.nActions);
    if (this.edits.length === 0 && !this.acting?.forward(0, obs, batch, logits)) this.actor.forwardJS(obs, batch, logits);
    const logp = logSoftmax(logits, batch, this.nActions, logits);
    const actions = new Int32Array(batch);
    const logProbs = new Float32Array(batch);
    for (let s = 0; s < batch; s++) {
      const a = ctx.explore ? sampleRowFromLogProbs(logp, s, this.nActions, this.actRng) : argmaxRow(logp, s, this.nActions);
      actions[s] = a;
      logProbs[s] = logp[s * this.nActions + a]!;
    }
    return { actions, logProbs };
  }

  /** pi(a|s) for each row: the softmax policy (greedy acting takes its argmax). */
  actionProbs(obs: Float32Array, batch: number): Float32Array {
    const logits = this.edits.length > 0 ? this.editedLogits(obs, batch) : this.actor.forwardJS(obs, batch);
    return softmax(logits, batch, this.nActions);
  }

  /** The policy network's layers, recorded and edited (agents/shared/activations.ts). */
  inspect(): Inspectable {
    return networkInspectable(this.actor);
  }

  /** Edits in force for act() and actionProbs() (an empty list removes them); learning never sees them. */
  setEdits(edits: readonly ActivationEdit[]): void {
    checkEdits(this.inspect().layers(), edits);
    this.edits = [...edits];
  }

  private editedLogits(obs: Float32Array, batch: number): Float32Array {
    return this.inspect().forwardInspect(obs, batch, { edits: this.edits }).logits;
  }

  /** The value baseline's value of the state the route leads to (core.ts routeEnd); null without a baseline. */
  rateRoute(route: Route): RouteRating | null {
    return this.critic ? { predictor: "baseline", value: this.critic.forwardJS(routeEnd(route), 1)[0]! } : null;
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
    const values = this.critic ? this.forwardOf(1, obs, B) : null;
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

  /** Buffers for batches of up to `rows` rows on the current backend (rebuilt when a batch is larger or the backend changed). */
  private fastPath(rows: number): NonNullable<ReinforceAgent["fast"]> {
    const backend = tf.getBackend();
    if (this.fast && this.fast.backend === backend && this.fast.rows >= rows) return this.fast;
    // grow by half again, so that a run's batches settle on one allocation
    const size = Math.max(rows, Math.ceil((this.fast?.rows ?? 0) * 1.5));
    this.disposeFast();
    const mm = createMatmul();
    const actor = networkTrainer(this.actor, mm, size);
    // an MLP baseline reads the policy's input batch: the batch's observations are loaded once
    const critic = this.critic ? networkTrainer(this.critic, mm, size, actor instanceof MLPPass ? actor : undefined) : null;
    this.fast = { backend, rows: size, mm, actor, critic };
    return this.fast;
  }

  private disposeFast(): void {
    if (!this.fast) return;
    const f = this.fast;
    f.actor.dispose();
    f.critic?.dispose();
    this.fast = null;
  }

  /** The actor's (0) or the critic's (1) outputs for a batch: through the fast backend where there is one, else forwardJS. */
  private forwardOf(net: 0 | 1, obs: Float32Array, batch: number): Float32Array {
    const mlp = net === 0 ? this.actor : this.critic!;
    const out = new Float32Array(batch * mlp.outputSize);
    if (!this.acting?.forward(net, obs, batch, out)) mlp.forwardJS(obs, batch, out);
    return out;
  }

  /** A network's weights and its optimiser's moments as flat arrays, for one update (FlatAdam.store writes them back). */
  private flatState(net: 0 | 1, mlp: PolicyNetwork, opt: Adam): FlatAdam {
    const size = mlp.variables.reduce((n, v) => n + v.size, 0);
    if (this.adam[net]?.size !== size) this.adam[net] = new FlatAdam(size);
    return this.adam[net]!.load(mlp.variables, opt);
  }

  learn(): UpdateStats {
    if (this.finished.length === 0) throw new Error("reinforce: learn() without a finished episode");
    const c = this.config;
    const A = this.nActions;
    const lr = c.learningRate;
    const batch = this.batchTargets();
    const B = batch.actions.length;
    const fast = this.fastPath(B);

    // the policy: one gradient step on the batch
    const policy = this.flatState(0, this.actor, this.policyOptimizer);
    fast.actor.setParams(policy.params);
    const dLogits = new Float32Array(B * A);
    const logits = fast.actor.forward(batch.obs, B);
    // log pi before the step, for the KL metric (the logits buffer is rewritten by the next forward)
    const oldLogp = logSoftmax(logits, B, A);
    const pol = reinforceLossGrad({ logits, actions: batch.actions, weights: batch.weights, m: B, nActions: A }, c.entCoef, dLogits);
    fast.actor.backward(dLogits, B, policy.grads);
    policy.step(lr, this.policyOptimizer.opts, c.maxGradNorm);
    policy.store(this.actor.variables, this.policyOptimizer);

    // the baseline: several steps towards the batch's returns, so that it tracks the current policy
    let valueLoss = NaN;
    if (this.critic && this.valueOptimizer && fast.critic) {
      const value = this.flatState(1, this.critic, this.valueOptimizer);
      const dV = new Float32Array(B);
      for (let step = 0; step < c.valueSteps; step++) {
        fast.critic.setParams(value.params);
        // the batch the policy step loaded: its input columns are found once
        const v = fast.critic instanceof MLPPass ? fast.critic.forwardLoaded() : fast.critic.forward(batch.obs, B);
        // 0.5 mean((V - G)^2) and its gradient (V - G) / B
        let loss = 0;
        for (let k = 0; k < B; k++) {
          const d = v[k]! - batch.returns[k]!;
          loss += d * d;
          dV[k] = d / B;
        }
        // the loss before fitting: how well the baseline predicted this batch
        if (step === 0) valueLoss = (0.5 * loss) / B;
        fast.critic.backward(dV, B, value.grads);
        value.step(c.valueLearningRate, this.valueOptimizer.opts, c.maxGradNorm);
      }
      value.store(this.critic.variables, this.valueOptimizer);
    }
    const [policyLoss, entropy] = [pol.policyLoss, pol.entropy];

    this.actor.syncJS();
    this.critic?.syncJS();
    const newLogp = logSoftmax(this.forwardOf(0, batch.obs, B), B, A);
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
    this.disposeFast();
    this.acting?.dispose();
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
