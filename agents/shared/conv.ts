/**
 * Convolution kernels on raw buffers, for the convolutional policy's forward
 * and backward passes without tfjs (whose wasm backend has no
 * Conv2DBackpropFilter kernel, and whose cpu backend is about 15 times slower
 * than wasm on these networks):
 *  - a k x k convolution, stride 1, "same" padding, as im2col and one matrix
 *    multiply on the project's Matmul (XNNPACK on wasm, plain loops elsewhere):
 *    y = cols(x) W + b; its weight and bias gradients are one multiply,
 *    [cols(x)^T; 1] dy (built on the zero-padded grid, where each row of
 *    cols^T is one contiguous copy); its input gradient is the convolution of dy with the
 *    kernel flipped in space and transposed in channels, again im2col and a multiply;
 *  - max pooling 3 x 3, stride 2, padding as TensorFlow's "same";
 *  - ReLU and its gradient.
 * Tensors are batches of n images, [n, height, width, channels] row-major
 * (tfjs's NHWC); kernels are [k, k, cin, cout] (tfjs's conv2d filter layout),
 * which read as a (k k cin) x cout matrix is exactly the multiply's right operand.
 * Each kernel is checked against tfjs on the cpu backend (test/agents/shared/conv.test.ts).
 */
import type { MatBuffer, Matmul } from "./backend.ts";

/**
 * im2col for a k x k "same" convolution of stride 1: row (s, y, x) of
 * `cols` ((n h w) x (k k c)) holds the k x k patch around (y, x) of image s,
 * column (dy k + dx) c + ch, zero where the patch leaves the image. A patch
 * row (k pixels of c channels) is contiguous in both x and cols: one
 * memmove each (copyWithin on the wasm heap when both live there).
 */
export function im2col(x: Float32Array, n: number, h: number, w: number, c: number, k: number, cols: Float32Array): void {
  const p = (k - 1) >> 1;
  const K = k * k * c;
  const shared = x.buffer === cols.buffer;
  const heap = shared ? new Float32Array(cols.buffer) : cols;
  const xo = shared ? x.byteOffset >> 2 : 0;
  const co = shared ? cols.byteOffset >> 2 : 0;
  const src = shared ? heap : x;
  const span = k * c;
  let row = 0;
  for (let s = 0; s < n; s++) {
    const img = xo + s * h * w * c;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++, row++) {
        const x0 = Math.max(xx - p, 0);
        const x1 = Math.min(xx + p + 1, w);
        const left = (x0 - xx + p) * c;
        const mid = (x1 - x0) * c;
        let o = co + row * K;
        for (let dy = 0; dy < k; dy++, o += span) {
          const sy = y + dy - p;
          if (sy < 0 || sy >= h) {
            heap.fill(0, o, o + span);
            continue;
          }
          if (left > 0) heap.fill(0, o, o + left);
          const from = img + (sy * w + x0) * c;
          // a few values copy faster in a loop than through a call
          if (mid <= 12) for (let i = 0; i < mid; i++) heap[o + left + i] = src[from + i]!;
          else if (shared) heap.copyWithin(o + left, from, from + mid);
          else heap.set(x.subarray(from, from + mid), o + left);
          if (left + mid < span) heap.fill(0, o + left + mid, o + span);
        }
      }
    }
  }
}

/**
 * The kernel the input gradient convolves with: flipped in space, channels
 * swapped: out[((k-1-dy) k + (k-1-dx)) cout + co][ci] = W[(dy k + dx) cin + ci][co],
 * a (k k cout) x cin matrix.
 */
export function flipKernel(wt: Float32Array, k: number, cin: number, cout: number, out: Float32Array, offset = 0): void {
  for (let dy = 0; dy < k; dy++) {
    for (let dx = 0; dx < k; dx++) {
      const from = offset + (dy * k + dx) * cin * cout;
      const to = ((k - 1 - dy) * k + (k - 1 - dx)) * cout * cin;
      for (let ci = 0; ci < cin; ci++) {
        for (let co = 0; co < cout; co++) out[to + co * cin + ci] = wt[from + ci * cout + co]!;
      }
    }
  }
}

/** Output side of a 3 x 3, stride-2 "same" max pool: ceil(side / 2). */
export function poolSide(side: number): number {
  return Math.ceil(side / 2);
}

/**
 * Max pooling 3 x 3, stride 2, TensorFlow's "same" padding (the padded cells
 * never win; top and left get the smaller half of the padding). Writes the
 * input index of each output's maximum into `argmax` (first of equal values
 * in row-major window order) for the backward pass.
 */
export function maxPool(x: Float32Array, n: number, h: number, w: number, c: number, y: Float32Array, argmax: Int32Array): void {
  const [ho, wo] = [poolSide(h), poolSide(w)];
  const padTop = Math.max((ho - 1) * 2 + 3 - h, 0) >> 1;
  const padLeft = Math.max((wo - 1) * 2 + 3 - w, 0) >> 1;
  let o = 0;
  for (let s = 0; s < n; s++) {
    const img = s * h * w * c;
    for (let oy = 0; oy < ho; oy++) {
      const y0 = Math.max(oy * 2 - padTop, 0);
      const y1 = Math.min(oy * 2 - padTop + 3, h);
      for (let ox = 0; ox < wo; ox++, o += c) {
        const x0 = Math.max(ox * 2 - padLeft, 0);
        const x1 = Math.min(ox * 2 - padLeft + 3, w);
        // the window's first square, then the others in row-major order, channels innermost
        const first = img + (y0 * w + x0) * c;
        for (let ch = 0; ch < c; ch++) {
          y[o + ch] = x[first + ch]!;
          argmax[o + ch] = first + ch;
        }
        for (let yy = y0; yy < y1; yy++) {
          for (let xx = yy === y0 ? x0 + 1 : x0; xx < x1; xx++) {
            const at = img + (yy * w + xx) * c;
            for (let ch = 0; ch < c; ch++) {
              if (x[at + ch]! > y[o + ch]!) {
                y[o + ch] = x[at + ch]!;
                argmax[o + ch] = at + ch;
              }
            }
          }
        }
      }
    }
  }
}

/** The max pool's input gradient: each output's gradient goes to its maximum (dx: `inSize` values, zeroed first). */
export function maxPoolBackward(dy: Float32Array, outSize: number, argmax: Int32Array, dx: Float32Array, inSize: number): void {
  dx.fill(0, 0, inSize);
  for (let o = 0; o < outSize; o++) dx[argmax[o]!]! += dy[o]!;
}

/** y = max(x, 0) over the first `size` values (y may be x). */
export function relu(x: Float32Array, y: Float32Array, size: number): void {
  for (let i = 0; i < size; i++) y[i] = Math.max(x[i]!, 0);
}

/** dx = dy where the ReLU's output y is positive, else 0 (dx may be dy); with `add`, dx += instead. */
export function reluBackward(dy: Float32Array, y: Float32Array, dx: Float32Array, size: number, add = false): void {
  if (add) for (let i = 0; i < size; i++) dx[i]! += y[i]! > 0 ? dy[i]! : 0;
  else for (let i = 0; i < size; i++) dx[i] = y[i]! > 0 ? dy[i]! : 0;
}

/** Scratch a convolution's passes write: columns, the padded transposed input and the padded output gradient. */
export interface ConvScratch {
  cols: MatBuffer;
  xT: MatBuffer;
  dyPad: MatBuffer;
}

/** The sizes of ConvScratch's buffers a k x k convolution of n images of h x w (cin -> cout) needs. */
export function convScratchSizes(
  n: number,
  h: number,
  w: number,
  cin: number,
  cout: number,
  k: number,
): { cols: number; xT: number; dyPad: number } {
  const p = (k - 1) >> 1;
  const Rp = n * (h + 2 * p) * (w + 2 * p);
  const margin = p * (w + 2 * p) + p;
  return {
    cols: Math.max(n * h * w * k * k * Math.max(cin, cout), (k * k * cin + 1) * Rp),
    xT: cin * (Rp + 2 * margin),
    dyPad: Rp * cout,
  };
}

/**
 * The weight gradient's left operand, [cols^T; 1], computed on the padded
 * grid (n images of (h + 2p) x (w + 2p)): the input is transposed once into
 * zero-padded planes, after which every row of cols^T, one (dy, dx, channel),
 * is a single contiguous shifted copy of its plane (instead of k k c strided
 * gathers per pixel). Border positions get zero output gradient (dyPad), so
 * they add nothing. Returns the padded grid's positions Rp.
 */
function paddedColsT(x: Float32Array, n: number, h: number, w: number, c: number, k: number, s: ConvScratch): number {
  const p = (k - 1) >> 1;
  const [Hp, Wp] = [h + 2 * p, w + 2 * p];
  const Rp = n * Hp * Wp;
  const margin = p * Wp + p;
  const plane = Rp + 2 * margin;
  const xT = s.xT.view();
  xT.fill(0, 0, c * plane);
  for (let img = 0; img < n; img++) {
    for (let y = 0; y < h; y++) {
      const to = margin + (img * Hp + y + p) * Wp + p;
      const from = (img * h + y) * w * c;
      for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) xT[ch * plane + to + xx] = x[from + xx * c + ch]!;
    }
  }
  const colsT = s.cols.view();
  const shared = xT.buffer === colsT.buffer;
  const heap = shared ? new Float32Array(colsT.buffer) : colsT;
  const [xo, co] = shared ? [xT.byteOffset >> 2, colsT.byteOffset >> 2] : [0, 0];
  for (let dy = 0; dy < k; dy++) {
    for (let dx = 0; dx < k; dx++) {
      const off = (dy - p) * Wp + (dx - p);
      for (let ch = 0; ch < c; ch++) {
        const row = co + ((dy * k + dx) * c + ch) * Rp;
        const from = ch * plane + margin + off;
        if (shared) heap.copyWithin(row, xo + from, xo + from + Rp);
        else heap.set(xT.subarray(from, from + Rp), row);
      }
    }
  }
  heap.fill(1, co + k * k * c * Rp, co + (k * k * c + 1) * Rp);
  return Rp;
}

/** The output gradient on the padded grid (zero on the border), rows of cout. */
function paddedDy(dy: Float32Array, n: number, h: number, w: number, cout: number, k: number, out: Float32Array): void {
  const p = (k - 1) >> 1;
  const [Hp, Wp] = [h + 2 * p, w + 2 * p];
  out.fill(0, 0, n * Hp * Wp * cout);
  for (let img = 0; img < n; img++) {
    for (let y = 0; y < h; y++) {
      const from = (img * h + y) * w * cout;
      out.set(dy.subarray(from, from + w * cout), ((img * Hp + y + p) * Wp + p) * cout);
    }
  }
}

/** A k x k, stride-1, "same" convolution layer on raw buffers: its weights in the multiply's buffers, forward and backward. */
export class ConvKernel {
  readonly K: number;
  readonly numParams: number;
  /** (k k cin) x cout kernel, cout bias, and the flipped kernel for the input gradient. */
  readonly w: MatBuffer;
  readonly b: MatBuffer;
  readonly wFlip: MatBuffer;
  /** [dW; db]: ((k k cin) + 1) x cout. */
  readonly dWb: MatBuffer;
  flops = 0;

  constructor(
    private readonly mm: Matmul,
    readonly h: number,
    readonly wd: number,
    readonly cin: number,
    readonly cout: number,
    readonly k: number,
  ) {
    this.K = k * k * cin;
    this.numParams = this.K * cout + cout;
    this.w = mm.alloc(this.K * cout);
    this.b = mm.alloc(cout);
    this.wFlip = mm.alloc(k * k * cout * cin);
    this.dWb = mm.alloc((this.K + 1) * cout);
  }

  /** Loads kernel then bias from a flat vector at `offset` (the variables' order). */
  setParams(flat: Float32Array, offset: number): void {
    this.w.view().set(flat.subarray(offset, offset + this.K * this.cout));
    this.b.view().set(flat.subarray(offset + this.K * this.cout, offset + this.numParams));
    flipKernel(flat, this.k, this.cin, this.cout, this.wFlip.view(), offset);
    this.w.touch();
    this.b.touch();
    this.wFlip.touch();
  }

  /** y = conv(x) + b for n images (then max(y, 0) when `relu`); `cols` is scratch of at least (n h w) x (k k cin). */
  forward(x: MatBuffer, n: number, y: MatBuffer, cols: MatBuffer, relu = false): void {
    const rows = n * this.h * this.wd;
    im2col(x.view(), n, this.h, this.wd, this.cin, this.k, cols.view());
    this.mm.matmul(cols, this.w, y, rows, this.K, this.cout, this.b, false, relu);
    this.flops += 2 * rows * this.K * this.cout;
  }

  /**
   * From dy = d loss / d y: the kernel and bias gradients into grads[offset..]
   * (kernel then bias), and when `dx` is given the input gradient into it.
   * `scratch` is sized by convScratchSizes.
   */
  backward(x: MatBuffer, dy: MatBuffer, n: number, grads: Float32Array, offset: number, dx: MatBuffer | null, scratch: ConvScratch): void {
    const [h, w, k] = [this.h, this.wd, this.k];
    const Rp = paddedColsT(x.view(), n, h, w, this.cin, k, scratch);
    paddedDy(dy.view(), n, h, w, this.cout, k, scratch.dyPad.view());
    scratch.dyPad.touch();
    this.mm.matmul(scratch.cols, scratch.dyPad, this.dWb, this.K + 1, Rp, this.cout);
    grads.set(this.dWb.view().subarray(0, this.numParams), offset);
    this.flops += 2 * (this.K + 1) * Rp * this.cout;
    if (!dx) return;
    const rows = n * h * w;
    const Kd = k * k * this.cout;
    im2col(dy.view(), n, h, w, this.cout, k, scratch.cols.view());
    this.mm.matmul(scratch.cols, this.wFlip, dx, rows, Kd, this.cin);
    this.flops += 2 * rows * Kd * this.cin;
  }

  dispose(): void {
    for (const b of [this.w, this.b, this.wFlip, this.dWb]) this.mm.free(b);
  }
}
