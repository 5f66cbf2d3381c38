/**
 * The convolutional network's passes (agents/shared/convnet.ts) against the
 * same network written in tfjs operations and differentiated by tfjs (cpu
 * backend): outputs, and every parameter's gradient, on both multiplies;
 * channel-first observations; recording and editing layers.
 */
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { createMatmul, initBackend } from "../../../agents/shared/backend.ts";
import { type ConvArch, ConvNet, ConvPass, ConvTrainer } from "../../../agents/shared/convnet.ts";
import { readFlat } from "../../../agents/shared/networks.ts";
import { Rng } from "../../../envs/rng.ts";

const arch: ConvArch = {
  image: { height: 7, width: 6, channels: 3, layout: "hwc" },
  config: { channels: [4, 5], resBlocks: 2, dense: 8 },
  heads: [
    { size: 4, gain: 0.01 },
    { size: 1, gain: 1 },
  ],
};

/** The network in tfjs operations, on NHWC input. */
function applyTf(net: ConvNet, x: tf.Tensor4D, vars: tf.Tensor[]): tf.Tensor2D {
  let i = 0;
  const next = () => vars[i++]!;
  const conv = (h: tf.Tensor4D) => tf.add(tf.conv2d(h, next() as tf.Tensor4D, 1, "same"), next()) as tf.Tensor4D;
  let h = x;
  for (const _ of net.arch.config.channels) {
    h = tf.maxPool(conv(h), 3, 2, "same");
    for (let j = 0; j < net.arch.config.resBlocks; j++) h = tf.add(h, conv(tf.relu(conv(tf.relu(h)) as tf.Tensor4D) as tf.Tensor4D));
  }
  const flat = tf.reshape(tf.relu(h), [x.shape[0], -1]) as tf.Tensor2D;
  const fc = tf.relu(tf.add(tf.matMul(flat, next() as tf.Tensor2D), next())) as tf.Tensor2D;
  return tf.add(tf.matMul(fc, next() as tf.Tensor2D), next()) as tf.Tensor2D;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 1e-3;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

describe("ConvNet against tfjs autodiff (cpu)", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    it(`forward and every parameter's gradient equal tfjs's (${backend} multiply)`, async () => {
      await initBackend("cpu");
      const net = new ConvNet(arch, new Rng(1));
      const rng = new Rng(2);
      const n = 5;
      const S = net.inputSize;
      const obs = Float32Array.from({ length: n * S }, () => (rng.next() < 0.4 ? 1 : 0));
      const r = Float32Array.from({ length: n * net.outputSize }, () => rng.normal());
      const ref = tf.tidy(() => {
        const x = tf.tensor4d(obs, [n, 7, 6, 3]);
        const f = () => tf.sum(tf.mul(applyTf(net, x, net.variables), tf.tensor2d(r, [n, net.outputSize]))) as tf.Scalar;
        const { grads } = tf.variableGrads(f, net.variables);
        const out = applyTf(net, x, net.variables).dataSync() as Float32Array;
        return { out: Float32Array.from(out), grads: net.variables.map((v) => Float32Array.from(grads[v.name]!.dataSync())) };
      });
      await initBackend(backend);
      const mm = createMatmul();
      const pass = new ConvPass(arch, mm, 8);
      const flat = readFlat(net.variables);
      expect(pass.numParams).toBe(flat.length);
      pass.setParams(flat);
      expect(relErr(pass.forward(obs, n), ref.out)).toBeLessThan(1e-5);
      const grads = new Float32Array(flat.length);
      pass.backward(r, n, grads);
      let o = 0;
      for (const [i, g] of ref.grads.entries()) {
        expect(relErr(grads.subarray(o, o + g.length), g), `variable ${i}`).toBeLessThan(1e-4);
        o += g.length;
      }
      // the acting forward (ConvNet's own pass) gives the same outputs
      expect(relErr(net.forwardJS(obs, n), ref.out)).toBeLessThan(1e-5);
      pass.dispose();
      net.dispose();
    });
  }

  it("reads channel-first planes as the same image, and records and edits named layers", async () => {
    await initBackend("cpu");
    const net = new ConvNet(arch, new Rng(3));
    const chw = new ConvNet({ ...arch, image: { ...arch.image, layout: "chw" } }, new Rng(3));
    const rng = new Rng(4);
    const n = 2;
    const [H, W, C] = [7, 6, 3];
    const hwc = Float32Array.from({ length: n * H * W * C }, () => rng.next());
    const planes = new Float32Array(hwc.length);
    for (let s = 0; s < n; s++)
      for (let p = 0; p < H * W; p++) for (let c = 0; c < C; c++) planes[s * H * W * C + c * H * W + p] = hwc[s * H * W * C + p * C + c]!;
    expect(Array.from(chw.forwardJS(planes, n))).toEqual(Array.from(net.forwardJS(hwc, n)));
    expect(net.layers().map((l) => `${l.name}:${l.shape.join("x")}`)).toEqual([
      "s0/conv:7x6x4",
      "s0/pool:4x3x4",
      "s0/res0:4x3x4",
      "s0/res1:4x3x4",
      "s1/conv:4x3x5",
      "s1/pool:2x2x5",
      "s1/res0:2x2x5",
      "s1/res1:2x2x5",
      "fc:8",
      "logits:4",
    ]);
    const plain = net.forwardInspect(hwc, n, ["s1/res0", "logits"], []);
    expect(plain.recorded["s1/res0"]!.length).toBe(n * 20);
    expect(plain.values!.length).toBe(n);
    const zero = net.forwardInspect(hwc, n, [], [{ layer: "s1/res0", kind: "add", vector: new Float32Array(20), coeff: 3 }]);
    expect(Array.from(zero.logits)).toEqual(Array.from(plain.logits));
    const pushed = net.forwardInspect(
      hwc,
      n,
      ["s1/res0"],
      [{ layer: "s1/res0", kind: "add", vector: new Float32Array(20).fill(1), coeff: 2 }],
    );
    expect(pushed.recorded["s1/res0"]![0]).toBeCloseTo(plain.recorded["s1/res0"]![0]! + 2, 5);
    net.dispose();
    chw.dispose();
  });

  it("in chunks: a batch larger than the chunk has the outputs and the summed gradient of one pass", async () => {
    await initBackend("cpu");
    const net = new ConvNet(arch, new Rng(8));
    const rng = new Rng(9);
    const n = 7;
    const obs = Float32Array.from({ length: n * net.inputSize }, () => (rng.next() < 0.4 ? 1 : 0));
    const dOut = Float32Array.from({ length: n * net.outputSize }, () => rng.normal());
    const flat = readFlat(net.variables);
    const mm = createMatmul();
    const whole = new ConvPass(arch, mm, n);
    const chunked = new ConvTrainer(arch, mm, 3);
    whole.setParams(flat);
    chunked.setParams(flat);
    expect(relErr(chunked.forward(obs, n), whole.forward(obs, n))).toBeLessThan(1e-6);
    const [g1, g2] = [new Float32Array(flat.length), new Float32Array(flat.length)];
    whole.backward(dOut, n, g1);
    chunked.backward(dOut, n, g2);
    expect(relErr(g2, g1)).toBeLessThan(1e-5);
    whole.dispose();
    chunked.dispose();
    net.dispose();
  });
});
