/**
 * The convolution kernels (agents/shared/conv.ts) against tfjs on the cpu
 * backend: the convolution's output and its kernel, bias and input gradients,
 * the max pool and its gradient, ReLU, on both multiplies (plain JavaScript
 * and XNNPACK on wasm).
 */
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { createMatmul, initBackend } from "../../../agents/shared/backend.ts";
import { ConvKernel, convScratchSizes, maxPool, maxPoolBackward, poolSide, relu, reluBackward } from "../../../agents/shared/conv.ts";
import { Rng } from "../../../envs/rng.ts";

const randn = (n: number, rng: Rng) => Float32Array.from({ length: n }, () => rng.normal());

/** Largest |a - b| relative to the largest |b| (1 at least). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 1;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

interface ConvCase {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
}

/** tfjs's conv2d, its gradients of sum(y * r) (cpu backend). */
async function reference(c: ConvCase, x: Float32Array, wt: Float32Array, b: Float32Array, r: Float32Array) {
  await initBackend("cpu");
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.cin]);
    const wtt = tf.tensor4d(wt, [c.k, c.k, c.cin, c.cout]);
    const bt = tf.tensor1d(b);
    const rt = tf.tensor4d(r, [c.n, c.h, c.w, c.cout]);
    const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
      tf.sum(tf.mul(tf.add(tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, 1, "same"), bi), rt)) as tf.Scalar;
    const y = tf.add(tf.conv2d(xt, wtt, 1, "same"), bt).dataSync() as Float32Array;
    const [dx, dw, db] = tf
      .grads(f)([xt, wtt, bt])
      .map((g) => g.dataSync() as Float32Array);
    return { y: Float32Array.from(y), dx: Float32Array.from(dx!), dw: Float32Array.from(dw!), db: Float32Array.from(db!) };
  });
}

const cases: ConvCase[] = [
  { n: 3, h: 5, w: 7, cin: 3, cout: 4, k: 3 },
  { n: 2, h: 4, w: 4, cin: 8, cout: 16, k: 3 },
  { n: 2, h: 6, w: 5, cin: 2, cout: 3, k: 5 },
  { n: 1, h: 3, w: 3, cin: 5, cout: 2, k: 1 },
];

describe("convolution kernels against tfjs (cpu)", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    for (const c of cases) {
      it(`conv ${c.k}x${c.k} ${c.h}x${c.w}x${c.cin}->${c.cout}, n ${c.n}: output and kernel, bias, input gradients (${backend} multiply)`, async () => {
        const rng = new Rng(7);
        const rows = c.n * c.h * c.w;
        const x = randn(rows * c.cin, rng);
        const wt = randn(c.k * c.k * c.cin * c.cout, rng);
        const b = randn(c.cout, rng);
        const r = randn(rows * c.cout, rng);
        const ref = await reference(c, x, wt, b, r);
        await initBackend(backend);
        const mm = createMatmul();
        const conv = new ConvKernel(mm, c.h, c.w, c.cin, c.cout, c.k);
        const flat = new Float32Array(conv.numParams);
        flat.set(wt);
        flat.set(b, wt.length);
        conv.setParams(flat, 0);
        const [xb, yb, dyb, dxb] = [mm.alloc(rows * c.cin), mm.alloc(rows * c.cout), mm.alloc(rows * c.cout), mm.alloc(rows * c.cin)];
        const sizes = convScratchSizes(c.n, c.h, c.w, c.cin, c.cout, c.k);
        const scratch = { cols: mm.alloc(sizes.cols), xT: mm.alloc(sizes.xT), dyPad: mm.alloc(sizes.dyPad) };
        xb.view().set(x);
        conv.forward(xb, c.n, yb, scratch.cols);
        expect(relErr(yb.view(), ref.y)).toBeLessThan(1e-5);
        dyb.view().set(r);
        const grads = new Float32Array(conv.numParams + 2);
        conv.backward(xb, dyb, c.n, grads, 1, dxb, scratch);
        expect(relErr(grads.subarray(1, 1 + wt.length), ref.dw)).toBeLessThan(1e-5);
        expect(relErr(grads.subarray(1 + wt.length, 1 + conv.numParams), ref.db)).toBeLessThan(1e-5);
        expect(relErr(dxb.view(), ref.dx)).toBeLessThan(1e-5);
        expect(grads[0]).toBe(0);
        expect(grads[conv.numParams + 1]).toBe(0);
        for (const buf of [xb, yb, dyb, dxb, scratch.cols, scratch.xT, scratch.dyPad]) mm.free(buf);
        conv.dispose();
      });
    }
  }

  for (const [h, w] of [
    [13, 13],
    [7, 7],
    [4, 4],
    [5, 6],
  ] as const) {
    it(`max pool 3x3 stride 2 "same" on ${h}x${w} and its gradient equal tfjs`, async () => {
      await initBackend("cpu");
      const rng = new Rng(h * 31 + w);
      const [n, c] = [2, 3];
      const x = randn(n * h * w * c, rng);
      const [ho, wo] = [poolSide(h), poolSide(w)];
      const r = randn(n * ho * wo * c, rng);
      const ref = tf.tidy(() => {
        const xt = tf.tensor4d(x, [n, h, w, c]);
        const y = tf.maxPool(xt, 3, 2, "same");
        const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(xi as tf.Tensor4D, 3, 2, "same"), tf.tensor4d(r, [n, ho, wo, c]))))(
          xt,
        );
        return { shape: y.shape, y: Float32Array.from(y.dataSync()), dx: Float32Array.from(dx.dataSync()) };
      });
      expect(ref.shape).toEqual([n, ho, wo, c]);
      const y = new Float32Array(n * ho * wo * c);
      const argmax = new Int32Array(y.length);
      maxPool(x, n, h, w, c, y, argmax);
      expect(relErr(y, ref.y)).toBe(0);
      const dx = new Float32Array(x.length).fill(9);
      maxPoolBackward(r, y.length, argmax, dx, x.length);
      expect(relErr(dx, ref.dx)).toBeLessThan(1e-6);
    });
  }

  it("ReLU and its gradient equal tfjs's", async () => {
    await initBackend("cpu");
    const rng = new Rng(3);
    const x = randn(50, rng);
    const r = randn(50, rng);
    const ref = tf.tidy(() => {
      const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.relu(xi), tf.tensor1d(r))))(tf.tensor1d(x));
      return { y: Float32Array.from(tf.relu(tf.tensor1d(x)).dataSync()), dx: Float32Array.from(dx.dataSync()) };
    });
    const y = new Float32Array(50);
    relu(x, y, 50);
    expect(Array.from(y)).toEqual(Array.from(ref.y));
    const dx = new Float32Array(50);
    reluBackward(r, y, dx, 50);
    // equal values (tfjs writes -0 where the gradient is cut)
    expect(relErr(dx, ref.dx)).toBe(0);
  });
});
