/**
 * Activations of a policy network, readable and writable: the one API through
 * which any named layer of a policy (the MLP's hidden layers, the CNN's
 * convolution stacks and residual blocks) is recorded during play and edited
 * during acting. The CLI (`steer`), the server, the run loop and the tests
 * all go through it.
 *
 * Layers and their layout:
 *  - every policy lists its layers in forward order with their per-sample
 *    shape: spatial layers are [height, width, channels] (channels last, the
 *    buffer row-major over that shape: value of channel c at (y, x) is at
 *    (y * width + x) * channels + c); dense layers are [units];
 *  - a layer's activation is its output after its nonlinearity (tanh for the
 *    MLP, ReLU or the residual sum for the CNN): what the next layer reads;
 *  - a recorded batch of n samples is n consecutive per-sample blocks.
 *
 * Edits, applied to a layer's output before the next layer reads it, in the
 * order given:
 *  - "add": activation += coeff * vector, where vector has the layer's
 *    per-sample size (a steering vector: a difference of mean activations),
 *    or, with `perSample`, one such block per sample of the batch (sample s
 *    gets block s: each env copy its own vector);
 *  - "set": channel `channel` at square (y, x) := value (for a dense layer,
 *    unit `channel` with y = x = 0), in every sample of the batch or, with
 *    `sample`, in that one only.
 * Edits change acting only (act, actionProbs, forwardInspect); learning
 * always sees the unedited network.
 *
 * Image observations (what a convolutional policy reads): an env's Box
 * observation space of shape [height, width, channels], flat row-major over
 * that shape (channels last); or shape [channels, height, width] with
 * layout "chw" (one plane per channel, as gridworlds write them). See
 * imageShapeOf().
 */
import { ValidationError } from "../../envs/errors.ts";

/** A layer a policy exposes: its name and per-sample shape ([H, W, C] spatial, [n] dense). */
export interface LayerInfo {
  name: string;
  shape: number[];
}

/** Adds coeff x vector to a layer's activation (vector: the layer's per-sample size, or n blocks of it with perSample). */
export interface AddEdit {
  layer: string;
  kind: "add";
  vector: Float32Array;
  coeff: number;
  /** The vector holds one block per sample of the batch, which must have exactly that many samples. */
  perSample?: boolean;
}

/** Sets one channel's activation at one square (dense layers: unit `channel`, y = x = 0). */
export interface SetEdit {
  layer: string;
  kind: "set";
  channel: number;
  y: number;
  x: number;
  value: number;
  /** Only this sample of the batch (an env copy's row); default every sample. */
  sample?: number;
}

export type ActivationEdit = AddEdit | SetEdit;

export interface InspectOptions {
  /** Layers whose activations (after any edits to them) are returned. */
  record?: readonly string[];
  /** Edits in force for this forward only (on top of nothing: the agent's setEdits do not apply here). */
  edits?: readonly ActivationEdit[];
}

export interface InspectResult {
  /** n x nActions policy logits. */
  logits: Float32Array;
  /** V(s) per sample, for policies with a value head or critic. */
  values?: Float32Array;
  /** Layer name -> n x (per-sample size) activations, for each recorded layer. */
  recorded: Record<string, Float32Array>;
}

/** A policy network whose layers can be read and edited. */
export interface Inspectable {
  /** The layers in forward order (names unique); the last is "logits". */
  layers(): LayerInfo[];
  /** Forward of n rows of obs (row-major), recording and editing the named layers. */
  forwardInspect(obs: Float32Array, n: number, opts?: InspectOptions): InspectResult;
}

/** Elements of one sample of a layer. */
export function layerSize(layer: LayerInfo): number {
  return layer.shape.reduce((a, b) => a * b, 1);
}

function findLayer(layers: readonly LayerInfo[], name: string, what: string): LayerInfo {
  const layer = layers.find((l) => l.name === name);
  if (!layer) throw new ValidationError(`${what}: unknown layer "${name}" (layers: ${layers.map((l) => l.name).join(", ")})`);
  return layer;
}

/** Throws a one-line ValidationError for names that are not layers. */
export function checkRecord(layers: readonly LayerInfo[], names: readonly string[]): void {
  for (const n of names) findLayer(layers, n, "record");
}

/** Throws a one-line ValidationError for an edit that does not fit its layer (name, vector size, channel or square out of range). */
export function checkEdits(layers: readonly LayerInfo[], edits: readonly ActivationEdit[]): void {
  for (const e of edits) {
    const layer = findLayer(layers, e.layer, "edit");
    const size = layerSize(layer);
    if (e.kind === "add") {
      const fits = e.perSample ? e.vector?.length > 0 && e.vector.length % size === 0 : e.vector?.length === size;
      if (!(e.vector instanceof Float32Array) || !fits) {
        const needs = e.perSample
          ? `a multiple of ${size} values (one block of [${layer.shape}] per sample)`
          : `${size} values ([${layer.shape}])`;
        throw new ValidationError(`edit on "${e.layer}": the vector needs ${needs}, got ${e.vector?.length}`);
      }
      if (!Number.isFinite(e.coeff)) throw new ValidationError(`edit on "${e.layer}": coeff must be a finite number, got ${e.coeff}`);
      continue;
    }
    if (e.kind !== "set") throw new ValidationError(`edit on "${(e as { layer: string }).layer}": kind must be "add" or "set"`);
    const [h, w, c] = spatialDims(layer);
    const ok = (v: number, n: number) => Number.isInteger(v) && v >= 0 && v < n;
    if (!ok(e.channel, c) || !ok(e.y, h) || !ok(e.x, w)) {
      throw new ValidationError(
        `edit on "${e.layer}": channel ${e.channel} at (y ${e.y}, x ${e.x}) is outside the layer's ${h}x${w}x${c} (height x width x channels)`,
      );
    }
    if (!Number.isFinite(e.value)) throw new ValidationError(`edit on "${e.layer}": value must be a finite number, got ${e.value}`);
    if (e.sample !== undefined && !ok(e.sample, Number.MAX_SAFE_INTEGER))
      throw new ValidationError(`edit on "${e.layer}": sample must be a non-negative integer, got ${e.sample}`);
  }
}

/** [height, width, channels] of a layer: dense layers are 1 x 1 x units. */
export function spatialDims(layer: LayerInfo): [number, number, number] {
  const s = layer.shape;
  return s.length === 3 ? [s[0]!, s[1]!, s[2]!] : [1, 1, layerSize(layer)];
}

/** Applies the edits on `layer` (others are skipped) to n samples of its activation, in order, in place. */
export function applyEdits(layer: LayerInfo, act: Float32Array, n: number, edits: readonly ActivationEdit[]): void {
  const size = layerSize(layer);
  const [, w, c] = spatialDims(layer);
  for (const e of edits) {
    if (e.layer !== layer.name) continue;
    if (e.kind === "add") {
      if (e.coeff === 0) continue;
      if (e.perSample && e.vector.length !== n * size)
        throw new ValidationError(`edit on "${e.layer}": a per-sample vector of ${e.vector.length / size} samples on a batch of ${n}`);
      for (let s = 0; s < n; s++) {
        const o = s * size;
        const v = e.perSample ? o : 0;
        for (let i = 0; i < size; i++) act[o + i]! += e.coeff * e.vector[v + i]!;
      }
    } else {
      const at = (e.y * w + e.x) * c + e.channel;
      if (e.sample !== undefined) {
        if (e.sample < n) act[e.sample * size + at] = e.value;
      } else for (let s = 0; s < n; s++) act[s * size + at] = e.value;
    }
  }
}

/** Edits grouped by layer name (a forward checks one map lookup per layer). */
export function editsByLayer(edits: readonly ActivationEdit[]): Map<string, ActivationEdit[]> {
  const out = new Map<string, ActivationEdit[]>();
  for (const e of edits) {
    const list = out.get(e.layer);
    if (list) list.push(e);
    else out.set(e.layer, [e]);
  }
  return out;
}

/** The observation's image shape, where it has one: [height, width, channels] and whether the planes come channel-first. */
export interface ImageShape {
  height: number;
  width: number;
  channels: number;
  /** "hwc": row-major over [H, W, C]; "chw": one H x W plane per channel. */
  layout: "hwc" | "chw";
}

/**
 * The image shape an observation space declares: a 3-dimensional shape,
 * [H, W, C] (layout "hwc", the default) or [C, H, W] with layout "chw".
 * Null for flat observations.
 */
export function imageShapeOf(shape: readonly number[] | undefined, layout?: "hwc" | "chw"): ImageShape | null {
  if (shape?.length !== 3) return null;
  const [a, b, c] = shape as [number, number, number];
  return layout === "chw" ? { height: b, width: c, channels: a, layout: "chw" } : { height: a, width: b, channels: c, layout: "hwc" };
}
