/**
 * Small networks and the maths the model-free learners share:
 *  - an MLP (tanh hidden layers) whose weights are tf.Variables, with a
 *    tfjs forward for training and a plain-JavaScript forward for acting
 *    (on tiny batches tfjs' per-op dispatch costs more than the arithmetic);
 *  - orthogonal initialisation from the project's seeded Rng;
 *  - Adam (PyTorch's update rule) over flat moment buffers, and global
 *    gradient-norm clipping (torch.nn.utils.clip_grad_norm_; tfjs has none);
 *  - softmax / log-softmax / entropy / categorical sampling on typed arrays;
 *  - the training fast path: an MLP's forward and backward on raw buffers
 *    (MLPPass, a handful of matrix multiplies per layer and no tfjs dispatch)
 *    and Adam as one loop over flat arrays (adamStepFlat), each checked
 *    against its reference (tfjs autodiff through MLP.apply, the Adam class).
 */
import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../../envs/rng.ts";
import { type MatBuffer, type Matmul, createMatmul } from "./backend.ts";

// ---------------------------------------------------------------- initialisation

/**
 * A rows x cols matrix (row-major) with orthonormal columns when rows >= cols,
 * orthonormal rows otherwise, times `gain`: torch.nn.init.orthogonal_ for a
 * weight used as x @ W. Gram-Schmidt (twice, for stability) of a Gaussian
 * matrix, which equals QR with the signs of R's diagonal made positive.
 */
export function orthogonal(rows: number, cols: number, gain: number, rng: Rng): Float32Array {
  const m = Math.max(rows, cols);
  const k = Math.min(rows, cols);
  // k vectors of length m, drawn column by column
  const q = Array.from({ length: k }, () => {
    const v = new Float64Array(m);
    for (let i = 0; i < m; i++) v[i] = rng.normal();
    return v;
  });
  for (let j = 0; j < k; j++) {
    const v = q[j]!;
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        const u = q[p]!;
        let dot = 0;
        for (let i = 0; i < m; i++) dot += u[i]! * v[i]!;
        for (let i = 0; i < m; i++) v[i]! -= dot * u[i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += v[i]! * v[i]!;
    norm = Math.sqrt(norm);
    if (!(norm > 1e-12)) throw new RangeError("orthogonal: degenerate Gaussian draw");
    for (let i = 0; i < m; i++) v[i]! /= norm;
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // tall: column c is q[c]; wide: row r is q[r]
      out[r * cols + c] = gain * (rows >= cols ? q[c]![r]! : q[r]![c]!);
    }
  }
  return out;
}

// ---------------------------------------------------------------- the MLP

export interface MLPOptions {
  /** Gain of the hidden layers' orthogonal init (sqrt 2 in CleanRL). */
  hiddenGain: number;
  /** Gain of the output layer (0.01 for a policy head, 1 for a value head). */
  outputGain: number;
}

/**
 * One dense layer, y = act(x W + b), with a hand-written gradient. The wasm
 * backend multiplies fast only without transpose flags, so the gradient
 * transposes explicitly (dW = x^T dz, dx = dz W^T); with `xT` given (the
 * input's transpose, built in JS) the layer takes no gradient for x at all.
 * tanh is computed as 2 sigmoid(2z) - 1: wasm's sigmoid is SIMD, its tanh scalar.
 */
function dense(x: tf.Tensor2D, w: tf.Variable, b: tf.Variable, tanh: boolean, xT: tf.Tensor2D | null): tf.Tensor2D {
  const forward = (input: tf.Tensor2D) => {
    const z = tf.fused.matMul({ a: input, b: w as tf.Tensor2D, bias: b });
    return (tanh ? tf.sub(tf.mul(tf.sigmoid(tf.mul(z, 2)), 2), 1) : z) as tf.Tensor2D;
  };
  const backward = (dy: tf.Tensor2D, y: tf.Tensor2D, inputT: tf.Tensor2D) => {
    const dz = tanh ? tf.mul(dy, tf.sub(1, tf.square(y))) : dy;
    return { dz, dw: tf.matMul(inputT, dz), db: tf.sum(dz, 0) };
  };
  if (xT) {
    const f = tf.customGrad((_wv, _bv, save) => {
      const y = forward(x);
      (save as tf.GradSaveFunc)([y]);
      return {
        value: y,
        gradFunc: (dy, saved) => {
          const { dw, db } = backward(dy as tf.Tensor2D, saved[0] as tf.Tensor2D, xT);
          return [dw, db];
        },
      };
    });
    return f(w, b) as tf.Tensor2D;
  }
  const f = tf.customGrad((xv, _wv, _bv, save) => {
    const y = forward(xv as tf.Tensor2D);
    (save as tf.GradSaveFunc)([xv as tf.Tensor, y]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, ys] = saved as [tf.Tensor2D, tf.Tensor2D];
        const { dz, dw, db } = backward(dy as tf.Tensor2D, ys, tf.transpose(xs));
        return [tf.matMul(dz, tf.transpose(w)), dw, db];
      },
    };
  });
  return f(x, w, b) as tf.Tensor2D;
}

/**
 * Multi-layer perceptron: sizes [in, h1, ..., out], tanh hidden layers,
 * linear output. Weights are stored as x @ W ([in, out]) plus a bias.
 */
/** tanh(z) = 1 - 2 / (exp(2z) + 1): within 4e-16 of Math.tanh (saturates to +-1 without overflow trouble), about twice as fast in V8. */
export function tanhViaExp(z: number): number {
  return 1 - 2 / (Math.exp(2 * z) + 1);
}

export class MLP {
  readonly sizes: readonly number[];
  /** [W0, b0, W1, b1, ...]. */
  readonly variables: tf.Variable[];
  /**
   * Plain float64 copies for forwardJS, refreshed by syncJS(): the first
   * matrix as [in, out] (rows are added for the non-zero inputs), the others
   * transposed to [out, in] (each output is one contiguous dot product).
   */
  private jsW: Float64Array[] = [];
  private jsB: Float64Array[] = [];
  private hidden: Float64Array[];
  private last: Float64Array | null = null;
  /** forwardNear's reference input and its first-layer pre-activation, under weights `version`. */
  private reference: { obs: Float32Array; z0: Float64Array; version: number } | null = null;

  constructor(sizes: readonly number[], rng: Rng, opts: MLPOptions) {
    if (sizes.length < 2) throw new RangeError("an MLP needs at least input and output sizes");
    this.sizes = [...sizes];
    this.variables = [];
    for (let l = 0; l + 1 < sizes.length; l++) {
      const [n, m] = [sizes[l]!, sizes[l + 1]!];
      const gain = l + 2 === sizes.length ? opts.outputGain : opts.hiddenGain;
      const w = orthogonal(n, m, gain, rng);
      // unnamed: tfjs variable names are global, and two agents may coexist
      this.variables.push(
        tf.tidy(() => tf.variable(tf.tensor2d(w, [n, m]), true)),
        tf.tidy(() => tf.variable(tf.zeros([m]), true)),
      );
    }
    this.hidden = sizes.slice(1, -1).map((h) => new Float64Array(h));
    this.syncJS();
  }

  get inputSize(): number {
    return this.sizes[0]!;
  }

  get outputSize(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  /**
   * The tfjs forward, for training (call inside tf.tidy or variableGrads).
   * `xT`, the transpose of x, saves the first layer's transpose in the gradient;
   * it is read by the backward pass, so create it outside tf.variableGrads.
   */
  apply(x: tf.Tensor2D, xT: tf.Tensor2D | null = null): tf.Tensor2D {
    let h: tf.Tensor2D = x;
    const layers = this.variables.length / 2;
    for (let l = 0; l < layers; l++) {
      h = dense(h, this.variables[2 * l]!, this.variables[2 * l + 1]!, l + 1 < layers, l === 0 ? xT : null);
    }
    return h;
  }

  /** Counts syncJS() calls: acting copies of the weights (FastForward) reload when it moves. */
  weightsVersion = 0;

  /** Copies the variables into the plain arrays forwardJS reads (once per update). */
  syncJS(): void {
    this.weightsVersion++;
    const layers = this.variables.length / 2;
    for (let l = 0; l < layers; l++) {
      const [n, m] = [this.sizes[l]!, this.sizes[l + 1]!];
      const w = this.variables[2 * l]!.dataSync();
      if (l === 0) this.jsW[l] = Float64Array.from(w);
      else {
        const t = new Float64Array(n * m);
        for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = w[i * m + j]!;
        this.jsW[l] = t;
      }
      this.jsB[l] = Float64Array.from(this.variables[2 * l + 1]!.dataSync());
    }
  }

  /**
   * Plain-JavaScript forward of `batch` rows of `obs` (row-major); writes
   * batch x outputSize into `out`. Zero inputs are skipped, so one-hot
   * observations cost a few rows of the first matrix.
   */
  forwardJS(obs: Float32Array, batch: number, out: Float32Array = new Float32Array(batch * this.outputSize)): Float32Array {
    const inSize = this.inputSize;
    const h0 = this.jsW.length > 1 ? this.hidden[0]! : new Float64Array(this.jsB[0]!.length);
    for (let s = 0; s < batch; s++) {
      // first layer: bias plus the rows of W for the non-zero inputs
      h0.set(this.jsB[0]!);
      this.addInputRows(obs, s * inSize, null, h0);
      this.forwardFromFirst(h0, out, s * this.outputSize);
    }
    return out;
  }

  /**
   * Sets the input that forwardNear() measures from (a search's root
   * observation): its first-layer pre-activation is computed once and kept
   * until the weights change.
   */
  setReference(obs: Float32Array): void {
    const ref = (this.reference ??= { obs: new Float32Array(this.inputSize), z0: new Float64Array(this.jsB[0]!.length), version: -1 });
    ref.obs.set(obs.subarray(0, this.inputSize));
    ref.z0.set(this.jsB[0]!);
    this.addInputRows(ref.obs, 0, null, ref.z0);
    ref.version = this.weightsVersion;
  }

  /**
   * forwardJS of one row, with the first layer computed from the reference's
   * (setReference) plus the rows of W for the inputs that differ from it:
   * the same function up to float64 rounding (summation order), and a few
   * rows instead of every non-zero input's where the row is near the
   * reference (a search's leaves differ from its root in a few cells, while
   * walls and floor make most of a grid's non-zero inputs). Without a
   * current reference it is forwardJS.
   */
  forwardNear(obs: Float32Array, out: Float32Array = new Float32Array(this.outputSize)): Float32Array {
    const ref = this.reference;
    if (ref === null || ref.version !== this.weightsVersion) return this.forwardJS(obs, 1, out);
    const h0 = this.jsW.length > 1 ? this.hidden[0]! : new Float64Array(ref.z0.length);
    h0.set(ref.z0);
    this.addInputRows(obs, 0, ref.obs, h0);
    this.forwardFromFirst(h0, out, 0, true);
    return out;
  }

  /** z += (x - base) W0 over the inputs of row x (at `offset`) that differ from `base` (zero when null). */
  private addInputRows(x: Float32Array, offset: number, base: Float32Array | null, z: Float64Array): void {
    const w0 = this.jsW[0]!;
    const m0 = z.length;
    for (let i = 0; i < this.inputSize; i++) {
      const d = base === null ? x[offset + i]! : x[offset + i]! - base[i]!;
      if (d === 0) continue;
      const row = i * m0;
      for (let j = 0; j < m0; j++) z[j] += d * w0[row + j]!;
    }
  }

  /**
   * The layers after the first, from the first layer's pre-activation z0
   * (overwritten), into out[at..]. `fastTanh`: tanh(z) as 1 - 2 / (exp(2z) + 1),
   * within 4e-16 of Math.tanh and about twice as fast in V8 (forwardNear, a
   * search's inner loop); forwardJS keeps Math.tanh, bit for bit as before.
   */
  private forwardFromFirst(z0: Float64Array, out: Float32Array, at: number, fastTanh = false): void {
    const act = fastTanh ? tanhViaExp : Math.tanh;
    const layers = this.jsW.length;
    const m0 = z0.length;
    if (layers === 1) {
      for (let j = 0; j < m0; j++) out[at + j] = z0[j]!;
      return;
    }
    for (let j = 0; j < m0; j++) z0[j] = act(z0[j]!);
    let prev = z0;
    // further layers: one dot product per output, weights transposed
    for (let l = 1; l < layers; l++) {
      const wt = this.jsW[l]!;
      const b = this.jsB[l]!;
      const n = prev.length;
      const m = b.length;
      const last = l + 1 === layers;
      const h = last ? null : this.hidden[l]!;
      const dst = h ?? this.lastRow(m);
      let j = 0;
      // four outputs at a time: each input is loaded once for four independent sums
      for (; j + 3 < m; j += 4) {
        const r0 = j * n;
        const r1 = r0 + n;
        const r2 = r1 + n;
        const r3 = r2 + n;
        let a0 = b[j]!;
        let a1 = b[j + 1]!;
        let a2 = b[j + 2]!;
        let a3 = b[j + 3]!;
        for (let i = 0; i < n; i++) {
          const x = prev[i]!;
          a0 += x * wt[r0 + i]!;
          a1 += x * wt[r1 + i]!;
          a2 += x * wt[r2 + i]!;
          a3 += x * wt[r3 + i]!;
        }
        dst[j] = a0;
        dst[j + 1] = a1;
        dst[j + 2] = a2;
        dst[j + 3] = a3;
      }
      for (; j < m; j++) {
        let acc = b[j]!;
        const row = j * n;
        for (let i = 0; i < n; i++) acc += prev[i]! * wt[row + i]!;
        dst[j] = acc;
      }
      if (h) {
        for (let k = 0; k < m; k++) h[k] = act(h[k]!);
        prev = h;
      } else {
        for (let k = 0; k < m; k++) out[at + k] = dst[k]!;
      }
    }
  }

  private lastRow(m: number): Float64Array {
    if (this.last === null || this.last.length !== m) this.last = new Float64Array(m);
    return this.last;
  }

  /** The weights under stable names ("l0/kernel", "l0/bias", ...), for saving. */
  namedVariables(prefix: string): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    for (let i = 0; i < this.variables.length; i++) {
      out[`${prefix}/l${i >> 1}/${i % 2 === 0 ? "kernel" : "bias"}`] = this.variables[i]!;
    }
    return out;
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}

// ---------------------------------------------------------------- training fast path

/**
 * A batch of network inputs in the form MLPPass multiplies: the batch's
 * active input columns (a grid's one-hot channels are mostly zero: on
 * BoatRace-v0 about 30 of 150), the input restricted to them, and its
 * transpose with one extra row of ones (the left operand of the first layer's
 * weight gradient; the ones row gives the bias gradient in the same multiply).
 * Nets that read the same observations (an actor and its critic) share one.
 */
export class InputBatch {
  readonly active: Int32Array;
  nActive = 0;
  rows = 0;
  /** Changes whenever the active columns change (a pass then re-copies its W0 rows). */
  generation = 0;
  readonly xc: MatBuffer;
  readonly xcT: MatBuffer;
  private readonly mark: Uint32Array;
  /** Batches of at least this many rows multiply only their active input columns. */
  static compactFromRows = 16;

  constructor(
    readonly inSize: number,
    readonly maxRows: number,
    private readonly mm: Matmul,
  ) {
    this.active = new Int32Array(inSize);
    this.mark = new Uint32Array(inSize);
    this.xc = mm.alloc(maxRows * inSize);
    this.xcT = mm.alloc((inSize + 1) * maxRows);
  }

  /**
   * Writes `m` rows of x (m x inSize, row-major) restricted to their active
   * columns. Small batches (acting) keep every column: the full W0 then stays
   * packed in the multiply's cache between calls, which costs less than
   * repacking a compacted W0 at every step.
   */
  load(x: Float32Array, m: number): void {
    if (m > this.maxRows) throw new RangeError(`InputBatch: ${m} rows, built for at most ${this.maxRows}`);
    const n = this.inSize;
    let s = 0;
    if (m < InputBatch.compactFromRows) {
      for (let f = 0; f < n; f++) this.active[f] = f;
      s = n;
    } else {
      // OR of the rows' bit patterns without the sign bit: non-zero exactly where some row is non-zero
      const bits = new Uint32Array(x.buffer, x.byteOffset, m * n);
      const mark = this.mark;
      mark.fill(0);
      for (let i = 0; i < m; i++) {
        const o = i * n;
        for (let f = 0; f < n; f++) mark[f]! |= bits[o + f]! & 0x7fffffff;
      }
      for (let f = 0; f < n; f++) if (mark[f] !== 0) this.active[s++] = f;
      // an all-zero batch still multiplies one (zero) column: the output is the bias
      if (s === 0) this.active[s++] = 0;
    }
    if (s !== this.nActive || s !== n) this.generation++;
    this.nActive = s;
    this.rows = m;
    const xc = this.xc.view();
    const xcT = this.xcT.view();
    const active = this.active;
    for (let i = 0; i < m; i++) {
      const o = i * n;
      for (let c = 0; c < s; c++) {
        const v = x[o + active[c]!]!;
        xc[i * s + c] = v;
        xcT[c * m + i] = v;
      }
    }
    xcT.fill(1, s * m, (s + 1) * m);
  }

  dispose(): void {
    this.mm.free(this.xc);
    this.mm.free(this.xcT);
  }
}

/**
 * One MLP's training-time forward and backward on raw buffers (agents/shared/backend.ts
 * Matmul: XNNPACK on wasm, plain loops elsewhere). The forward keeps each
 * layer's activations; the backward takes d loss / d output and writes every
 * parameter's gradient into a flat vector in the MLP's variable order
 * (W0, b0, W1, b1, ...). Same maths as tfjs autodiff through MLP.apply
 * (test/agents/shared/backend.test.ts); it replaces about a hundred tfjs operations
 * per minibatch, whose dispatch was most of PPO's time, with
 * 3 multiplies per layer and a few plain loops.
 *
 * Three exact economies:
 *  - the first layer multiplies only the input columns that are non-zero
 *    somewhere in the batch (InputBatch); the other rows of W0 neither change
 *    the output nor get gradient (their gradient is exactly 0);
 *  - each layer's weight and bias gradients are one multiply: the transposed
 *    input carries a row of ones, so [dW; db] = [h^T; 1] dz, which is exactly
 *    the variable order W then b;
 *  - every multiply is untransposed: transposes of activations and weights
 *    are written by these loops (the wasm multiply is slow with transpose flags).
 */
export class MLPPass {
  readonly numParams: number;
  /** FLOPs of the multiplies done so far (2 per multiply-add), for GFLOP/s figures. */
  flops = 0;
  /** The input this pass reads: its own, or one shared with other passes over the same observations. */
  readonly input: InputBatch;
  private readonly ownsInput: boolean;
  private readonly w: MatBuffer[] = [];
  private readonly b: MatBuffer[] = [];
  private readonly wT: MatBuffer[] = [];
  /** Layer outputs (m x out): tanh activations for hidden layers, the linear output last. */
  private readonly h: MatBuffer[] = [];
  /** Transposed hidden activations plus a ones row ((out + 1) x m), the left operand of the next layer's gradient. */
  private readonly hT: MatBuffer[] = [];
  private readonly dz: MatBuffer[] = [];
  private readonly dh: MatBuffer[] = [];
  /** [dW; db] of each layer ((in + 1) x out; the first layer's rows are its active columns then the bias). */
  private readonly dW: MatBuffer[] = [];
  /** Where setParams read W0 from (rows of the active columns are copied per forward). */
  private w0Source: Float32Array | null = null;
  private w0Offset = 0;
  /** The input generation whose active rows of W0 are in the multiply's buffer (-1: none, or the weights changed). */
  private w0Generation = -1;
  /** Batches of at least this many rows multiply only their active input columns (InputBatch.compactFromRows). */
  static get compactFromRows(): number {
    return InputBatch.compactFromRows;
  }
  static set compactFromRows(rows: number) {
    InputBatch.compactFromRows = rows;
  }
  private readonly layers: number;
  private readonly viaSigmoid: boolean;

  constructor(
    readonly sizes: readonly number[],
    private readonly mm: Matmul,
    readonly maxRows: number,
    sharedInput?: InputBatch,
    /** False for passes that only run forward (acting): the transposes backward() reads are not written. */
    readonly training = true,
  ) {
    this.layers = sizes.length - 1;
    this.viaSigmoid = mm.fastSigmoid;
    let params = 0;
    for (let l = 0; l < this.layers; l++) {
      const [n, k] = [sizes[l]!, sizes[l + 1]!];
      params += n * k + k;
      this.w.push(mm.alloc(n * k));
      this.b.push(mm.alloc(k));
      this.wT.push(mm.alloc(l === 0 ? 0 : k * n));
      this.h.push(mm.alloc(maxRows * k));
      this.hT.push(mm.alloc(l + 1 === this.layers ? 0 : (k + 1) * maxRows));
      this.dz.push(mm.alloc(maxRows * k));
      this.dh.push(mm.alloc(l === 0 ? 0 : maxRows * n));
      this.dW.push(mm.alloc((n + 1) * k));
    }
    if (sharedInput && (sharedInput.inSize !== sizes[0] || sharedInput.maxRows < maxRows)) {
      throw new RangeError(
        `MLPPass: shared input is ${sharedInput.inSize} wide for ${sharedInput.maxRows} rows, need ${sizes[0]} for ${maxRows}`,
      );
    }
    this.input = sharedInput ?? new InputBatch(sizes[0]!, maxRows, mm);
    this.ownsInput = sharedInput === undefined;
    this.numParams = params;
  }

  /** Hidden layers on a fast-sigmoid backend compute tanh(z) as 2 sigmoid(2z) - 1: their forward weights are doubled. */
  private scale(l: number): number {
    return this.viaSigmoid && l + 1 < this.layers ? 2 : 1;
  }

  /** Loads the weights from a flat vector in variable order, starting at `offset` (W0 is read from it at each forward). */
  setParams(flat: Float32Array, offset = 0): void {
    let o = offset;
    for (let l = 0; l < this.layers; l++) {
      const [n, k] = [this.sizes[l]!, this.sizes[l + 1]!];
      const scale = this.scale(l);
      if (l === 0) {
        this.w0Source = flat;
        this.w0Offset = o;
        this.w0Generation = -1;
      } else {
        const w = this.w[l]!.view();
        const wT = this.wT[l]!.view();
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < k; j++) {
            const x = flat[o + i * k + j]!;
            w[i * k + j] = scale * x;
            wT[j * n + i] = x;
          }
        }
        this.w[l]!.touch();
        this.wT[l]!.touch();
      }
      o += n * k;
      const b = this.b[l]!.view();
      for (let j = 0; j < k; j++) b[j] = scale * flat[o + j]!;
      this.b[l]!.touch();
      o += k;
    }
  }

  /** Copies the rows of W0 for the active columns into the multiply's buffer, unless they are there already. */
  private copyW0Rows(): void {
    const input = this.input;
    if (this.w0Generation === input.generation) return;
    this.w0Generation = input.generation;
    const s = input.nActive;
    const k = this.sizes[1]!;
    const scale = this.scale(0);
    const src = this.w0Source!;
    const w0 = this.w[0]!.view();
    for (let c = 0; c < s; c++) {
      const from = this.w0Offset + input.active[c]! * k;
      for (let j = 0; j < k; j++) w0[c * k + j] = scale * src[from + j]!;
    }
    this.w[0]!.touch();
  }

  /** Forward of `m` rows of x (m x in, row-major); returns a view of the output (m x out, valid until the next call). */
  forward(x: Float32Array, m: number): Float32Array {
    if (m > this.maxRows) throw new RangeError(`MLPPass: ${m} rows, built for at most ${this.maxRows}`);
    this.input.load(x, m);
    return this.forwardLoaded();
  }

  /** Forward of the input's current batch (loaded by this pass or by another sharing it), under the current weights. */
  forwardLoaded(): Float32Array {
    if (this.w0Source === null) throw new Error("MLPPass: setParams() before forward()");
    if (this.input.rows > this.maxRows) throw new RangeError(`MLPPass: ${this.input.rows} rows, built for at most ${this.maxRows}`);
    this.copyW0Rows();
    const m = this.input.rows;
    let input = this.input.xc;
    for (let l = 0; l < this.layers; l++) {
      const n = l === 0 ? this.input.nActive : this.sizes[l]!;
      const k = this.sizes[l + 1]!;
      const hidden = l + 1 < this.layers;
      this.mm.matmul(input, this.w[l]!, this.h[l]!, m, n, k, this.b[l]!, hidden && this.viaSigmoid);
      this.flops += 2 * m * n * k;
      if (hidden) {
        const h = this.h[l]!.view();
        if (!this.training) {
          if (this.viaSigmoid) for (let i = 0; i < m * k; i++) h[i] = 2 * h[i]! - 1;
          else for (let i = 0; i < m * k; i++) h[i] = Math.tanh(h[i]!);
          input = this.h[l]!;
          continue;
        }
        const hT = this.hT[l]!.view();
        if (this.viaSigmoid) {
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < k; j++) {
              const y = 2 * h[i * k + j]! - 1;
              h[i * k + j] = y;
              hT[j * m + i] = y;
            }
          }
        } else {
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < k; j++) {
              const y = Math.tanh(h[i * k + j]!);
              h[i * k + j] = y;
              hT[j * m + i] = y;
            }
          }
        }
        hT.fill(1, k * m, (k + 1) * m);
      }
      input = this.h[l]!;
    }
    return this.h[this.layers - 1]!.view().subarray(0, m * this.sizes[this.layers]!);
  }

  /**
   * Gradients of the last forward's `m` rows, given dOut = d loss / d output
   * (m x out). Writes them into `grads` from `offset`, in variable order.
   */
  backward(dOut: Float32Array, m: number, grads: Float32Array, offset = 0): void {
    if (!this.training) throw new Error("MLPPass: backward() on a forward-only pass");
    const top = this.layers - 1;
    this.dz[top]!.view().set(dOut.subarray(0, m * this.sizes[this.layers]!));
    this.dz[top]!.touch();
    // gradient offsets of each layer's W and b
    const at: number[] = [];
    let o = offset;
    for (let l = 0; l < this.layers; l++) {
      at.push(o);
      o += this.sizes[l]! * this.sizes[l + 1]! + this.sizes[l + 1]!;
    }
    for (let l = top; l >= 0; l--) {
      const [n, k] = [this.sizes[l]!, this.sizes[l + 1]!];
      if (l === 0) {
        // [dW0; db0] = [x^T; 1] dz on the active columns; the other rows' gradient is exactly 0
        const input = this.input;
        const s = input.nActive;
        this.mm.matmul(input.xcT, this.dz[0]!, this.dW[0]!, s + 1, m, k);
        this.flops += 2 * (s + 1) * m * k;
        grads.fill(0, at[0]!, at[0]! + n * k);
        const dW = this.dW[0]!.view();
        for (let c = 0; c < s; c++) grads.set(dW.subarray(c * k, (c + 1) * k), at[0]! + input.active[c]! * k);
        grads.set(dW.subarray(s * k, (s + 1) * k), at[0]! + n * k);
      } else {
        // [dW; db] = [h^T; 1] dz, in variable order
        this.mm.matmul(this.hT[l - 1]!, this.dz[l]!, this.dW[l]!, n + 1, m, k);
        this.flops += 2 * (n + 1) * m * k;
        grads.set(this.dW[l]!.view().subarray(0, (n + 1) * k), at[l]!);
        // dh = dz W^T, then through tanh: dz' = dh (1 - h^2)
        this.mm.matmul(this.dz[l]!, this.wT[l]!, this.dh[l]!, m, k, n);
        this.flops += 2 * m * k * n;
        const dh = this.dh[l]!.view();
        const h = this.h[l - 1]!.view();
        const dzPrev = this.dz[l - 1]!.view();
        for (let i = 0; i < m * n; i++) dzPrev[i] = dh[i]! * (1 - h[i]! * h[i]!);
        this.dz[l - 1]!.touch();
      }
    }
  }

  dispose(): void {
    for (const list of [this.w, this.b, this.wT, this.h, this.hT, this.dz, this.dh, this.dW]) for (const buf of list) this.mm.free(buf);
    if (this.ownsInput) this.input.dispose();
  }
}

/**
 * Acting through MLPPass where the backend multiplies fast (wasm: XNNPACK),
 * about 8 times forwardJS's speed at a vector env's batch; the weights are
 * reloaded whenever the MLP's syncJS() ran (once per update). Elsewhere
 * forward() returns false and the caller uses forwardJS (exact, and the cpu
 * backend's determinism stays bit for bit).
 */
export class FastForward {
  private state: { backend: string; rows: number; mm: Matmul; passes: MLPPass[]; versions: number[] } | null = null;

  constructor(private readonly nets: readonly MLP[]) {}

  /** The passes for `batch` rows on the current backend, or null where there is no fast path. */
  private passes(batch: number): NonNullable<FastForward["state"]> | null {
    const backend = tf.getBackend();
    if (backend !== "wasm") return null;
    let s = this.state;
    if (!s || s.backend !== backend || s.rows < batch) {
      this.dispose();
      const mm = createMatmul();
      const rows = Math.max(batch, s?.rows ?? 0);
      // forward-only passes; nets of one input size read one input batch (loaded once by forwardEach)
      const passes: MLPPass[] = [];
      for (const n of this.nets) {
        const shared = passes.find((p) => p.sizes[0] === n.sizes[0])?.input;
        passes.push(new MLPPass(n.sizes, mm, rows, shared, false));
      }
      s = this.state = { backend, rows, mm, passes, versions: this.nets.map(() => -1) };
    }
    return s;
  }

  private withWeights(s: NonNullable<FastForward["state"]>, i: number): MLPPass {
    const net = this.nets[i]!;
    const pass = s.passes[i]!;
    if (s.versions[i] !== net.weightsVersion) {
      pass.setParams(readFlat(net.variables));
      s.versions[i] = net.weightsVersion;
    }
    return pass;
  }

  /** Writes net `i`'s outputs for `batch` rows of obs into `out`; false when this backend has no fast path. */
  forward(i: number, obs: Float32Array, batch: number, out: Float32Array): boolean {
    const s = this.passes(batch);
    if (!s) return false;
    out.set(this.withWeights(s, i).forward(obs, batch));
    return true;
  }

  /** Every net's outputs for the same `batch` rows of obs (outs[i] for net i), the input loaded once; false without a fast path. */
  forwardEach(obs: Float32Array, batch: number, outs: readonly Float32Array[]): boolean {
    const s = this.passes(batch);
    if (!s) return false;
    let loaded: InputBatch | null = null;
    for (let i = 0; i < this.nets.length; i++) {
      const pass = this.withWeights(s, i);
      if (pass.input !== loaded) {
        pass.input.load(obs, batch);
        loaded = pass.input;
      }
      outs[i]!.set(pass.forwardLoaded());
    }
    return true;
  }

  dispose(): void {
    if (!this.state) return;
    for (const p of this.state.passes) p.dispose();
    this.state = null;
  }
}

/** Adam's state over one flat parameter vector: parameters and both moments, as plain arrays. */
export interface FlatAdamState {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** Steps taken (bias correction). */
  t: number;
}

/**
 * One Adam step over flat arrays, the same rule as the Adam class (PyTorch's:
 * bias-corrected step size, eps outside the square root) after the same
 * global-norm clipping, fused into one pass; returns the pre-clip norm.
 */
export function adamStepFlat(s: FlatAdamState, grads: Float32Array, lr: number, opts: AdamOptions, maxGradNorm: number | null): number {
  s.t++;
  const { beta1, beta2, eps } = opts;
  const stepSize = lr / (1 - beta1 ** s.t);
  const rootBc2 = 1 / Math.sqrt(1 - beta2 ** s.t);
  let sq = 0;
  for (let i = 0; i < grads.length; i++) sq += grads[i]! * grads[i]!;
  const norm = Math.sqrt(sq);
  const scale = maxGradNorm === null ? 1 : Math.min(1, maxGradNorm / (norm + 1e-6));
  const { params, m, v } = s;
  for (let i = 0; i < grads.length; i++) {
    const g = grads[i]! * scale;
    const mi = beta1 * m[i]! + (1 - beta1) * g;
    const vi = beta2 * v[i]! + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i]! -= (stepSize * mi) / (Math.sqrt(vi) * rootBc2 + eps);
  }
  return norm;
}

/** Concatenates the variables' values into one flat array (in order). */
export function readFlat(vars: readonly tf.Variable[], out?: Float32Array): Float32Array {
  const total = vars.reduce((n, v) => n + v.size, 0);
  const flat = out ?? new Float32Array(total);
  let o = 0;
  for (const v of vars) {
    flat.set(v.dataSync() as Float32Array, o);
    o += v.size;
  }
  return flat;
}

/** Assigns a flat array back to the variables (in order). */
export function writeFlat(vars: readonly tf.Variable[], flat: Float32Array): void {
  let o = 0;
  for (const v of vars) {
    const part = flat.slice(o, o + v.size);
    tf.tidy(() => v.assign(tf.tensor(part, v.shape)));
    o += v.size;
  }
}

// ---------------------------------------------------------------- optimisation

/**
 * Rescales gradients so that their global L2 norm is at most maxNorm, as
 * torch.nn.utils.clip_grad_norm_ (factor maxNorm / (norm + 1e-6), capped at 1).
 * Works on one flat gradient or on a list; returns the clipped tensors and the norm.
 */
export function clipByGlobalNorm<T extends tf.Tensor>(grads: T[], maxNorm: number): { grads: T[]; norm: tf.Scalar } {
  const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
  const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
  return { grads: grads.map((g) => tf.mul(g, scale) as T), norm };
}

/** Plain-JS reference of clipByGlobalNorm, for tests. */
export function clipByGlobalNormJS(grads: Float64Array[], maxNorm: number): { grads: Float64Array[]; norm: number } {
  let sq = 0;
  for (const g of grads) for (const x of g) sq += x * x;
  const norm = Math.sqrt(sq);
  const scale = Math.min(1, maxNorm / (norm + 1e-6));
  return { grads: grads.map((g) => g.map((x) => x * scale)), norm };
}

export interface AdamOptions {
  beta1: number;
  beta2: number;
  eps: number;
}

/**
 * Adam with PyTorch's update (bias-corrected step size, eps outside the
 * square root), optional global-norm clipping, and the learning rate given
 * per step so schedules need no optimizer rebuild. The moments live in two
 * flat variables: one fused update instead of a dozen ops per weight tensor.
 */
export class Adam {
  readonly m: tf.Variable;
  readonly v: tf.Variable;
  /** Steps taken (bias correction). */
  t = 0;
  private readonly sizes: number[];
  private readonly shapes: number[][];

  constructor(
    readonly params: tf.Variable[],
    readonly opts: AdamOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  ) {
    this.sizes = params.map((p) => p.size);
    this.shapes = params.map((p) => p.shape);
    const total = this.sizes.reduce((a, b) => a + b, 0);
    this.m = tf.tidy(() => tf.variable(tf.zeros([total]), false));
    this.v = tf.tidy(() => tf.variable(tf.zeros([total]), false));
  }

  /**
   * Applies one step from gradients (same order as params); clips their
   * global norm first when maxGradNorm is a number. Returns the pre-clip norm
   * as a tensor (the caller reads it with its other statistics, or disposes it).
   */
  step(grads: tf.Tensor[], lr: number, maxGradNorm: number | null): tf.Scalar {
    this.t++;
    const { beta1, beta2, eps } = this.opts;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    return tf.tidy(() => {
      let g: tf.Tensor = tf.concat(grads.map((x) => tf.reshape(x, [-1])));
      const norm = tf.sqrt(tf.sum(tf.square(g))) as tf.Scalar;
      if (maxGradNorm !== null) g = tf.mul(g, tf.minimum(1, tf.div(maxGradNorm, tf.add(norm, 1e-6))));
      const m = tf.add(tf.mul(this.m, beta1), tf.mul(g, 1 - beta1));
      const v = tf.add(tf.mul(this.v, beta2), tf.mul(tf.square(g), 1 - beta2));
      this.m.assign(m);
      this.v.assign(v);
      const update = tf.div(tf.mul(m, lr / bc1), tf.add(tf.mul(tf.sqrt(v), 1 / Math.sqrt(bc2)), eps));
      const parts = tf.split(update, this.sizes);
      for (let i = 0; i < this.params.length; i++) {
        const p = this.params[i]!;
        p.assign(tf.sub(p, tf.reshape(parts[i]!, this.shapes[i]!)));
      }
      return norm;
    });
  }

  dispose(): void {
    this.m.dispose();
    this.v.dispose();
  }
}

// ---------------------------------------------------------------- distributions (plain JS)

/** The largest of x[o .. o+n): what a stable softmax subtracts. */
function rowMax(x: Float32Array, o: number, n: number): number {
  let max = -Infinity;
  for (let a = 0; a < n; a++) max = Math.max(max, x[o + a]!);
  return max;
}

/** Row-wise softmax of batch x n logits into `out` (may alias `logits`). */
export function softmax(logits: Float32Array, batch: number, n: number, out: Float32Array = new Float32Array(batch * n)): Float32Array {
  for (let s = 0; s < batch; s++) {
    const o = s * n;
    const max = rowMax(logits, o, n);
    let sum = 0;
    for (let a = 0; a < n; a++) {
      const e = Math.exp(logits[o + a]! - max);
      out[o + a] = e;
      sum += e;
    }
    for (let a = 0; a < n; a++) out[o + a]! /= sum;
  }
  return out;
}

/** Row-wise log-softmax of batch x n logits into `out` (may alias `logits`). */
export function logSoftmax(logits: Float32Array, batch: number, n: number, out: Float32Array = new Float32Array(batch * n)): Float32Array {
  for (let s = 0; s < batch; s++) {
    const o = s * n;
    const lse = rowLogSumExp(logits, o, n);
    for (let a = 0; a < n; a++) out[o + a] = logits[o + a]! - lse;
  }
  return out;
}

/** Samples an action from row `row` of batch x n log-probabilities (inverse CDF, one uniform draw). */
export function sampleRowFromLogProbs(logProbs: Float32Array, row: number, n: number, rng: Rng): number {
  const u = rng.next();
  let c = 0;
  for (let a = 0; a < n; a++) {
    c += Math.exp(logProbs[row * n + a]!);
    if (u < c) return a;
  }
  // rounding left u above the last cumulative sum: the last action with mass
  for (let a = n - 1; a > 0; a--) if (logProbs[row * n + a]! > -Infinity) return a;
  return 0;
}

/** Index of the largest entry in row `row` of batch x n scores (first on ties): logits, log-probabilities or probabilities alike. */
export function argmaxRow(x: Float32Array, row: number, n: number): number {
  let best = 0;
  for (let a = 1; a < n; a++) if (x[row * n + a]! > x[row * n + best]!) best = a;
  return best;
}

/** Fisher-Yates shuffle of 0..n-1 with the seeded Rng. */
export function permutation(n: number, rng: Rng, out: Int32Array = new Int32Array(n)): Int32Array {
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/** Mean and standard deviation (unbiased, as torch.std) of x[from..to). */
export function meanStd(x: ArrayLike<number>, from = 0, to = x.length): { mean: number; std: number } {
  const n = to - from;
  let mean = 0;
  for (let i = from; i < to; i++) mean += x[i]!;
  mean /= n;
  let sq = 0;
  for (let i = from; i < to; i++) sq += (x[i]! - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(sq / (n - 1)) : 0 };
}

/** Count, mean and variance of a stream of numbers (Welford), serialisable. */
export class RunningMoments {
  n = 0;
  mean = 0;
  private m2 = 0;

  add(x: number): void {
    this.n++;
    const d = x - this.mean;
    this.mean += d / this.n;
    this.m2 += d * (x - this.mean);
  }

  /** Population standard deviation (0 before two samples). */
  std(): number {
    return this.n > 1 ? Math.sqrt(this.m2 / this.n) : 0;
  }

  toJSON(): { n: number; mean: number; m2: number } {
    return { n: this.n, mean: this.mean, m2: this.m2 };
  }

  load(s: { n: number; mean: number; m2: number }): void {
    this.n = s.n;
    this.mean = s.mean;
    this.m2 = s.m2;
  }
}

/** log sum_a exp(logits[o + a]) over one row of A logits, shifted by the row's max for stability. */
export function rowLogSumExp(logits: Float32Array, o: number, A: number): number {
  const max = rowMax(logits, o, A);
  let sum = 0;
  for (let a = 0; a < A; a++) sum += Math.exp(logits[o + a]! - max);
  return max + Math.log(sum);
}

/** Entropy of the softmax of one row of A logits, given its log-sum-exp. */
export function rowEntropy(logits: Float32Array, o: number, A: number, lse: number): number {
  let h = 0;
  for (let a = 0; a < A; a++) {
    const lp = logits[o + a]! - lse;
    h -= Math.exp(lp) * lp;
  }
  return h;
}
