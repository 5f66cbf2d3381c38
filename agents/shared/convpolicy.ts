/**
 * The policy and value networks an actor-critic learner (PPO) trains, behind
 * one interface, so the learner reads the same whichever network the config
 * names (`network`):
 *  - "mlp": an actor MLP and a critic MLP (tanh), acting through FastForward,
 *    training through two MLPPasses that share their input;
 *  - "cnn": one IMPALA-style ConvNet (convnet.ts) whose torso both heads
 *    share (policy logits and value, as procgen's PPO), acting and training
 *    on the same raw-buffer passes.
 * Both expose their layers for recording and editing (activations.ts); edits
 * set with setEdits() apply to acting and action probabilities, never to
 * training.
 */
import * as tf from "@tensorflow/tfjs";
import { Type } from "@sinclair/typebox";
import { ValidationError } from "../../envs/errors.ts";
import { StringEnum } from "../../envs/schema.ts";
import type { Rng } from "../../envs/rng.ts";
import type { AgentEnvInfo } from "../core.ts";
import {
  type ActivationEdit,
  type InspectOptions,
  type InspectResult,
  type Inspectable,
  type LayerInfo,
  applyEdits,
  checkEdits,
  checkRecord,
  editsByLayer,
  imageShapeOf,
} from "./activations.ts";
import { type Matmul, createMatmul } from "./backend.ts";
import { type CnnConfig, ConvNet, ConvTrainer, cnnConfigSchema } from "./convnet.ts";
import { FastForward, MLP, MLPPass, readFlat } from "./networks.ts";

/** The config fields that choose the network (spread into a learner's schema). */
export const networkConfigFields = {
  network: Type.Optional(
    StringEnum(["mlp", "cnn"], {
      type: "string",
      default: "mlp",
      description: 'Policy network: "mlp" (tanh layers of hiddenSizes) or "cnn" (IMPALA-style, sizes in cnn; needs image observations)',
    }),
  ),
  cnn: Type.Optional(cnnConfigSchema),
};

/** The image a "cnn" network reads; a one-line error naming what to change when the env has none. */
export function cnnImage(env: AgentEnvInfo) {
  const image = imageShapeOf(env.obsShape, env.obsLayout);
  if (!image) {
    throw new ValidationError(
      `network "cnn" needs image observations (a Box of shape [height, width, channels]); ${env.envId} observes a flat vector of ${env.obsSize}: use network "mlp"`,
    );
  }
  if (image.height * image.width * image.channels !== env.obsSize) {
    throw new ValidationError(`${env.envId}: observation shape [${env.obsShape}] does not hold ${env.obsSize} values`);
  }
  return image;
}

/** One update's training pass over both networks: outputs of a minibatch, then every parameter's gradient. */
export interface ActorCriticTrainer {
  readonly numParams: number;
  /** FLOPs of the multiplies so far. */
  readonly flops: number;
  setParams(flat: Float32Array): void;
  /** Logits (m x nActions) and values (m) of m observations; views valid until the next call. */
  forward(obs: Float32Array, m: number): { logits: Float32Array; values: Float32Array };
  /** Gradients from d loss / d logits and d loss / d values into grads (variable order). */
  backward(dLogits: Float32Array, dValues: Float32Array, m: number, grads: Float32Array): void;
  dispose(): void;
}

export interface ActorCritic {
  /** Every weight, in the order of the flat parameter vector. */
  readonly variables: tf.Variable[];
  namedVariables(): Record<string, tf.Variable>;
  /** Acting: logits (batch x nActions) and values (batch) of a batch of observations, edits in force. */
  act(obs: Float32Array, batch: number, logits: Float32Array, values: Float32Array): void;
  /** Policy logits of a batch (the exact forward), edits in force. */
  policyLogits(obs: Float32Array, batch: number): Float32Array;
  /** V(s) of a batch (no edits). */
  valuesOf(obs: Float32Array, batch: number): Float32Array;
  /** The weights changed (after an update or a load). */
  sync(): void;
  /** The training pass for minibatches of up to `rows` rows on the current backend (built once, rebuilt when the backend changes or rows grow). */
  trainer(rows: number): ActorCriticTrainer;
  inspectable(): Inspectable;
  setEdits(edits: readonly ActivationEdit[]): void;
  dispose(): void;
}

/** Builds the networks the config names. */
export function buildActorCritic(
  env: AgentEnvInfo,
  config: { network?: "mlp" | "cnn"; cnn?: Partial<CnnConfig>; hiddenSizes: number[] },
  rng: Rng,
): ActorCritic {
  if (config.network === "cnn") return new ConvActorCritic(env, config.cnn as CnnConfig, rng);
  const h = config.hiddenSizes;
  const actor = new MLP([env.obsSize, ...h, env.nActions], rng, { hiddenGain: Math.SQRT2, outputGain: 0.01 });
  const critic = new MLP([env.obsSize, ...h, 1], rng, { hiddenGain: Math.SQRT2, outputGain: 1 });
  return new MLPActorCritic(actor, critic);
}

// ---------------------------------------------------------------- the MLP pair

/** The MLP's layers ("h0", "h1", ..., "logits") and its forward with records and edits (float64 sums, like forwardJS). */
export class MLPInspector implements Inspectable {
  private cache: { version: number; flat: Float32Array } | null = null;
  constructor(private readonly mlp: MLP) {}

  layers(): LayerInfo[] {
    const s = this.mlp.sizes;
    return s.slice(1).map((n, i) => ({ name: i + 2 === s.length ? "logits" : `h${i}`, shape: [n] }));
  }

  forwardInspect(obs: Float32Array, n: number, opts: InspectOptions = {}): InspectResult {
    const layers = this.layers();
    checkRecord(layers, opts.record ?? []);
    checkEdits(layers, opts.edits ?? []);
    if (this.cache?.version !== this.mlp.weightsVersion)
      this.cache = { version: this.mlp.weightsVersion, flat: readFlat(this.mlp.variables) };
    const flat = this.cache.flat;
    const edits = editsByLayer(opts.edits ?? []);
    const recorded: Record<string, Float32Array> = {};
    let x = obs.subarray(0, n * this.mlp.sizes[0]!);
    let o = 0;
    for (const [l, layer] of layers.entries()) {
      const [nIn, nOut] = [this.mlp.sizes[l]!, this.mlp.sizes[l + 1]!];
      const y = new Float32Array(n * nOut);
      for (let s = 0; s < n; s++) {
        for (let j = 0; j < nOut; j++) {
          let z = flat[o + nIn * nOut + j]!;
          for (let i = 0; i < nIn; i++) z += x[s * nIn + i]! * flat[o + i * nOut + j]!;
          y[s * nOut + j] = layer.name === "logits" ? z : Math.tanh(z);
        }
      }
      o += nIn * nOut + nOut;
      const e = edits.get(layer.name);
      if (e) applyEdits(layer, y, n, e);
      if (opts.record?.includes(layer.name)) recorded[layer.name] = y.slice();
      x = y;
    }
    return { logits: x, recorded };
  }
}

class MLPActorCritic implements ActorCritic {
  readonly variables: tf.Variable[];
  private readonly acting: FastForward;
  private readonly inspector: MLPInspector;
  private edits: readonly ActivationEdit[] = [];
  private fast: { backend: string; rows: number; actor: MLPPass; critic: MLPPass; trainer: ActorCriticTrainer } | null = null;

  constructor(
    readonly actor: MLP,
    readonly critic: MLP,
  ) {
    this.variables = [...actor.variables, ...critic.variables];
    this.acting = new FastForward([actor, critic]);
    this.inspector = new MLPInspector(actor);
  }

  namedVariables(): Record<string, tf.Variable> {
    return { ...this.actor.namedVariables("actor"), ...this.critic.namedVariables("critic") };
  }

  act(obs: Float32Array, batch: number, logits: Float32Array, values: Float32Array): void {
    if (this.edits.length > 0) {
      logits.set(this.policyLogits(obs, batch));
      this.critic.forwardJS(obs, batch, values);
      return;
    }
    if (!this.acting.forwardEach(obs, batch, [logits, values])) {
      this.actor.forwardJS(obs, batch, logits);
      this.critic.forwardJS(obs, batch, values);
    }
  }

  policyLogits(obs: Float32Array, batch: number): Float32Array {
    if (this.edits.length > 0) return this.inspector.forwardInspect(obs, batch, { edits: this.edits }).logits;
    return this.actor.forwardJS(obs, batch);
  }

  valuesOf(obs: Float32Array, batch: number): Float32Array {
    return this.critic.forwardJS(obs, batch);
  }

  sync(): void {
    this.actor.syncJS();
    this.critic.syncJS();
  }

  trainer(rows: number): ActorCriticTrainer {
    const backend = tf.getBackend();
    if (this.fast && this.fast.backend === backend && this.fast.rows >= rows) return this.fast.trainer;
    this.disposeFast();
    const mm = createMatmul();
    const actor = new MLPPass(this.actor.sizes, mm, rows);
    // the critic reads the actor's input batch: a minibatch's observations are loaded once
    const critic = new MLPPass(this.critic.sizes, mm, rows, actor.input);
    const nActor = actor.numParams;
    const trainer: ActorCriticTrainer = {
      numParams: actor.numParams + critic.numParams,
      get flops() {
        return actor.flops + critic.flops;
      },
      setParams(flat) {
        actor.setParams(flat, 0);
        critic.setParams(flat, nActor);
      },
      forward(obs, m) {
        const logits = actor.forward(obs, m);
        return { logits, values: critic.forwardLoaded() };
      },
      backward(dLogits, dValues, m, grads) {
        actor.backward(dLogits, m, grads, 0);
        critic.backward(dValues, m, grads, nActor);
      },
      dispose() {
        actor.dispose();
        critic.dispose();
      },
    };
    this.fast = { backend, rows, actor, critic, trainer };
    return trainer;
  }

  inspectable(): Inspectable {
    const critic = this.critic;
    const inspector = this.inspector;
    return {
      layers: () => inspector.layers(),
      forwardInspect: (obs, n, opts) => ({ ...inspector.forwardInspect(obs, n, opts), values: critic.forwardJS(obs, n) }),
    };
  }

  setEdits(edits: readonly ActivationEdit[]): void {
    checkEdits(this.inspector.layers(), edits);
    this.edits = [...edits];
  }

  private disposeFast(): void {
    this.fast?.trainer.dispose();
    this.fast = null;
  }

  dispose(): void {
    this.disposeFast();
    this.acting.dispose();
    this.actor.dispose();
    this.critic.dispose();
  }
}

// ---------------------------------------------------------------- the convolutional network, torso shared

class ConvActorCritic implements ActorCritic {
  readonly net: ConvNet;
  readonly variables: tf.Variable[];
  private readonly A: number;
  private edits: readonly ActivationEdit[] = [];
  private out = new Float32Array(0);
  private fast: { backend: string; rows: number; mm: Matmul; trainer: ActorCriticTrainer } | null = null;

  constructor(env: AgentEnvInfo, config: CnnConfig, rng: Rng) {
    this.A = env.nActions;
    this.net = new ConvNet(
      {
        image: cnnImage(env),
        config,
        heads: [
          { size: env.nActions, gain: 0.01 },
          { size: 1, gain: 1 },
        ],
      },
      rng,
    );
    this.variables = this.net.variables;
  }

  namedVariables(): Record<string, tf.Variable> {
    return this.net.namedVariables("cnn");
  }

  /** The network's outputs (batch x (A + 1)) under the edits in force. */
  private outputs(obs: Float32Array, batch: number, edited: boolean): Float32Array {
    const K = this.A + 1;
    if (this.out.length < batch * K) this.out = new Float32Array(batch * K);
    const hooks = edited && this.edits.length > 0 ? { edits: editsByLayer(this.edits) } : undefined;
    return this.net.forwardJS(obs, batch, this.out.subarray(0, batch * K), hooks);
  }

  act(obs: Float32Array, batch: number, logits: Float32Array, values: Float32Array): void {
    const out = this.outputs(obs, batch, true);
    splitHeads(out, batch, this.A, logits, values);
  }

  policyLogits(obs: Float32Array, batch: number): Float32Array {
    const logits = new Float32Array(batch * this.A);
    splitHeads(this.outputs(obs, batch, true), batch, this.A, logits, null);
    return logits;
  }

  valuesOf(obs: Float32Array, batch: number): Float32Array {
    const values = new Float32Array(batch);
    splitHeads(this.outputs(obs, batch, false), batch, this.A, null, values);
    return values;
  }

  sync(): void {
    this.net.syncJS();
  }

  trainer(rows: number): ActorCriticTrainer {
    const backend = tf.getBackend();
    if (this.fast && this.fast.backend === backend && this.fast.rows >= rows) return this.fast.trainer;
    this.fast?.trainer.dispose();
    const mm = createMatmul();
    const pass = new ConvTrainer(this.net.arch, mm, Math.min(rows, 256));
    const A = this.A;
    let logits = new Float32Array(rows * A);
    let values = new Float32Array(rows);
    let dOut = new Float32Array(rows * (A + 1));
    const trainer: ActorCriticTrainer = {
      numParams: pass.numParams,
      get flops() {
        return pass.flops;
      },
      setParams: (flat) => pass.setParams(flat, 0),
      forward(obs, m) {
        if (logits.length < m * A) [logits, values, dOut] = [new Float32Array(m * A), new Float32Array(m), new Float32Array(m * (A + 1))];
        splitHeads(pass.forward(obs, m), m, A, logits, values);
        return { logits: logits.subarray(0, m * A), values: values.subarray(0, m) };
      },
      backward(dLogits, dValues, m, grads) {
        for (let s = 0; s < m; s++) {
          dOut.set(dLogits.subarray(s * A, (s + 1) * A), s * (A + 1));
          dOut[s * (A + 1) + A] = dValues[s]!;
        }
        pass.backward(dOut, m, grads, 0);
      },
      dispose: () => pass.dispose(),
    };
    this.fast = { backend, rows, mm, trainer };
    return trainer;
  }

  inspectable(): Inspectable {
    return networkInspectable(this.net);
  }

  setEdits(edits: readonly ActivationEdit[]): void {
    checkEdits(this.net.layers(), edits);
    this.edits = [...edits];
  }

  dispose(): void {
    this.fast?.trainer.dispose();
    this.fast = null;
    this.net.dispose();
  }
}

/** Splits rows of [logits (A), value] into logits and values (either may be null). */
function splitHeads(out: Float32Array, batch: number, A: number, logits: Float32Array | null, values: Float32Array | null): void {
  const K = A + 1;
  for (let s = 0; s < batch; s++) {
    if (logits) logits.set(out.subarray(s * K, s * K + A), s * A);
    if (values) values[s] = out[s * K + A]!;
  }
}

// ---------------------------------------------------------------- single networks (REINFORCE's policy and baseline)

/** A network a learner trains on its own: an MLP or a ConvNet (the same forwardJS, syncJS, variables). */
export type PolicyNetwork = MLP | ConvNet;

/** The network the config names, with `outputs` units in one head of init gain `gain`. */
export function buildNetwork(
  env: AgentEnvInfo,
  config: { network?: "mlp" | "cnn"; cnn?: Partial<CnnConfig>; hiddenSizes: number[] },
  outputs: number,
  gain: number,
  rng: Rng,
): PolicyNetwork {
  if (config.network === "cnn")
    return new ConvNet({ image: cnnImage(env), config: config.cnn as CnnConfig, heads: [{ size: outputs, gain }] }, rng);
  return new MLP([env.obsSize, ...config.hiddenSizes, outputs], rng, { hiddenGain: Math.SQRT2, outputGain: gain });
}

/** A network's training pass for up to `rows` rows (an MLP's may read another MLPPass's input batch). */
export function networkTrainer(net: PolicyNetwork, mm: Matmul, rows: number, shared?: MLPPass): MLPPass | ConvTrainer {
  if (net instanceof ConvNet) return new ConvTrainer(net.arch, mm, Math.min(rows, 256));
  return new MLPPass(net.sizes, mm, rows, shared && shared.sizes[0] === net.sizes[0] ? shared.input : undefined);
}

/** A network's layers and its forward with records and edits, checked. */
export function networkInspectable(net: PolicyNetwork): Inspectable {
  if (net instanceof MLP) return new MLPInspector(net);
  return {
    layers: () => net.layers(),
    forwardInspect: (obs, n, opts = {}) => {
      checkRecord(net.layers(), opts.record ?? []);
      checkEdits(net.layers(), opts.edits ?? []);
      return net.forwardInspect(obs, n, opts.record ?? [], opts.edits ?? []);
    },
  };
}
