/**
 * A small IMPALA-style convolutional network (Espeholt et al. 2018, the
 * network of the procgen maze papers) for image observations:
 *
 *   for each stack: conv 3x3 -> max pool 3x3 stride 2 -> residual blocks
 *                   (each x + conv(relu(conv(relu(x)))))
 *   relu -> flatten -> dense (ReLU) -> linear heads (policy logits, value)
 *
 * Sizes come from the config (cnnConfigSchema). Weights live in tf.Variables
 * (saving, loading); both acting and training run on raw buffers through the
 * Matmul of agents/shared/backend.ts (ConvPass: im2col convolutions on the
 * wasm multiply, kernels in conv.ts), never through tfjs operations. One
 * forward serves acting, training and inspection: every op's output is a
 * named layer that can be recorded and edited (agents/shared/activations.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { type Static, Type } from "@sinclair/typebox";
import type { Rng } from "../../envs/rng.ts";
import { type ActivationEdit, type ImageShape, type InspectResult, type LayerInfo, applyEdits, editsByLayer } from "./activations.ts";
import { type MatBuffer, type Matmul, createMatmul } from "./backend.ts";
import { ConvKernel, type ConvScratch, convScratchSizes, maxPool, maxPoolBackward, poolSide, relu, reluBackward } from "./conv.ts";
import { int } from "./config.ts";
import { orthogonal, readFlat } from "./networks.ts";

/** The convolutional network's sizes (ajv fills the defaults). */
export const cnnConfigSchema = Type.Object(
  {
    channels: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 128 }), {
        minItems: 1,
        maxItems: 4,
        default: [8, 16, 16],
        description: "Output channels of each conv stack (conv 3x3, max pool 3x3 stride 2, residual blocks)",
      }),
    ),
    resBlocks: int(1, "Residual blocks per stack", { minimum: 0, maximum: 4 }),
    dense: int(128, "Units of the dense ReLU layer after the stacks", { minimum: 1, maximum: 2048 }),
  },
  { additionalProperties: false, default: {}, description: 'Sizes of the convolutional network (network "cnn")' },
);
export type CnnConfig = Required<Static<typeof cnnConfigSchema>>;

/** What a ConvNet is built from: the input image, the sizes, and its output heads (sizes and init gains). */
export interface ConvArch {
  image: ImageShape;
  config: CnnConfig;
  heads: { size: number; gain: number }[];
}

type Shape3 = [number, number, number];
const size3 = (s: Shape3) => s[0] * s[1] * s[2];

/** One op of the network: its output is the named layer; x -> y, and the gradient back. */
interface Op {
  readonly name: string;
  readonly out: Shape3;
  readonly numParams: number;
  setParams(flat: Float32Array, offset: number): void;
  forward(x: MatBuffer, y: MatBuffer, n: number): void;
  /** Writes this op's parameter gradients into grads[offset..] and, when dx is given, the input gradient. */
  backward(x: MatBuffer, y: MatBuffer, dy: MatBuffer, dx: MatBuffer | null, n: number, grads: Float32Array, offset: number): void;
  flops(): number;
  dispose(): void;
}

/** Scratch shared by a pass's ops: the convolutions' (ConvScratch) and two activation-sized buffers. */
interface Scratch extends ConvScratch {
  a: MatBuffer;
  b: MatBuffer;
}

class ConvOp implements Op {
  readonly kernel: ConvKernel;
  readonly out: Shape3;
  readonly numParams: number;
  constructor(
    readonly name: string,
    mm: Matmul,
    inp: Shape3,
    cout: number,
    private readonly s: Scratch,
  ) {
    this.kernel = new ConvKernel(mm, inp[0], inp[1], inp[2], cout, 3);
    this.out = [inp[0], inp[1], cout];
    this.numParams = this.kernel.numParams;
  }
  setParams(flat: Float32Array, offset: number): void {
    this.kernel.setParams(flat, offset);
  }
  forward(x: MatBuffer, y: MatBuffer, n: number): void {
    this.kernel.forward(x, n, y, this.s.cols);
  }
  backward(x: MatBuffer, _y: MatBuffer, dy: MatBuffer, dx: MatBuffer | null, n: number, grads: Float32Array, offset: number): void {
    this.kernel.backward(x, dy, n, grads, offset, dx, this.s);
  }
  flops(): number {
    return this.kernel.flops;
  }
  dispose(): void {
    this.kernel.dispose();
  }
}

class PoolOp implements Op {
  readonly out: Shape3;
  readonly numParams = 0;
  private readonly argmax: Int32Array;
  constructor(
    readonly name: string,
    private readonly inp: Shape3,
    maxRows: number,
  ) {
    this.out = [poolSide(inp[0]), poolSide(inp[1]), inp[2]];
    this.argmax = new Int32Array(maxRows * size3(this.out));
  }
  setParams(): void {}
  forward(x: MatBuffer, y: MatBuffer, n: number): void {
    maxPool(x.view(), n, this.inp[0], this.inp[1], this.inp[2], y.view(), this.argmax);
  }
  backward(_x: MatBuffer, _y: MatBuffer, dy: MatBuffer, dx: MatBuffer | null, n: number): void {
    if (dx) maxPoolBackward(dy.view(), n * size3(this.out), this.argmax, dx.view(), n * size3(this.inp));
  }
  flops(): number {
    return 0;
  }
  dispose(): void {}
}

/** x + conv2(relu(conv1(relu(x)))), IMPALA's residual block. */
class ResOp implements Op {
  readonly numParams: number;
  private readonly c1: ConvKernel;
  private readonly c2: ConvKernel;
  /** relu(x) and relu(conv1(relu(x))), kept for the backward pass. */
  private readonly t1: MatBuffer;
  private readonly t2: MatBuffer;
  constructor(
    readonly name: string,
    private readonly mm: Matmul,
    readonly out: Shape3,
    maxRows: number,
    private readonly s: Scratch,
  ) {
    const [h, w, c] = out;
    this.c1 = new ConvKernel(mm, h, w, c, c, 3);
    this.c2 = new ConvKernel(mm, h, w, c, c, 3);
    this.t1 = mm.alloc(maxRows * size3(out));
    this.t2 = mm.alloc(maxRows * size3(out));
    this.numParams = 2 * this.c1.numParams;
  }
  setParams(flat: Float32Array, offset: number): void {
    this.c1.setParams(flat, offset);
    this.c2.setParams(flat, offset + this.c1.numParams);
  }
  forward(x: MatBuffer, y: MatBuffer, n: number): void {
    const size = n * size3(this.out);
    relu(x.view(), this.t1.view(), size);
    this.c1.forward(this.t1, n, this.t2, this.s.cols, true);
    this.c2.forward(this.t2, n, y, this.s.cols);
    const [yv, xv] = [y.view(), x.view()];
    for (let i = 0; i < size; i++) yv[i]! += xv[i]!;
  }
  backward(_x: MatBuffer, _y: MatBuffer, dy: MatBuffer, dx: MatBuffer | null, n: number, grads: Float32Array, offset: number): void {
    const size = n * size3(this.out);
    const { a: dt2, b: dt1 } = this.s;
    this.c2.backward(this.t2, dy, n, grads, offset + this.c1.numParams, dt2, this.s);
    reluBackward(dt2.view(), this.t2.view(), dt2.view(), size);
    this.c1.backward(this.t1, dt2, n, grads, offset, dx ? dt1 : null, this.s);
    if (!dx) return;
    dx.view().set(dy.view().subarray(0, size));
    reluBackward(dt1.view(), this.t1.view(), dx.view(), size, true);
  }
  flops(): number {
    return this.c1.flops + this.c2.flops;
  }
  dispose(): void {
    this.c1.dispose();
    this.c2.dispose();
    this.mm.free(this.t1);
    this.mm.free(this.t2);
  }
}

/** y = x W + b on flattened samples, with ReLU on its input (inReLU) and on its output (outReLU). */
class DenseOp implements Op {
  readonly out: Shape3;
  readonly numParams: number;
  private readonly w: MatBuffer;
  private readonly b: MatBuffer;
  private readonly wT: MatBuffer;
  /** relu(x) when inReLU (else unused), its transpose with a ones row, d loss / d z, [dW; db]. */
  private readonly f: MatBuffer;
  private readonly fT: MatBuffer;
  private readonly dz: MatBuffer;
  private readonly dWb: MatBuffer;
  private nFlops = 0;
  constructor(
    readonly name: string,
    private readonly mm: Matmul,
    private readonly nIn: number,
    private readonly nOut: number,
    private readonly inReLU: boolean,
    private readonly outReLU: boolean,
    maxRows: number,
    training: boolean,
  ) {
    this.out = [1, 1, nOut];
    this.numParams = nIn * nOut + nOut;
    this.w = mm.alloc(nIn * nOut);
    this.b = mm.alloc(nOut);
    this.wT = mm.alloc(nOut * nIn);
    this.f = mm.alloc(inReLU ? maxRows * nIn : 0);
    this.fT = mm.alloc(training ? (nIn + 1) * maxRows : 0);
    this.dz = mm.alloc(training ? maxRows * nOut : 0);
    this.dWb = mm.alloc(training ? (nIn + 1) * nOut : 0);
  }
  setParams(flat: Float32Array, offset: number): void {
    const [n, k] = [this.nIn, this.nOut];
    this.w.view().set(flat.subarray(offset, offset + n * k));
    this.b.view().set(flat.subarray(offset + n * k, offset + n * k + k));
    const wT = this.wT.view();
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) wT[j * n + i] = flat[offset + i * k + j]!;
    for (const buf of [this.w, this.b, this.wT]) buf.touch();
  }
  forward(x: MatBuffer, y: MatBuffer, n: number): void {
    const input = this.inReLU ? this.f : x;
    if (this.inReLU) relu(x.view(), this.f.view(), n * this.nIn);
    this.mm.matmul(input, this.w, y, n, this.nIn, this.nOut, this.b, false, this.outReLU);
    this.nFlops += 2 * n * this.nIn * this.nOut;
  }
  backward(x: MatBuffer, y: MatBuffer, dy: MatBuffer, dx: MatBuffer | null, n: number, grads: Float32Array, offset: number): void {
    const [F, K] = [this.nIn, this.nOut];
    const dz = this.dz.view();
    if (this.outReLU) reluBackward(dy.view(), y.view(), dz, n * K);
    else dz.set(dy.view().subarray(0, n * K));
    this.dz.touch();
    const f = (this.inReLU ? this.f : x).view();
    const fT = this.fT.view();
    for (let i = 0; i < n; i++) for (let j = 0; j < F; j++) fT[j * n + i] = f[i * F + j]!;
    fT.fill(1, F * n, (F + 1) * n);
    this.mm.matmul(this.fT, this.dz, this.dWb, F + 1, n, K);
    grads.set(this.dWb.view().subarray(0, this.numParams), offset);
    this.nFlops += 2 * (F + 1) * n * K;
    if (!dx) return;
    this.mm.matmul(this.dz, this.wT, dx, n, K, F);
    this.nFlops += 2 * n * K * F;
    if (this.inReLU) reluBackward(dx.view(), f, dx.view(), n * F);
  }
  flops(): number {
    return this.nFlops;
  }
  dispose(): void {
    for (const buf of [this.w, this.b, this.wT, this.f, this.fT, this.dz, this.dWb]) this.mm.free(buf);
  }
}

/** The ops' plan (names, shapes, parameter shapes) for an architecture, without buffers. */
export interface ConvPlanEntry {
  name: string;
  kind: "conv" | "pool" | "res" | "dense";
  inp: Shape3;
  out: Shape3;
  /** Variable shapes in order (kernel, bias, ...). */
  params: number[][];
}

export function convPlan(arch: ConvArch): ConvPlanEntry[] {
  const { image, config, heads } = arch;
  const plan: ConvPlanEntry[] = [];
  let cur: Shape3 = [image.height, image.width, image.channels];
  config.channels.forEach((ch, i) => {
    const convOut: Shape3 = [cur[0], cur[1], ch];
    plan.push({ name: `s${i}/conv`, kind: "conv", inp: cur, out: convOut, params: [[3, 3, cur[2], ch], [ch]] });
    const pooled: Shape3 = [poolSide(cur[0]), poolSide(cur[1]), ch];
    plan.push({ name: `s${i}/pool`, kind: "pool", inp: convOut, out: pooled, params: [] });
    for (let j = 0; j < config.resBlocks; j++) {
      plan.push({ name: `s${i}/res${j}`, kind: "res", inp: pooled, out: pooled, params: [[3, 3, ch, ch], [ch], [3, 3, ch, ch], [ch]] });
    }
    cur = pooled;
  });
  const flat = size3(cur);
  plan.push({ name: "fc", kind: "dense", inp: cur, out: [1, 1, config.dense], params: [[flat, config.dense], [config.dense]] });
  const outSize = heads.reduce((s, h) => s + h.size, 0);
  plan.push({ name: "out", kind: "dense", inp: [1, 1, config.dense], out: [1, 1, outSize], params: [[config.dense, outSize], [outSize]] });
  return plan;
}

/** Options of one forward: activations to record (layer -> copy) and edits to apply, by layer. */
export interface ForwardHooks {
  record?: ReadonlySet<string>;
  edits?: ReadonlyMap<string, ActivationEdit[]>;
  recorded?: Record<string, Float32Array>;
}

/**
 * One ConvNet's forward and backward on raw buffers, for up to maxRows
 * samples: the training pass (the gradient of every parameter into a flat
 * vector in variable order) and, with training false, the acting pass.
 * Same maths as tfjs autodiff through the same network (test:
 * test/agents/shared/convnet.test.ts).
 */
export class ConvPass {
  readonly numParams: number;
  private readonly ops: Op[];
  private readonly acts: MatBuffer[];
  private readonly grads: MatBuffer[];
  private readonly input: MatBuffer;
  private readonly scratch: Scratch;
  private readonly image: ImageShape;
  rows = 0;

  constructor(
    readonly arch: ConvArch,
    private readonly mm: Matmul,
    readonly maxRows: number,
    readonly training = true,
  ) {
    const plan = convPlan(arch);
    this.image = arch.image;
    const maxAct = Math.max(...plan.map((p) => size3(p.out)), size3(plan[0]!.inp));
    const convs = plan.filter((p) => p.kind === "conv" || p.kind === "res");
    const sizes = convs.map((p) => convScratchSizes(maxRows, p.inp[0], p.inp[1], p.inp[2], p.out[2], 3));
    const most = (key: "cols" | "xT" | "dyPad") => Math.max(...sizes.map((z) => z[key]));
    this.scratch = {
      // forward only needs the columns of the unpadded grid
      cols: mm.alloc(training ? most("cols") : Math.max(...convs.map((p) => maxRows * p.inp[0] * p.inp[1] * 9 * p.inp[2]))),
      xT: mm.alloc(training ? most("xT") : 0),
      dyPad: mm.alloc(training ? most("dyPad") : 0),
      a: mm.alloc(training ? maxRows * maxAct : 0),
      b: mm.alloc(training ? maxRows * maxAct : 0),
    };
    this.input = mm.alloc(maxRows * size3(plan[0]!.inp));
    this.ops = plan.map((p, i) => this.makeOp(p, i === plan.length - 1));
    this.acts = plan.map((p) => mm.alloc(maxRows * size3(p.out)));
    this.grads = training ? plan.map((p) => mm.alloc(maxRows * size3(p.out))) : [];
    this.numParams = this.ops.reduce((s, o) => s + o.numParams, 0);
  }

  private makeOp(p: ConvPlanEntry, last: boolean): Op {
    const { mm, maxRows, scratch } = this;
    if (p.kind === "conv") return new ConvOp(p.name, mm, p.inp, p.out[2], scratch);
    if (p.kind === "pool") return new PoolOp(p.name, p.inp, maxRows);
    if (p.kind === "res") return new ResOp(p.name, mm, p.out, maxRows, scratch);
    return new DenseOp(p.name, mm, size3(p.inp), p.out[2], !last, !last, maxRows, this.training);
  }

  /** FLOPs of the multiplies so far (2 per multiply-add). */
  get flops(): number {
    return this.ops.reduce((s, o) => s + o.flops(), 0);
  }

  /** Loads the weights from a flat vector in variable order, from `offset`. */
  setParams(flat: Float32Array, offset = 0): void {
    let o = offset;
    for (const op of this.ops) {
      op.setParams(flat, o);
      o += op.numParams;
    }
  }

  /** Writes m observations into the input buffer as [m, H, W, C] (transposing channel-first planes). */
  private load(obs: Float32Array, m: number): void {
    if (m > this.maxRows) throw new RangeError(`ConvPass: ${m} rows, built for at most ${this.maxRows}`);
    const { height: H, width: W, channels: C, layout } = this.image;
    const S = H * W * C;
    const x = this.input.view();
    if (layout === "hwc") x.set(obs.subarray(0, m * S));
    else {
      for (let s = 0; s < m; s++) {
        const o = s * S;
        for (let c = 0; c < C; c++) for (let p = 0; p < H * W; p++) x[o + p * C + c] = obs[o + c * H * W + p]!;
      }
    }
    this.rows = m;
  }

  /** Forward of m observations; returns a view of the outputs (m x outputs, valid until the next call). */
  forward(obs: Float32Array, m: number, hooks?: ForwardHooks): Float32Array {
    this.load(obs, m);
    let x = this.input;
    for (let i = 0; i < this.ops.length; i++) {
      const op = this.ops[i]!;
      const y = this.acts[i]!;
      op.forward(x, y, m);
      if (hooks) this.hook(op, y, m, hooks);
      x = y;
    }
    return x.view().subarray(0, m * size3(this.ops.at(-1)!.out));
  }

  /** Applies the edits on an op's output and copies it where recorded ("out" is the layers "logits" and "value"). */
  private hook(op: Op, y: MatBuffer, m: number, hooks: ForwardHooks): void {
    if (op.name !== "out") {
      const info: LayerInfo = { name: op.name, shape: [...op.out] };
      const edits = hooks.edits?.get(op.name);
      if (edits) applyEdits(info, y.view(), m, edits);
      if (hooks.record?.has(op.name) && hooks.recorded) hooks.recorded[op.name] = y.view().slice(0, m * size3(op.out));
      return;
    }
    // the output's first head is the policy's logits: edits on "logits" apply to those columns
    const A = this.arch.heads[0]!.size;
    const K = op.out[2];
    const edits = hooks.edits?.get("logits");
    if (!edits && !hooks.record?.has("logits")) return;
    const out = y.view();
    const logits = new Float32Array(m * A);
    for (let s = 0; s < m; s++) logits.set(out.subarray(s * K, s * K + A), s * A);
    if (edits) {
      applyEdits({ name: "logits", shape: [A] }, logits, m, edits);
      for (let s = 0; s < m; s++) out.set(logits.subarray(s * A, (s + 1) * A), s * K);
    }
    if (hooks.record?.has("logits") && hooks.recorded) hooks.recorded.logits = logits;
  }

  /** Gradients of the last forward's m rows from dOut = d loss / d outputs (m x outputs), into grads[offset..] in variable order. */
  backward(dOut: Float32Array, m: number, grads: Float32Array, offset = 0): void {
    if (!this.training) throw new Error("ConvPass: backward() on a forward-only pass");
    if (m !== this.rows) throw new RangeError(`ConvPass: backward of ${m} rows after a forward of ${this.rows}`);
    const last = this.ops.length - 1;
    this.grads[last]!.view().set(dOut.subarray(0, m * size3(this.ops[last]!.out)));
    const at: number[] = [];
    let o = offset;
    for (const op of this.ops) {
      at.push(o);
      o += op.numParams;
    }
    for (let i = last; i >= 0; i--) {
      const x = i === 0 ? this.input : this.acts[i - 1]!;
      const dx = i === 0 ? null : this.grads[i - 1]!;
      this.ops[i]!.backward(x, this.acts[i]!, this.grads[i]!, dx, m, grads, at[i]!);
    }
  }

  dispose(): void {
    for (const op of this.ops) op.dispose();
    for (const b of [
      ...this.acts,
      ...this.grads,
      this.input,
      this.scratch.cols,
      this.scratch.xT,
      this.scratch.dyPad,
      this.scratch.a,
      this.scratch.b,
    ])
      this.mm.free(b);
  }
}

/** torch's default init of a conv kernel or bias: uniform within 1 / sqrt(fan in). */
function uniformInit(size: number, fanIn: number, rng: Rng): Float32Array {
  const bound = 1 / Math.sqrt(fanIn);
  return Float32Array.from({ length: size }, () => (2 * rng.next() - 1) * bound);
}

/** The dense head's kernel: each head's columns orthogonal with its own gain (CleanRL: policy 0.01, value 1). */
function headInit(nIn: number, heads: ConvArch["heads"], rng: Rng): Float32Array {
  const outSize = heads.reduce((s, h) => s + h.size, 0);
  const w = new Float32Array(nIn * outSize);
  let col = 0;
  for (const h of heads) {
    const part = orthogonal(nIn, h.size, h.gain, rng);
    for (let i = 0; i < nIn; i++) for (let j = 0; j < h.size; j++) w[i * outSize + col + j] = part[i * h.size + j]!;
    col += h.size;
  }
  return w;
}

/** Initial values of every variable of the plan, in order (seeded). */
function initialValues(plan: ConvPlanEntry[], arch: ConvArch, rng: Rng): Float32Array[] {
  const out: Float32Array[] = [];
  for (const p of plan) {
    if (p.kind === "conv" || p.kind === "res") {
      for (let i = 0; i < p.params.length; i += 2) {
        const [kh, kw, cin, cout] = p.params[i]! as [number, number, number, number];
        out.push(uniformInit(kh * kw * cin * cout, kh * kw * cin, rng), uniformInit(cout, kh * kw * cin, rng));
      }
    } else if (p.kind === "dense") {
      const [nIn, nOut] = p.params[0]! as [number, number];
      out.push(p.name === "out" ? headInit(nIn, arch.heads, rng) : orthogonal(nIn, nOut, Math.SQRT2, rng), new Float32Array(nOut));
    }
  }
  return out;
}

/**
 * The network: its variables (tf.Variables, for saving and loading), its
 * layers, and a batched forward for acting and inspection on the current
 * backend's multiply (reloaded after syncJS(), once per update). The
 * forward of the MLP and this one answer the same calls, so learners hold either.
 */
export class ConvNet {
  readonly variables: tf.Variable[];
  readonly outputSize: number;
  readonly plan: ConvPlanEntry[];
  /** Counts syncJS() calls: the acting pass reloads its weights when it moves. */
  weightsVersion = 0;
  private acting: { backend: string; rows: number; mm: Matmul; pass: ConvPass; version: number } | null = null;

  constructor(
    readonly arch: ConvArch,
    rng: Rng,
  ) {
    this.plan = convPlan(arch);
    this.outputSize = arch.heads.reduce((s, h) => s + h.size, 0);
    const shapes = this.plan.flatMap((p) => p.params);
    const values = initialValues(this.plan, arch, rng);
    // unnamed: tfjs variable names are global, and two agents may coexist
    this.variables = values.map((v, i) => tf.tidy(() => tf.variable(tf.tensor(v, shapes[i]!), true)));
  }

  get inputSize(): number {
    const { height, width, channels } = this.arch.image;
    return height * width * channels;
  }

  /** The layers a forward can record and edit: every op's output, then the policy's logits. */
  layers(): LayerInfo[] {
    return [
      ...this.plan.filter((p) => p.name !== "out").map((p) => ({ name: p.name, shape: p.kind === "dense" ? [p.out[2]] : [...p.out] })),
      { name: "logits", shape: [this.arch.heads[0]!.size] },
    ];
  }

  /** Marks the variables changed: the next forward reloads them. */
  syncJS(): void {
    this.weightsVersion++;
  }

  private pass(batch: number): ConvPass {
    const backend = tf.getBackend();
    let a = this.acting;
    if (!a || a.backend !== backend || a.rows < batch) {
      this.disposeActing();
      const mm = createMatmul();
      const rows = Math.max(batch, a?.rows ?? 0);
      a = this.acting = { backend, rows, mm, pass: new ConvPass(this.arch, mm, rows, false), version: -1 };
    }
    if (a.version !== this.weightsVersion) {
      a.pass.setParams(readFlat(this.variables));
      a.version = this.weightsVersion;
    }
    return a.pass;
  }

  /** Outputs of `batch` observations (batch x outputSize) into `out`, with edits and recording through `hooks`. */
  forwardJS(
    obs: Float32Array,
    batch: number,
    out: Float32Array = new Float32Array(batch * this.outputSize),
    hooks?: ForwardHooks,
  ): Float32Array {
    out.set(this.pass(batch).forward(obs, batch, hooks));
    return out;
  }

  /** forwardJS with activations recorded and edited (activations.ts); logits, and values where the second head has one unit. */
  forwardInspect(obs: Float32Array, batch: number, record: readonly string[], edits: readonly ActivationEdit[]): InspectResult {
    const recorded: Record<string, Float32Array> = {};
    const out = this.forwardJS(obs, batch, undefined, { record: new Set(record), edits: editsByLayer(edits), recorded });
    const [A, K] = [this.arch.heads[0]!.size, this.outputSize];
    const logits = new Float32Array(batch * A);
    for (let s = 0; s < batch; s++) logits.set(out.subarray(s * K, s * K + A), s * A);
    const result: InspectResult = { logits, recorded };
    if (K === A + 1) result.values = Float32Array.from({ length: batch }, (_, s) => out[s * K + A]!);
    return result;
  }

  /** The weights under stable names ("s0/conv/kernel", "s0/res0/conv1/bias", "fc/kernel", ...), for saving. */
  namedVariables(prefix: string): Record<string, tf.Variable> {
    const names = this.plan.flatMap((p) => {
      if (p.kind === "res") return ["conv1/kernel", "conv1/bias", "conv2/kernel", "conv2/bias"].map((n) => `${p.name}/${n}`);
      return p.params.map((_, i) => `${p.name}/${i % 2 === 0 ? "kernel" : "bias"}`);
    });
    return Object.fromEntries(names.map((n, i) => [`${prefix}/${n}`, this.variables[i]!]));
  }

  private disposeActing(): void {
    this.acting?.pass.dispose();
    this.acting = null;
  }

  dispose(): void {
    this.disposeActing();
    for (const v of this.variables) v.dispose();
  }
}

/**
 * A ConvNet's training pass for batches of any size, in chunks of at most
 * `chunk` rows (the activations of a convolutional network take memory in
 * proportion to the rows): forward() keeps only the outputs; backward()
 * runs each chunk's forward again and accumulates its gradient. The same
 * calls as MLPPass (setParams, forward, backward), so learners hold either.
 */
export class ConvTrainer {
  readonly numParams: number;
  /** Outputs per row. */
  readonly outputs: number;
  private readonly pass: ConvPass;
  private obs: Float32Array | null = null;
  private out: Float32Array;
  private part: Float32Array;

  constructor(
    readonly arch: ConvArch,
    mm: Matmul,
    readonly chunk = 256,
  ) {
    this.pass = new ConvPass(arch, mm, chunk);
    this.numParams = this.pass.numParams;
    this.outputs = arch.heads.reduce((s, h) => s + h.size, 0);
    this.out = new Float32Array(0);
    this.part = new Float32Array(this.numParams);
  }

  get flops(): number {
    return this.pass.flops;
  }

  setParams(flat: Float32Array, offset = 0): void {
    this.pass.setParams(flat, offset);
  }

  private get inputSize(): number {
    const { height, width, channels } = this.arch.image;
    return height * width * channels;
  }

  /** Outputs of m observations (m x outputs; valid until the next call). */
  forward(obs: Float32Array, m: number): Float32Array {
    const K = this.outputs;
    if (this.out.length < m * K) this.out = new Float32Array(m * K);
    const S = this.inputSize;
    for (let at = 0; at < m; at += this.chunk) {
      const rows = Math.min(this.chunk, m - at);
      this.out.set(this.pass.forward(obs.subarray(at * S, (at + rows) * S), rows), at * K);
    }
    this.obs = obs;
    return this.out.subarray(0, m * K);
  }

  /** Gradients of the last forward's m rows from dOut (m x outputs), into grads[offset..] in variable order. */
  backward(dOut: Float32Array, m: number, grads: Float32Array, offset = 0): void {
    if (!this.obs) throw new Error("ConvTrainer: forward() before backward()");
    if (m <= this.chunk) {
      // the pass still holds this chunk's activations
      this.pass.backward(dOut, m, grads, offset);
      return;
    }
    const K = this.outputs;
    const S = this.inputSize;
    grads.fill(0, offset, offset + this.numParams);
    for (let at = 0; at < m; at += this.chunk) {
      const rows = Math.min(this.chunk, m - at);
      this.pass.forward(this.obs.subarray(at * S, (at + rows) * S), rows);
      this.pass.backward(dOut.subarray(at * K, (at + rows) * K), rows, this.part, 0);
      for (let i = 0; i < this.numParams; i++) grads[offset + i]! += this.part[i]!;
    }
  }

  dispose(): void {
    this.pass.dispose();
  }
}
