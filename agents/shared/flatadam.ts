/**
 * Adam over one flat parameter vector, in WebAssembly SIMD (two float64 lanes)
 * where the runtime has it, else in plain JavaScript: the same rule as
 * adamStepFlat (agents/shared/networks.ts), operation for operation in float64, so
 * both give the same bits (test/agents/shared/flatadam.test.ts checks it on random
 * vectors, clipping included). PPO's optimiser step was 18% of its update in
 * JavaScript (a square root and a division per parameter, 28k parameters,
 * 16 times per update).
 *
 * The module is assembled below from its instructions (no toolchain, no
 * binary file): one memory holding params, grads, m and v, and two functions,
 * `sumsq` (the gradient's squared norm, summed in index order like the
 * JavaScript loop, so the clipping scale is identical) and `adam` (the
 * moments and the parameter step, two parameters per iteration).
 */
import type * as tf from "@tensorflow/tfjs";
import { type Adam, type AdamOptions, adamStepFlat, type FlatAdamState, readFlat, writeFlat } from "./networks.ts";

// --- a tiny WebAssembly assembler: just what the two functions need ---------

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (d: number) => [0x0c, d],
  brIf: (d: number) => [0x0d, d],
  get: (i: number) => [0x20, i],
  set: (i: number) => [0x21, i],
  tee: (i: number) => [0x22, i],
  i32Const: (n: number) => [0x41, ...uleb(n)], // non-negative below 64 only (signed LEB)
  i32Add: [0x6a],
  i32GeU: [0x4f],
  f32Load: [0x2a, 2, 0],
  f64PromoteF32: [0xbb],
  f64Const0: [0x44, 0, 0, 0, 0, 0, 0, 0, 0],
  f64Add: [0xa0],
  f64Mul: [0xa2],
  // SIMD: prefix 0xfd then the opcode as LEB128
  simd: (code: number, ...rest: number[]) => [0xfd, ...uleb(code), ...rest],
};
const load2 = op.simd(0x5d, 2, 0); // v128.load64_zero: two float32
const promote = op.simd(0x5f); // f64x2.promote_low_f32x4
const demote = op.simd(0x5e); // f32x4.demote_f64x2_zero
const store2 = op.simd(0x5b, 2, 0, 0); // v128.store64_lane, lane 0: two float32
const splat = op.simd(0x14); // f64x2.splat
const [add2, sub2, mul2, div2, sqrt2] = [0xf0, 0xf1, 0xf2, 0xf3, 0xef].map((c) => op.simd(c));

// a loop over byte offsets: leave the enclosing block once local `at` reaches local `end`; step `at` and branch back
const exitWhenPast = (at: number, end: number) => [...op.get(at), ...op.get(end), ...op.i32GeU, ...op.brIf(1)];
const advance = (at: number, bytes: number) => [...op.get(at), ...op.i32Const(bytes), ...op.i32Add, ...op.set(at), ...op.br(0)];

/** sumsq(g, end) -> f64: sum of g[i]^2 over byte addresses [g, end), in order. */
function sumsqBody(): number[] {
  const [g, end, acc, x] = [0, 1, 2, 3];
  const square = [...op.get(g), ...op.f32Load, ...op.f64PromoteF32, ...op.tee(x), ...op.get(x), ...op.f64Mul];
  const code = [
    ...[...op.f64Const0, ...op.set(acc)],
    ...[...op.block, ...op.loop, ...exitWhenPast(g, end)],
    ...[...op.get(acc), ...square, ...op.f64Add, ...op.set(acc)],
    ...[...advance(g, 4), ...op.end, ...op.end],
    ...[...op.get(acc), ...op.end],
  ];
  const locals = vec([[2, F64]]);
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

/**
 * adam(p, g, m, v, bytes, scale, b1, c1, b2, c2, step, rbc2, eps), two
 * parameters per iteration over byte offsets [0, bytes):
 *   g' = g scale;  m = b1 m + c1 g';  v = b2 v + (c2 g') g';
 *   p = p - (step m) / (sqrt(v) rbc2 + eps)
 * with c1 = 1 - b1, c2 = 1 - b2, in float64 like the JavaScript rule.
 */
function adamBody(): number[] {
  const [P, G, M, V, BYTES] = [0, 1, 2, 3, 4];
  const [SCALE, B1, C1, B2, C2, STEP, RBC2, EPS] = [5, 6, 7, 8, 9, 10, 11, 12];
  const OFF = 13;
  const [gv, mv, vv, sScale, sB1, sC1, sB2, sC2, sStep, sRbc2, sEps] = [14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24];
  const get = op.get;
  const at = (base: number) => [...get(base), ...get(OFF), ...op.i32Add];
  // two float32 at base + OFF, as float64x2; and a float64x2 value stored there as two float32
  const read = (base: number) => [...at(base), ...load2, ...promote];
  const write = (base: number, value: number[]) => [...at(base), ...value, ...demote, ...store2];
  const splatScalars = [SCALE, B1, C1, B2, C2, STEP, RBC2, EPS].flatMap((p, i) => [...get(p), ...splat, ...op.set(sScale + i)]);
  // g' = g scale
  const scaled = [...read(G), ...get(sScale), ...mul2, ...op.set(gv)];
  // m = b1 m + c1 g'
  const moment1 = [...get(sB1), ...read(M), ...mul2, ...get(sC1), ...get(gv), ...mul2, ...add2, ...op.set(mv)];
  // v = b2 v + (c2 g') g'
  const moment2 = [...get(sB2), ...read(V), ...mul2, ...get(sC2), ...get(gv), ...mul2, ...get(gv), ...mul2, ...add2, ...op.set(vv)];
  // p - (step m) / (sqrt(v) rbc2 + eps)
  const denominator = [...get(vv), ...sqrt2, ...get(sRbc2), ...mul2, ...get(sEps), ...add2];
  const stepped = [...read(P), ...get(sStep), ...get(mv), ...mul2, ...denominator, ...div2, ...sub2];
  const code = [
    ...splatScalars,
    ...op.block,
    ...op.loop,
    ...exitWhenPast(OFF, BYTES),
    ...scaled,
    ...moment1,
    ...moment2,
    ...write(M, get(mv)),
    ...write(V, get(vv)),
    ...write(P, stepped),
    ...advance(OFF, 8),
    ...op.end,
    ...op.end,
    ...op.end,
  ];
  const locals = vec([
    [1, I32],
    [11, V128],
  ]);
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const sumsqType = [0x60, ...vec([[I32], [I32]]), ...vec([[F64]])];
  const adamType = [0x60, ...vec([I32, I32, I32, I32, I32, F64, F64, F64, F64, F64, F64, F64, F64].map((t) => [t])), ...vec([])];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([sumsqType, adamType])),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, 0x00]])),
    ...section(3, vec([[0], [1]])),
    ...section(
      7,
      vec([
        [...name("sumsq"), 0x00, 0],
        [...name("adam"), 0x00, 1],
      ]),
    ),
    ...section(10, vec([sumsqBody(), adamBody()])),
  ]);
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable (then FlatAdam runs adamStepFlat). */
function simdModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    compiled = new WebAssembly.Module(moduleBytes());
  } catch {
    compiled = null;
  }
  return compiled;
}

interface AdamExports {
  sumsq(g: number, end: number): number;
  adam(p: number, g: number, m: number, v: number, bytes: number, ...f64: number[]): void;
}

/**
 * Adam's state for `size` parameters, with a gradient buffer to fill before
 * each step(). The arrays are views of the module's memory (fixed size: they
 * stay valid); `simd` says which implementation runs.
 */
export class FlatAdam implements FlatAdamState {
  readonly params: Float32Array;
  readonly grads: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  t = 0;
  readonly simd: boolean;
  private readonly exports: AdamExports | null = null;
  /** Byte offsets of params, grads, m and v in the module's memory. */
  private readonly at: [number, number, number, number] = [0, 0, 0, 0];

  constructor(
    readonly size: number,
    opts: { simd?: boolean } = {},
  ) {
    const mod = opts.simd === false ? null : simdModule();
    // each array padded to an even length (two lanes per iteration; padding stays 0: g = 0 gives m = v = 0, step 0)
    const padded = size + (size % 2);
    if (mod) {
      const bytes = 4 * padded * 4;
      const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) || 1 });
      const instance = new WebAssembly.Instance(mod, { env: { memory } });
      this.exports = instance.exports as unknown as AdamExports;
      const arrays = [0, 1, 2, 3].map((i) => new Float32Array(memory.buffer, i * padded * 4, padded));
      this.at = [0, 1, 2, 3].map((i) => i * padded * 4) as [number, number, number, number];
      [this.params, this.grads, this.m, this.v] = arrays.map((a) => a.subarray(0, size)) as [
        Float32Array,
        Float32Array,
        Float32Array,
        Float32Array,
      ];
    } else {
      this.params = new Float32Array(size);
      this.grads = new Float32Array(size);
      this.m = new Float32Array(size);
      this.v = new Float32Array(size);
    }
    this.simd = this.exports !== null;
  }

  /** Loads the variables' values (in order) and the optimiser's moments and step count. */
  load(vars: readonly tf.Variable[], opt: Adam): this {
    readFlat(vars, this.params);
    readFlat([opt.m], this.m);
    readFlat([opt.v], this.v);
    this.t = opt.t;
    return this;
  }

  /** Writes the parameters back to the variables and the moments and step count to the optimiser. */
  store(vars: readonly tf.Variable[], opt: Adam): void {
    writeFlat(vars, this.params);
    writeFlat([opt.m], this.m);
    writeFlat([opt.v], this.v);
    opt.t = this.t;
  }

  /** One Adam step with the gradient in `grads` (clipped to `maxGradNorm` by global norm); returns the pre-clip norm. */
  step(lr: number, opts: AdamOptions, maxGradNorm: number | null): number {
    const e = this.exports;
    if (!e) return adamStepFlat(this, this.grads, lr, opts, maxGradNorm);
    this.t++;
    const { beta1, beta2, eps } = opts;
    const stepSize = lr / (1 - beta1 ** this.t);
    const rootBc2 = 1 / Math.sqrt(1 - beta2 ** this.t);
    const [p, g, m, v] = this.at;
    const norm = Math.sqrt(e.sumsq(g, g + 4 * this.size));
    const scale = maxGradNorm === null ? 1 : Math.min(1, maxGradNorm / (norm + 1e-6));
    const bytes = 4 * (this.size + (this.size % 2));
    e.adam(p, g, m, v, bytes, scale, beta1, 1 - beta1, beta2, 1 - beta2, stepSize, rootBc2, eps);
    return norm;
  }
}
