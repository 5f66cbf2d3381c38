/**
 * A neural world model: a small ensemble of MLPs that predict, from an
 * observation and an action, the next observation, the reward and whether
 * the episode terminates; trained on a replay buffer of the agent's own
 * experience; the ensemble's disagreement is its uncertainty.
 *
 * Read top to bottom: config -> observation layout -> replay buffer -> the
 * ensemble (predictions in batches, cached per observation; training on raw
 * buffers, ActionHeadPass forward and backward (the taken action's head only)
 * with modelLossGrad between them, one flat Adam step over every member per
 * gradient step).
 *
 * What it predicts, per observation element (the layout comes from the env):
 *  - gridworld planes that hold exactly one cell (the agent): a categorical
 *    over the plane's cells (softmax), decoded as its argmax;
 *  - every other 0/1 plane (walls, goals, devices, ...): per cell, the
 *    probability that the cell *changes* (a flip), so a layout the model
 *    never saw persists unless the model learned that something changes it;
 *  - continuous features (the time feature of `observeTime` levels): the
 *    change, by least squares;
 *  - reward: least squares (the ensemble's median is the prediction);
 *    termination: a Bernoulli logit (the ensemble's mean probability).
 * The decoded observation is valid by construction (one agent, 0/1 planes).
 *
 * Disagreement of (s, a): the sum over every predicted quantity (each
 * element's probability, the reward, the termination probability) of its
 * variance across members. Members differ by initialisation and by the
 * minibatches they train on (drawn independently), so they agree where the
 * data pins the answer and diverge away from it.
 *
 * What it cannot represent: stochastic dynamics beyond independent per-cell
 * flips (it predicts the most likely next observation: a random goal draw
 * becomes one guessed goal); hidden state that the observation does not show
 * (a tampered reward register with the agent off the device looks like the
 * untampered state); anything about cells the agent never visited, except
 * what the MLP's weights happen to extrapolate, which disagreement flags.
 */
import type { Route } from "../core.ts";
import * as tf from "@tensorflow/tfjs";
import { make, registered } from "../../envs/registry.ts";
import type { Rng } from "../../envs/rng.ts";
import { createMatmul } from "../shared/backend.ts";
import { FlatAdam } from "../shared/flatadam.ts";
import { Adam, FastForward, MLP } from "../shared/networks.ts";
import { observationKey } from "../shared/obskey.ts";
import { concatBytes } from "../shared/persist.ts";
import { ActionHeadPass } from "./headpass.ts";

// ---------------------------------------------------------------- config (its schema: modelconfig.ts)

export { type WorldModelConfig, worldModelConfigSchema } from "./modelconfig.ts";
import type { WorldModelConfig } from "./modelconfig.ts";

// ---------------------------------------------------------------- observation layout

/** A block of observation elements predicted one way. */
export interface ObsPlane {
  name: string;
  offset: number;
  size: number;
  /** exactly one element is 1 (categorical), 0/1 elements (flips), or real values (change). */
  kind: "exclusive" | "binary" | "continuous";
}

/**
 * The layout of an env's observation: gridworld planes from the env's
 * channel list (the agent plane is exclusive), else inferred from a reset
 * observation (one-hot: one exclusive plane; 0/1: binary; else continuous).
 */
export function observationLayout(envId: string, envConfig: Record<string, unknown>, obsSize: number): ObsPlane[] {
  if (!registered().some((r) => r.id === envId)) return [{ name: "obs", offset: 0, size: obsSize, kind: "continuous" }];
  const env = make(envId, envConfig);
  try {
    const inner = ((env as { unwrapped?: unknown }).unwrapped ?? env) as { channels?: readonly string[]; width?: number; height?: number };
    if (Array.isArray(inner.channels) && typeof inner.width === "number" && typeof inner.height === "number") {
      const hw = inner.width * inner.height;
      const planes: ObsPlane[] = inner.channels.map((name, i) => ({
        name,
        offset: i * hw,
        size: hw,
        kind: name === "agent" ? "exclusive" : "binary",
      }));
      const used = inner.channels.length * hw;
      if (used < obsSize) planes.push({ name: "features", offset: used, size: obsSize - used, kind: "continuous" });
      return planes;
    }
    const { obs } = env.reset({ seed: 0 });
    const binary = obs.every((x) => x === 0 || x === 1);
    const sum = obs.reduce((a, b) => a + b, 0);
    return [{ name: "obs", offset: 0, size: obsSize, kind: binary && sum === 1 ? "exclusive" : binary ? "binary" : "continuous" }];
  } finally {
    env.close?.();
  }
}

// ---------------------------------------------------------------- replay buffer

/** A ring of transitions (obs, action, next obs, reward, terminated); 0/1 observations are stored as bytes. */
export class ReplayBuffer {
  size = 0;
  /** Transitions ever added (the ring's write position is added % capacity). */
  added = 0;
  readonly obs: Uint8Array | Float32Array;
  readonly next: Uint8Array | Float32Array;
  readonly action: Int32Array;
  readonly reward: Float32Array;
  readonly terminated: Uint8Array;

  constructor(
    readonly capacity: number,
    readonly obsSize: number,
    readonly bytes: boolean,
  ) {
    this.obs = bytes ? new Uint8Array(capacity * obsSize) : new Float32Array(capacity * obsSize);
    this.next = bytes ? new Uint8Array(capacity * obsSize) : new Float32Array(capacity * obsSize);
    this.action = new Int32Array(capacity);
    this.reward = new Float32Array(capacity);
    this.terminated = new Uint8Array(capacity);
  }

  add(
    obs: Float32Array,
    obsOffset: number,
    action: number,
    next: Float32Array,
    nextOffset: number,
    reward: number,
    terminated: boolean,
  ): void {
    const i = this.added % this.capacity;
    const S = this.obsSize;
    for (let j = 0; j < S; j++) {
      this.obs[i * S + j] = obs[obsOffset + j]!;
      this.next[i * S + j] = next[nextOffset + j]!;
    }
    this.action[i] = action;
    this.reward[i] = reward;
    this.terminated[i] = terminated ? 1 : 0;
    this.added++;
    this.size = Math.min(this.capacity, this.size + 1);
  }

  /** Ring index of the k-th most recent transition (k = 0: the latest). */
  recent(k: number): number {
    return (((this.added - 1 - k) % this.capacity) + this.capacity) % this.capacity;
  }

  /** The stored rows as one byte array (observations, next observations, actions, rewards, flags), for saving. */
  toBinary(): Uint8Array {
    const n = this.size;
    const S = this.obsSize;
    const parts = [
      this.obs.subarray(0, n * S),
      this.next.subarray(0, n * S),
      this.action.subarray(0, n),
      this.reward.subarray(0, n),
      this.terminated.subarray(0, n),
    ];
    return concatBytes(parts);
  }

  /** Restores toBinary()'s bytes; `size` and `added` come from the saved metadata. */
  fromBinary(data: Uint8Array, size: number, added: number): void {
    const S = this.obsSize;
    const bpe = this.bytes ? 1 : 4;
    const want = size * S * bpe * 2 + size * 9;
    if (size > this.capacity || data.byteLength !== want) {
      throw new RangeError(`replay buffer: ${data.byteLength} bytes for ${size} transitions, expected ${want}`);
    }
    let o = 0;
    const take = (n: number) => {
      const copy = data.slice(o, o + n);
      o += n;
      return copy.buffer;
    };
    const obsBytes = size * S * bpe;
    this.obs.set(this.bytes ? new Uint8Array(take(obsBytes)) : new Float32Array(take(obsBytes)));
    this.next.set(this.bytes ? new Uint8Array(take(obsBytes)) : new Float32Array(take(obsBytes)));
    this.action.set(new Int32Array(take(size * 4)));
    this.reward.set(new Float32Array(take(size * 4)));
    this.terminated.set(new Uint8Array(take(size)));
    this.size = size;
    this.added = added;
  }
}

// ---------------------------------------------------------------- the ensemble

/** Rows per batch of predictions. */
const PREDICTION_BATCH = 256;
/** Memory kept for cached predictions (about 4 bytes per predicted value). */
const PREDICTION_CACHE_BYTES = 64 * 2 ** 20;

/** One-step predictions for every action from one observation (row a of `next` is action a). */
export interface ModelPrediction {
  /** Decoded next observations, nActions x obsSize. */
  next: Float32Array;
  /**
   * The ensemble's median reward per action (decoded to the nearest reward
   * atom where the model has them): one member's wild guess about a rarely
   * seen step does not move it, as it would move a mean.
   */
  medianReward: Float64Array;
  /** The ensemble's mean termination probability per action. */
  terminal: Float64Array;
  /** Sum of the ensemble variances of every predicted quantity, per action. */
  disagreement: Float64Array;
}

export interface ModelLosses {
  loss: number;
  obsLoss: number;
  rewardLoss: number;
  terminalLoss: number;
}

export interface ModelAccuracy {
  /** Decoded next observation exactly right, termination right (p > 0.5), reward within 0.05. */
  accuracy: number;
  obsAccuracy: number;
  rewardError: number;
  disagreement: number;
  samples: number;
  /**
   * Transitions predicted wrong: decoded next observation or termination
   * wrong, or the decoded reward not the real one (while rewards decode to
   * experience's few values; otherwise off by 0.05 or more).
   */
  wrong: number;
}

export class WorldModel {
  readonly members: MLP[];
  readonly optimizer: Adam;
  readonly planes: ObsPlane[];
  /** Per element: 0 binary (flip), 1 exclusive (categorical), 2 continuous (change). */
  private readonly kind: Uint8Array;
  private readonly exclusive: ObsPlane[];
  // training: one MLPPass per member, the flat Adam over all of them, the loss's view of the layout
  private fast: { backend: string; rows: number; passes: ActionHeadPass[] } | null = null;
  private adam: FlatAdam | null = null;
  /** What modelLossGrad needs to know about the output: sizes and each element's kind. */
  readonly lossLayout: ModelLossLayout;
  private readonly inSize: number;
  private readonly outSize: number;
  // prediction: the members' outputs for a batch of rows (wasm: XNNPACK through FastForward, else forwardJS)
  private readonly acting: FastForward;
  private x: Float32Array;
  private outs: Float32Array[];
  /** Decoded predictions by observation (observationKey), for the current weights and reward atoms. */
  private readonly cache = new Map<number, ModelPrediction>();
  private readonly cacheLimit: number;
  /** Predictions made and found in the cache since the counters were read (predictionStats). */
  private made = 0;
  private reused = 0;
  private readonly probs: Float64Array;
  private readonly probSq: Float64Array;
  /** Per action, each member's reward (for the median). */
  private readonly memberRewards: Float64Array;
  /** The distinct rewards of the experience (ascending) on steps that went on and on steps that ended; null: no decoding. */
  private atoms: RewardAtoms | null = null;

  constructor(
    readonly obsSize: number,
    readonly nActions: number,
    planes: ObsPlane[],
    readonly config: WorldModelConfig,
    rng: Rng,
  ) {
    this.planes = planes;
    this.kind = new Uint8Array(obsSize);
    for (const p of planes) {
      for (let j = p.offset; j < p.offset + p.size; j++) this.kind[j] = p.kind === "binary" ? 0 : p.kind === "exclusive" ? 1 : 2;
    }
    this.exclusive = planes.filter((p) => p.kind === "exclusive");
    this.lossLayout = { obsSize, nActions, kind: this.kind, exclusive: this.exclusive };
    // one output head per action: the action selects a head instead of being an input, so the
    // network need not learn action-by-cell conjunctions, and one forward pass predicts every action
    this.inSize = obsSize;
    this.outSize = nActions * (obsSize + 2);
    this.members = Array.from(
      { length: config.ensemble },
      () => new MLP([this.inSize, ...config.hiddenSizes, this.outSize], rng, { hiddenGain: Math.SQRT2, outputGain: 1 }),
    );
    this.optimizer = new Adam(
      this.members.flatMap((m) => m.variables),
      { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    );
    this.acting = new FastForward(this.members);
    this.x = new Float32Array(0);
    this.outs = [];
    this.cacheLimit = Math.max(256, Math.floor(PREDICTION_CACHE_BYTES / (4 * nActions * (obsSize + 6))));
    this.probs = new Float64Array(nActions * (obsSize + 2));
    this.probSq = new Float64Array(nActions * (obsSize + 2));
    this.memberRewards = new Float64Array(nActions * config.ensemble);
  }

  /** True when every element is 0/1 (the replay buffer then stores bytes). */
  get binaryObservations(): boolean {
    return this.planes.every((p) => p.kind !== "continuous");
  }

  /**
   * Predicts every action's outcome from row `row` of `obs`. The returned
   * object is shared (kept by the cache until the weights change): read it,
   * do not write it.
   */
  predict(obs: Float32Array, row = 0): ModelPrediction {
    return this.predictRows(obs.subarray(row * this.obsSize, (row + 1) * this.obsSize), 1)[0]!;
  }

  /**
   * Predictions for `rows` observations (row-major), made together: the
   * members' forward passes run on the whole batch of rows not yet predicted
   * under the current weights (observations are keyed by observationKey), and
   * each decoded prediction is kept for the next time that observation comes
   * up (a search's states recur from one decision to the next). Shared
   * objects: read them, do not write them.
   */
  predictRows(obs: Float32Array, rows: number): ModelPrediction[] {
    const S = this.obsSize;
    const out: ModelPrediction[] = new Array(rows);
    const missing: number[] = [];
    const keys: number[] = [];
    for (let r = 0; r < rows; r++) {
      const key = observationKey(obs, r * S, S);
      const hit = this.cache.get(key);
      if (hit) {
        out[r] = hit;
        this.reused++;
      } else {
        missing.push(r);
        keys.push(key);
      }
    }
    for (let from = 0; from < missing.length; from += PREDICTION_BATCH) {
      const n = Math.min(PREDICTION_BATCH, missing.length - from);
      const x = this.forwardRows(obs, missing, from, n);
      if (this.cache.size + n > this.cacheLimit) this.cache.clear();
      for (let i = 0; i < n; i++) {
        const pred = this.decodeRow(i, x, i * S);
        out[missing[from + i]!] = pred;
        this.cache.set(keys[from + i]!, pred);
      }
      this.made += n;
    }
    return out;
  }

  /** Predictions made afresh and found in the cache since the last call (then reset). */
  predictionStats(): { made: number; reused: number } {
    const r = { made: this.made, reused: this.reused };
    this.made = 0;
    this.reused = 0;
    return r;
  }

  /** Every member's output for rows missing[from..from+n) of obs, into this.outs (row i at i x outSize); returns the rows gathered. */
  private forwardRows(obs: Float32Array, missing: number[], from: number, n: number): Float32Array {
    const S = this.obsSize;
    if (this.x.length < n * S) {
      this.x = new Float32Array(PREDICTION_BATCH * S);
      this.outs = this.members.map(() => new Float32Array(PREDICTION_BATCH * this.outSize));
    }
    const x = this.x;
    for (let i = 0; i < n; i++) x.set(obs.subarray(missing[from + i]! * S, (missing[from + i]! + 1) * S), i * S);
    const rows = x.subarray(0, n * S);
    if (!this.acting.forwardEach(rows, n, this.outs)) {
      for (let m = 0; m < this.members.length; m++) this.members[m]!.forwardJS(rows, n, this.outs[m]);
    }
    return x;
  }

  /** Decodes row `i` of the members' outputs (this.outs) for the observation at obs[base..]: a new prediction. */
  private decodeRow(i: number, obs: Float32Array, base: number): ModelPrediction {
    this.sumMembers(i * this.outSize, obs, base);
    return this.decodeSums();
  }

  /** Each member's probabilities (or values) at output offset `at`, summed and squared-summed over members into probs and probSq. */
  private sumMembers(at: number, obs: Float32Array, base: number): void {
    const S = this.obsSize;
    const A = this.nActions;
    const O = S + 2;
    const K = this.members.length;
    const probs = this.probs;
    const sq = this.probSq;
    probs.fill(0);
    sq.fill(0);
    for (let m = 0; m < K; m++) {
      const out = this.outs[m]!;
      for (let a = 0; a < A; a++) {
        const o = at + a * O;
        const p = a * (S + 2);
        for (let j = 0; j < S; j++) {
          const z = out[o + j]!;
          const k = this.kind[j];
          let v: number;
          if (k === 0) {
            const flip = 1 / (1 + Math.exp(-z));
            v = obs[base + j]! > 0.5 ? 1 - flip : flip;
          } else if (k === 2) v = obs[base + j]! + z;
          else continue;
          probs[p + j] += v;
          sq[p + j] += v * v;
        }
        for (const pl of this.exclusive) {
          let max = -Infinity;
          for (let j = pl.offset; j < pl.offset + pl.size; j++) max = Math.max(max, out[o + j]!);
          let sum = 0;
          for (let j = pl.offset; j < pl.offset + pl.size; j++) sum += Math.exp(out[o + j]! - max);
          for (let j = pl.offset; j < pl.offset + pl.size; j++) {
            const v = Math.exp(out[o + j]! - max) / sum;
            probs[p + j] += v;
            sq[p + j] += v * v;
          }
        }
        const r = out[o + S]!;
        this.memberRewards[a * K + m] = r;
        const t = 1 / (1 + Math.exp(-out[o + S + 1]!));
        probs[p + S] += r;
        sq[p + S] += r * r;
        probs[p + S + 1] += t;
        sq[p + S + 1] += t * t;
      }
    }
  }

  /** The prediction from sumMembers' sums: means, disagreement, the median reward, the decoded next observations. */
  private decodeSums(): ModelPrediction {
    const S = this.obsSize;
    const A = this.nActions;
    const K = this.members.length;
    const probs = this.probs;
    const sq = this.probSq;
    const pred: ModelPrediction = {
      next: new Float32Array(A * S),
      medianReward: new Float64Array(A),
      terminal: new Float64Array(A),
      disagreement: new Float64Array(A),
    };
    for (let a = 0; a < A; a++) {
      const p = a * (S + 2);
      let variance = 0;
      for (let j = 0; j < S + 2; j++) {
        const mean = probs[p + j]! / K;
        probs[p + j] = mean;
        variance += Math.max(0, sq[p + j]! / K - mean * mean);
      }
      pred.disagreement[a] = variance;
      // the median member's reward: one member's wild guess about a rarely seen step must not
      // become a reward the planner can loop on (the mean would pass a third of it on)
      pred.terminal[a] = probs[p + S + 1]!;
      const reward = median(this.memberRewards.subarray(a * K, (a + 1) * K));
      // decoded with the termination's likelier outcome, among the rewards experience paired with it
      pred.medianReward[a] = this.atoms ? nearestAtom(pred.terminal[a]! > 0.5 ? this.atoms.ending : this.atoms.ongoing, reward) : reward;
      // decode: flips and changes element by element, the argmax of each exclusive plane
      const n = a * S;
      for (let j = 0; j < S; j++) {
        const k = this.kind[j];
        if (k === 0) pred.next[n + j] = probs[p + j]! > 0.5 ? 1 : 0;
        else if (k === 2) pred.next[n + j] = Math.min(1, Math.max(0, probs[p + j]!));
      }
      for (const pl of this.exclusive) {
        let best = pl.offset;
        for (let j = pl.offset; j < pl.offset + pl.size; j++) {
          pred.next[n + j] = 0;
          if (probs[p + j]! > probs[p + best]!) best = j;
        }
        pred.next[n + best] = 1;
      }
    }
    return pred;
  }

  /** Copies the trained weights into the plain arrays predict() reads (predictions made before are dropped). */
  sync(): void {
    for (const m of this.members) m.syncJS();
    this.cache.clear();
  }

  /**
   * Held-out one-step accuracy on the `count` most recent transitions of the
   * buffer (call before training on them).
   */
  accuracy(buffer: ReplayBuffer, count: number): ModelAccuracy {
    const S = this.obsSize;
    const n = Math.min(count, buffer.size);
    const rows = new Float32Array(n * S);
    for (let k = 0; k < n; k++) rows.set(buffer.obs.subarray(buffer.recent(k) * S, (buffer.recent(k) + 1) * S), k * S);
    const preds = this.predictRows(rows, n);
    let exact = 0;
    let wrong = 0;
    let obsExact = 0;
    let rewardErr = 0;
    let dis = 0;
    for (let k = 0; k < n; k++) {
      const i = buffer.recent(k);
      const a = buffer.action[i]!;
      const p = preds[k]!;
      let same = true;
      for (let j = 0; j < S && same; j++) {
        const want = buffer.next[i * S + j]!;
        same = this.kind[j] === 2 ? Math.abs(p.next[a * S + j]! - want) < 0.02 : p.next[a * S + j] === want;
      }
      const err = Math.abs(p.medianReward[a]! - buffer.reward[i]!);
      const termOk = p.terminal[a]! > 0.5 === (buffer.terminated[i] === 1);
      if (same) obsExact++;
      if (same && termOk && err < 0.05) exact++;
      // a decoded reward is one of experience's rewards: right only when it is the real one
      if (!(same && termOk && (this.atoms ? err === 0 : err < 0.05))) wrong++;
      rewardErr += err;
      dis += p.disagreement[a]!;
    }
    const d = Math.max(1, n);
    return { accuracy: exact / d, obsAccuracy: obsExact / d, rewardError: rewardErr / d, disagreement: dis / d, samples: n, wrong };
  }

  /**
   * Reads the distinct rewards of the buffer, apart for steps that went on
   * and steps that ended: while there are at most `rewardAtoms` of them,
   * a predicted reward decodes to the nearest of those experience paired with
   * the predicted termination (as 0/1 planes decode by rounding). So a planner
   * cannot loop on a reward the regression blurred onto an ordinary step: on
   * GoalShift-v0, where +1 only ever came with the episode's end, a step
   * predicted to go on decodes to 0. train() calls it. Returns whether the
   * atoms changed (then the cached predictions are dropped).
   */
  learnRewardAtoms(buffer: ReplayBuffer): boolean {
    const max = this.config.rewardAtoms;
    const seen = [new Set<number>(), new Set<number>()];
    for (let i = 0; i < buffer.size && seen[0]!.size + seen[1]!.size <= 2 * max; i++)
      seen[buffer.terminated[i] ? 1 : 0]!.add(buffer.reward[i]!);
    const all = new Set([...seen[0]!, ...seen[1]!]);
    const sorted = (set: Set<number>) => [...(set.size > 0 ? set : all)].sort((a, b) => a - b);
    const atoms = all.size === 0 || all.size > max ? null : { ongoing: sorted(seen[0]!), ending: sorted(seen[1]!) };
    const same = (x: readonly number[], y: readonly number[]) => x.length === y.length && x.every((v, i) => v === y[i]);
    const old = this.atoms;
    if (atoms === null ? old === null : old !== null && same(old.ongoing, atoms.ongoing) && same(old.ending, atoms.ending)) return false;
    this.atoms = atoms;
    this.cache.clear();
    return true;
  }

  /** The rewards predictions decode to (null: none, predictions are used as they are); saved with the model. */
  get rewardAtoms(): RewardAtoms | null {
    return this.atoms;
  }

  set rewardAtoms(atoms: RewardAtoms | null) {
    this.cache.clear();
    this.atoms = atoms ? { ongoing: [...atoms.ongoing], ending: [...atoms.ending] } : null;
  }

  /**
   * `steps` Adam steps; each member draws its own minibatch from the buffer
   * (with replacement). Returns the mean losses per member and sample.
   */
  train(buffer: ReplayBuffer, steps: number, rng: Rng): ModelLosses {
    this.learnRewardAtoms(buffer);
    const S = this.obsSize;
    const I = this.inSize;
    const K = this.members.length;
    const B = this.config.batchSize;
    const sums = { loss: 0, obsLoss: 0, rewardLoss: 0, terminalLoss: 0 };
    if (buffer.size === 0) return sums;
    // the members' weights and Adam's moments as one flat vector for the whole call (written back at its end)
    const passes = this.trainingPasses(B);
    const params = this.members.flatMap((m) => m.variables);
    const adam = this.flatAdam(passes.reduce((n, p) => n + p.numParams, 0)).load(params, this.optimizer);
    const x = new Float32Array(B * I);
    const batch: ModelBatch = {
      y: new Float32Array(B * S),
      reward: new Float32Array(B),
      terminated: new Float32Array(B),
      action: new Int32Array(B),
      rows: B,
    };
    // the passes compute only the taken action's head: the loss sees one head per row (action 0 of a one-action layout)
    const headBatch: ModelBatch = { ...batch, action: new Int32Array(B) };
    const headLayout: ModelLossLayout = { ...this.lossLayout, nActions: 1 };
    const dOut = new Float32Array(B * (S + 2));
    const rare = rareTransitions(buffer);
    const rareFraction = rare.length > 0 ? this.config.rareFraction : 0;
    for (let step = 0; step < steps; step++) {
      let offset = 0;
      for (let mi = 0; mi < K; mi++) {
        // each member its own minibatch (with replacement), a quarter from the rare transitions
        for (let b = 0; b < B; b++) {
          const i = rareFraction > 0 && rng.next() < rareFraction ? rare[rng.int(rare.length)]! : rng.int(buffer.size);
          for (let j = 0; j < S; j++) {
            const o = buffer.obs[i * S + j]!;
            const n = buffer.next[i * S + j]!;
            x[b * I + j] = o;
            // targets: flips for binary elements, the next plane for exclusive ones, the change for continuous ones
            const k = this.kind[j];
            batch.y[b * S + j] = k === 0 ? (o !== n ? 1 : 0) : k === 1 ? n : n - o;
          }
          batch.action[b] = buffer.action[i]!;
          batch.reward[b] = buffer.reward[i]!;
          batch.terminated[b] = buffer.terminated[i]!;
        }
        const pass = passes[mi]!;
        pass.setParams(adam.params, offset);
        const out = pass.forward(x, B, batch.action);
        // the total loss is the members' mean: each member's gradient is scaled by 1/K
        const l = modelLossGrad(out, headBatch, headLayout, 1 / K, dOut);
        pass.backward(dOut, B, adam.grads, offset);
        sums.obsLoss += l.obsLoss / K;
        sums.rewardLoss += l.rewardLoss / K;
        sums.terminalLoss += l.terminalLoss / K;
        offset += pass.numParams;
      }
      adam.step(this.config.learningRate, this.optimizer.opts, 10);
    }
    adam.store(params, this.optimizer);
    sums.obsLoss /= steps;
    sums.rewardLoss /= steps;
    sums.terminalLoss /= steps;
    sums.loss = sums.obsLoss + sums.rewardLoss + sums.terminalLoss;
    this.sync();
    return sums;
  }

  /** One training pass per member for minibatches of `rows` (rebuilt when the backend changed). */
  private trainingPasses(rows: number): ActionHeadPass[] {
    const backend = tf.getBackend();
    if (this.fast && this.fast.backend === backend && this.fast.rows >= rows) return this.fast.passes;
    this.disposeFast();
    const mm = createMatmul();
    this.fast = { backend, rows, passes: this.members.map((m) => new ActionHeadPass(m.sizes, this.nActions, mm, rows)) };
    return this.fast.passes;
  }

  private flatAdam(size: number): FlatAdam {
    if (this.adam?.size !== size) this.adam = new FlatAdam(size);
    return this.adam;
  }

  private disposeFast(): void {
    for (const p of this.fast?.passes ?? []) p.dispose();
    this.fast = null;
  }

  /** Every tensor to save, under stable names. */
  namedTensors(prefix: string): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    this.members.forEach((m, i) => Object.assign(out, m.namedVariables(`${prefix}/member${i}`)));
    out[`${prefix}/adam/m`] = this.optimizer.m;
    out[`${prefix}/adam/v`] = this.optimizer.v;
    return out;
  }

  dispose(): void {
    this.disposeFast();
    this.acting.dispose();
    for (const m of this.members) m.dispose();
    this.optimizer.dispose();
  }
}

/** A training minibatch for one member: targets per element (flip, next plane, change), reward, termination, action. */
export interface ModelBatch {
  y: Float32Array;
  reward: Float32Array;
  terminated: Float32Array;
  action: Int32Array;
  rows: number;
}

/** The output's layout as the loss reads it: per action a head of obsSize element logits, then reward, then termination. */
export interface ModelLossLayout {
  obsSize: number;
  nActions: number;
  /** Per element: 0 binary (flip), 1 exclusive (categorical), 2 continuous (change). */
  kind: Uint8Array;
  exclusive: readonly ObsPlane[];
}

/**
 * One member's loss on a minibatch and its gradient with respect to the
 * member's output (rows x nActions x (obsSize + 2)), scaled by `scale`,
 * written into `dOut` (only the taken action's head is non-zero). Per row,
 * on the taken action's head:
 *  - binary elements: cross-entropy of the flip logit against the flip;
 *  - exclusive planes: cross-entropy of the plane's softmax against the next plane;
 *  - continuous elements: squared error of the change;
 *  - reward: squared error; termination: cross-entropy of its logit.
 * The observation loss is summed over elements and averaged over rows; the
 * reward and termination losses are averaged over rows. Returns the three
 * losses (unscaled).
 */
export function modelLossGrad(
  out: Float32Array,
  batch: ModelBatch,
  layout: ModelLossLayout,
  scale: number,
  dOut: Float32Array,
): { obsLoss: number; rewardLoss: number; terminalLoss: number } {
  const { obsSize: S, nActions: A, kind } = layout;
  const O = S + 2;
  const B = batch.rows;
  dOut.fill(0, 0, B * A * O);
  let obsLoss = 0;
  let rewardLoss = 0;
  let terminalLoss = 0;
  const g = scale / B;
  for (let b = 0; b < B; b++) {
    const head = (b * A + batch.action[b]!) * O;
    const yRow = b * S;
    for (let j = 0; j < S; j++) {
      const k = kind[j];
      if (k === 1) continue;
      const z = out[head + j]!;
      const y = batch.y[yRow + j]!;
      if (k === 0) {
        // bce(z, y) and sigmoid(z) from one exponential, as the two functions compute them
        const e = Math.exp(-Math.abs(z));
        obsLoss += Math.max(z, 0) - z * y + Math.log1p(e);
        dOut[head + j] = g * ((z >= 0 ? 1 / (1 + e) : e / (1 + e)) - y);
      } else {
        obsLoss += (z - y) * (z - y);
        dOut[head + j] = g * 2 * (z - y);
      }
    }
    for (const pl of layout.exclusive) {
      // -sum y log softmax(z): gradient softmax(z) * sum(y) - y
      let max = -Infinity;
      let ySum = 0;
      for (let c = 0; c < pl.size; c++) {
        max = Math.max(max, out[head + pl.offset + c]!);
        ySum += batch.y[yRow + pl.offset + c]!;
      }
      let z = 0;
      for (let c = 0; c < pl.size; c++) z += Math.exp(out[head + pl.offset + c]! - max);
      const lse = max + Math.log(z);
      for (let c = 0; c < pl.size; c++) {
        const logit = out[head + pl.offset + c]!;
        const y = batch.y[yRow + pl.offset + c]!;
        obsLoss -= y * (logit - lse);
        dOut[head + pl.offset + c] = g * (Math.exp(logit - lse) * ySum - y);
      }
    }
    const rHat = out[head + S]!;
    const dr = rHat - batch.reward[b]!;
    rewardLoss += dr * dr;
    dOut[head + S] = g * 2 * dr;
    const tHat = out[head + S + 1]!;
    const t = batch.terminated[b]!;
    terminalLoss += bce(tHat, t);
    dOut[head + S + 1] = g * (sigmoid(tHat) - t);
  }
  return { obsLoss: obsLoss / B, rewardLoss: rewardLoss / B, terminalLoss: terminalLoss / B };
}

/** Binary cross-entropy of logit z against target y, numerically stable. */
function bce(z: number, y: number): number {
  return Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Median of a few numbers (sorts in place). */
function median(x: Float64Array): number {
  x.sort();
  const h = x.length >> 1;
  return x.length % 2 ? x[h]! : (x[h - 1]! + x[h]!) / 2;
}

/** Rewards seen on steps that went on and on steps that ended (each falls back to all rewards when its kind was never seen). */
export interface RewardAtoms {
  ongoing: number[];
  ending: number[];
}

/** The atom nearest to x (ties: the lower); x itself when there are no atoms. */
export function nearestAtom(atoms: readonly number[], x: number): number {
  if (atoms.length === 0) return x;
  let best = atoms[0]!;
  for (const a of atoms) if (Math.abs(a - x) < Math.abs(best - x)) best = a;
  return best;
}

/**
 * Indices of the buffer's rare transitions: a reward other than the most
 * common one, or a termination. Model training oversamples them (config
 * rareFraction): with a sparse reward they are a percent of the data, and a
 * reward head fitted on uniform minibatches learns them for the few layouts
 * it saw most (GoalShift-v0: one goal cell of nine).
 */
export function rareTransitions(buffer: ReplayBuffer): Int32Array {
  const counts = new Map<number, number>();
  for (let i = 0; i < buffer.size; i++) counts.set(buffer.reward[i]!, (counts.get(buffer.reward[i]!) ?? 0) + 1);
  let common = 0;
  let most = -1;
  for (const [r, n] of counts) if (n > most) [common, most] = [r, n];
  const out: number[] = [];
  for (let i = 0; i < buffer.size; i++) if (buffer.reward[i] !== common || buffer.terminated[i]) out.push(i);
  return Int32Array.from(out);
}

/**
 * A route's return as the model predicts it: the predicted reward of each of
 * the route's steps, each predicted from the route's true observation
 * (teacher forcing, so one wrong step does not derail the rest), summed.
 */
export function predictedRouteReturn(model: WorldModel, route: Route): number {
  let sum = 0;
  for (let t = 0; t < route.actions.length; t++) sum += model.predict(route.obs[t]!).medianReward[route.actions[t]!]!;
  return sum;
}
