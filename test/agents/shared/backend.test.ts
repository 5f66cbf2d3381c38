import * as tf from "@tensorflow/tfjs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { availableBackends, createMatmul, currentBackend, initBackend } from "../../../agents/shared/backend.ts";
import {
  Adam,
  FastForward,
  MLP,
  MLPPass,
  adamStepFlat,
  readFlat,
  RunningMoments,
  clipByGlobalNorm,
  clipByGlobalNormJS,
  logSoftmax,
  orthogonal,
  permutation,
  sampleRowFromLogProbs,
  softmax,
  tanhViaExp,
} from "../../../agents/shared/networks.ts";
import { Rng } from "../../../envs/rng.ts";

describe("backend choice", () => {
  afterEach(() => {
    delete process.env.REWARDLAB_BACKEND;
  });

  it("cpu and wasm both initialise and multiply alike", async () => {
    const a = Float32Array.from({ length: 6 * 5 }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: 5 * 4 }, (_, i) => Math.cos(i));
    const results: Float32Array[] = [];
    for (const name of ["cpu", "wasm"] as const) {
      expect(await initBackend(name)).toBe(name);
      expect(tf.getBackend()).toBe(name);
      expect(currentBackend()).toBe(name);
      results.push(tf.tidy(() => tf.matMul(tf.tensor2d(a, [6, 5]), tf.tensor2d(b, [5, 4])).dataSync() as Float32Array));
    }
    for (let i = 0; i < 24; i++) expect(results[1]![i]).toBeCloseTo(results[0]![i]!, 5);
    // idempotent: no preference keeps the current choice
    expect(await initBackend()).toBe("wasm");
  });

  it("never throws when tfjs-node is missing, and says why it fell back", async () => {
    const log: string[] = [];
    const got = await initBackend("tensorflow", (m) => log.push(m));
    expect(["tensorflow", "wasm"]).toContain(got);
    if (got !== "tensorflow") expect(log.join("\n")).toMatch(/tensorflow unavailable/);
    expect(log.at(-1)).toMatch(new RegExp(`backend ${got}`));
  });

  it("reads REWARDLAB_BACKEND on a fresh start", async () => {
    vi.resetModules();
    process.env.REWARDLAB_BACKEND = "cpu";
    const fresh = await import("../../../agents/shared/backend.ts");
    expect(fresh.currentBackend()).toBeNull();
    expect(await fresh.initBackend()).toBe("cpu");
    vi.resetModules();
    process.env.REWARDLAB_BACKEND = "nonsense";
    const again = await import("../../../agents/shared/backend.ts");
    const log: string[] = [];
    expect(["tensorflow", "wasm", "cpu"]).toContain(await again.initBackend(undefined, (m) => log.push(m)));
    expect(log[0]).toMatch(/REWARDLAB_BACKEND=nonsense/);
  });

  it("lists the available backends, cpu and wasm at least", async () => {
    const list = await availableBackends();
    expect(list).toContain("cpu");
    expect(list).toContain("wasm");
  });
});

describe("networks", () => {
  it("orthogonal init is orthogonal, scaled by the gain, and seeded", () => {
    for (const [rows, cols] of [
      [10, 4],
      [4, 10],
      [6, 6],
    ] as const) {
      const gain = 1.7;
      const w = orthogonal(rows, cols, gain, new Rng(3));
      // the smaller Gram matrix is gain^2 I
      const tall = rows >= cols;
      const k = Math.min(rows, cols);
      for (let p = 0; p < k; p++) {
        for (let q = 0; q < k; q++) {
          let dot = 0;
          for (let i = 0; i < Math.max(rows, cols); i++)
            dot += tall ? w[i * cols + p]! * w[i * cols + q]! : w[p * cols + i]! * w[q * cols + i]!;
          expect(dot).toBeCloseTo(p === q ? gain * gain : 0, 5);
        }
      }
      expect(orthogonal(rows, cols, gain, new Rng(3))).toEqual(w);
      expect(orthogonal(rows, cols, gain, new Rng(4))).not.toEqual(w);
    }
  });

  for (const backend of ["cpu", "wasm"] as const) {
    it(`forwardJS matches the tfjs forward (${backend})`, async () => {
      await initBackend(backend);
      const net = new MLP([7, 9, 6, 3], new Rng(1), { hiddenGain: Math.SQRT2, outputGain: 1 });
      // give the biases non-zero values, then refresh the JS copy
      tf.tidy(() => net.variables.forEach((v, i) => i % 2 === 1 && v.assign(tf.randomNormal(v.shape, 0, 0.5, "float32", 7 + i))));
      net.syncJS();
      const x = Float32Array.from({ length: 5 * 7 }, (_, i) => (i % 3 === 0 ? 0 : Math.sin(i)));
      const js = net.forwardJS(x, 5);
      const tfOut = tf.tidy(() => net.apply(tf.tensor2d(x, [5, 7])).dataSync());
      for (let i = 0; i < 15; i++) expect(js[i]).toBeCloseTo(tfOut[i]!, 5);
      net.dispose();
    });

    it(`forwardNear equals forwardJS from a reference row, and falls back once the weights change (${backend})`, async () => {
      await initBackend(backend);
      const net = new MLP([40, 16, 16, 5], new Rng(3), { hiddenGain: Math.SQRT2, outputGain: 1 });
      // a one-hot-like grid row: many static non-zeros (walls), an agent bit that moves
      const root = Float32Array.from({ length: 40 }, (_, i) => (i < 20 && i % 2 === 0 ? 1 : 0));
      root[25] = 1;
      net.setReference(root);
      const rows = [root.slice(), root.slice(), Float32Array.from({ length: 40 }, (_, i) => Math.cos(i))];
      rows[1]![25] = 0;
      rows[1]![31] = 1;
      for (const row of rows) {
        const near = net.forwardNear(row).slice();
        const plain = net.forwardJS(row, 1);
        for (let k = 0; k < 5; k++) expect(Math.abs(near[k]! - plain[k]!)).toBeLessThan(1e-6);
      }
      // new weights: the reference is stale, forwardNear is forwardJS exactly
      tf.tidy(() => net.variables[0]!.assign(tf.mul(net.variables[0]!, 2)));
      net.syncJS();
      expect(Array.from(net.forwardNear(rows[1]!))).toEqual(Array.from(net.forwardJS(rows[1]!, 1)));
      net.dispose();
    });

    it(`tanhViaExp is tanh to float64 rounding (${backend})`, () => {
      for (const z of [-800, -20, -1.5, -1e-9, 0, 1e-12, 0.3, 2, 19, 800])
        expect(Math.abs(tanhViaExp(z) - Math.tanh(z))).toBeLessThan(5e-16);
    });

    it(`the hand-written dense gradient equals autodiff of the plain layers (${backend})`, async () => {
      await initBackend(backend);
      const net = new MLP([5, 8, 3], new Rng(2), { hiddenGain: Math.SQRT2, outputGain: 0.5 });
      const xs = Float32Array.from({ length: 4 * 5 }, (_, i) => Math.cos(i * 0.7));
      const xsT = new Float32Array(5 * 4);
      for (let r = 0; r < 4; r++) for (let c = 0; c < 5; c++) xsT[c * 4 + r] = xs[r * 5 + c]!;
      const target = tf.tensor2d([1, -1, 0.5, 0, 2, -0.5, 1, 1, 0, -2, 0.3, 0.1], [4, 3]);
      const [W0, b0, W1, b1] = net.variables as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
      const plain = (x: tf.Tensor2D) => tf.add(tf.matMul(tf.tanh(tf.add(tf.matMul(x, W0), b0)), W1), b1);
      const loss = (f: () => tf.Tensor) => () => tf.sum(tf.square(tf.sub(f(), target))) as tf.Scalar;
      for (const withT of [false, true]) {
        const ours = tf.tidy(() => {
          const x = tf.tensor2d(xs, [4, 5]);
          // xT must outlive the backward pass: made outside variableGrads
          const xT = withT ? tf.tensor2d(xsT, [5, 4]) : null;
          const { grads } = tf.variableGrads(
            loss(() => net.apply(x, xT)),
            net.variables,
          );
          return net.variables.map((v) => Array.from(grads[v.name]!.dataSync()));
        });
        const ref = tf.tidy(() => {
          const x = tf.tensor2d(xs, [4, 5]);
          const { grads } = tf.variableGrads(
            loss(() => plain(x)),
            net.variables,
          );
          return net.variables.map((v) => Array.from(grads[v.name]!.dataSync()));
        });
        ours.forEach((g, i) => g.forEach((x, j) => expect(x).toBeCloseTo(ref[i]![j]!, 4)));
      }
      // and the input gradient, for layers that are not first
      const dx = tf.tidy(() => {
        const x = tf.tensor2d(xs, [4, 5]);
        return [
          tf.grad((xx) => loss(() => net.apply(xx as tf.Tensor2D))())(x),
          tf.grad((xx) => loss(() => plain(xx as tf.Tensor2D))())(x),
        ].map((t) => Array.from(t.dataSync()));
      });
      dx[0]!.forEach((x, j) => expect(x).toBeCloseTo(dx[1]![j]!, 4));
      target.dispose();
      net.dispose();
    });
  }

  it("global-norm clipping matches torch's clip_grad_norm_", async () => {
    await initBackend("cpu");
    const gs = [Float64Array.from([3, 4]), Float64Array.from([12])];
    const ref = clipByGlobalNormJS(gs, 0.5);
    expect(ref.norm).toBeCloseTo(13, 10);
    const got = tf.tidy(() => {
      const r = clipByGlobalNorm([tf.tensor1d([3, 4]), tf.tensor1d([12])], 0.5);
      return { norm: r.norm.dataSync()[0]!, grads: r.grads.map((g) => Array.from(g.dataSync())) };
    });
    expect(got.norm).toBeCloseTo(13, 5);
    got.grads.flat().forEach((x, i) => expect(x).toBeCloseTo([...ref.grads[0]!, ...ref.grads[1]!][i]!, 6));
    // below the threshold nothing changes
    expect(clipByGlobalNormJS([Float64Array.from([0.1])], 0.5).grads[0]![0]).toBeCloseTo(0.1, 12);
  });

  it("Adam takes PyTorch's steps (with clipping) and leaks no tensors", async () => {
    await initBackend("cpu");
    const p = tf.variable(tf.tensor1d([1, -2, 0.5]));
    const q = tf.variable(tf.tensor2d([[0.3, 0.7]]));
    const adam = new Adam([p, q], { beta1: 0.9, beta2: 0.999, eps: 1e-5 });
    // reference in plain JS
    const params = [1, -2, 0.5, 0.3, 0.7];
    const m = new Array(5).fill(0);
    const v = new Array(5).fill(0);
    const gradSeq = [
      [1, 2, -3, 0.5, 4],
      [0.1, -0.2, 0.3, 0, 0.05],
      [2, 2, 2, 2, 2],
    ];
    const lr = 0.01;
    const maxNorm = 1;
    const before = tf.memory().numTensors;
    gradSeq.forEach((g, step) => {
      const { grads } = clipByGlobalNormJS([Float64Array.from(g)], maxNorm);
      const t = step + 1;
      for (let i = 0; i < 5; i++) {
        m[i] = 0.9 * m[i] + 0.1 * grads[0]![i]!;
        v[i] = 0.999 * v[i] + 0.001 * grads[0]![i]! ** 2;
        const denom = Math.sqrt(v[i]) / Math.sqrt(1 - 0.999 ** t) + 1e-5;
        params[i]! -= (lr / (1 - 0.9 ** t)) * (m[i] / denom);
      }
      tf.tidy(() => adam.step([tf.tensor1d(g.slice(0, 3)), tf.tensor2d([g.slice(3)])], lr, maxNorm).dispose());
    });
    expect(tf.memory().numTensors).toBe(before);
    const got = [...p.dataSync(), ...q.dataSync()];
    got.forEach((x, i) => expect(x).toBeCloseTo(params[i]!, 5));
    adam.dispose();
    p.dispose();
    q.dispose();
  });

  it("running moments (Welford) match the direct formulas and round-trip", () => {
    const xs = [3, -1, 4, 1, -5, 9, 2.5];
    const r = new RunningMoments();
    xs.forEach((x) => r.add(x));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(r.mean).toBeCloseTo(mean, 12);
    expect(r.std()).toBeCloseTo(Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length), 12);
    const copy = new RunningMoments();
    copy.load(JSON.parse(JSON.stringify(r)));
    expect(copy.std()).toBe(r.std());
  });

  it("softmax, log-softmax, seeded sampling and shuffles", () => {
    const logits = Float32Array.from([0, Math.log(3), 1000, 1000]);
    const p = softmax(logits, 2, 2);
    expect([...p].map((x) => +x.toFixed(6))).toEqual([0.25, 0.75, 0.5, 0.5]);
    const lp = logSoftmax(logits, 2, 2);
    expect(lp[1]).toBeCloseTo(Math.log(0.75), 6);
    const rng = new Rng(5);
    let ones = 0;
    for (let i = 0; i < 20000; i++) ones += sampleRowFromLogProbs(lp, 0, 2, rng);
    expect(ones / 20000).toBeCloseTo(0.75, 1.5);
    const perm = permutation(10, new Rng(1));
    expect([...perm].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(permutation(10, new Rng(1))).toEqual(perm);
  });
});

// ---------------------------------------------------------------- the training fast path against its references

describe("training fast path", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    it(`raw multiplies equal tf.matMul, with bias, sigmoid and rewritten operands (${backend})`, async () => {
      await initBackend(backend);
      const mm = createMatmul();
      expect(mm.name).toBe(backend === "wasm" ? "wasm" : "js");
      const [m, k, n] = [6, 5, 4];
      const a = mm.alloc(8 * k);
      const b = mm.alloc(k * n);
      const bias = mm.alloc(n);
      const c = mm.alloc(8 * n);
      a.view().set(Float32Array.from({ length: m * k }, (_, i) => (i % 4 === 0 ? 0 : Math.sin(i))));
      for (let round = 0; round < 2; round++) {
        // new contents in the right operand and the bias each round: the result must follow them
        b.view().set(Float32Array.from({ length: k * n }, (_, i) => Math.cos(i + 3 * round)));
        b.touch();
        bias.view().set(Float32Array.from({ length: n }, (_, i) => i - round));
        bias.touch();
        for (const sigmoid of [false, true]) {
          mm.matmul(a, b, c, m, k, n, bias, sigmoid);
          const ref = tf.tidy(() => {
            const z = tf.add(
              tf.matMul(tf.tensor2d(a.view().slice(0, m * k), [m, k]), tf.tensor2d(b.view().slice(), [k, n])),
              tf.tensor1d(bias.view().slice()),
            );
            return (sigmoid ? tf.sigmoid(z) : z).dataSync();
          });
          for (let i = 0; i < m * n; i++) expect(c.view()[i]).toBeCloseTo(ref[i]!, 5);
        }
      }
      for (const buf of [a, b, bias, c]) mm.free(buf);
    });

    it.each([1, 16])(
      `MLPPass: forward equals MLP.apply and backward equals tfjs autodiff (${backend}, input columns compacted from %i rows)`,
      async (from) => {
        await initBackend(backend);
        const saved = MLPPass.compactFromRows;
        MLPPass.compactFromRows = from;
        const net = new MLP([7, 9, 6, 3], new Rng(4), { hiddenGain: Math.SQRT2, outputGain: 0.5 });
        tf.tidy(() => net.variables.forEach((v, i) => i % 2 === 1 && v.assign(tf.randomNormal(v.shape, 0, 0.5, "float32", 11 + i))));
        const mm = createMatmul();
        const pass = new MLPPass(net.sizes, mm, 8);
        expect(pass.numParams).toBe(7 * 9 + 9 + 9 * 6 + 6 + 6 * 3 + 3);
        const flat = readFlat(net.variables);
        pass.setParams(flat);
        const m = 5;
        // column 2 is zero in every row (the first layer skips it; its gradient rows must be exactly 0)
        const xs = Float32Array.from({ length: m * 7 }, (_, i) => (i % 3 === 0 || i % 7 === 2 ? 0 : Math.sin(i * 0.9)));
        const dOut = Float32Array.from({ length: m * 3 }, (_, i) => Math.cos(i * 1.3));
        const out = pass.forward(xs, m).slice();
        const grads = new Float32Array(pass.numParams);
        pass.backward(dOut, m, grads);
        for (let j = 0; j < 9; j++) expect(grads[2 * 9 + j]).toBe(0);
        // reference: autodiff of sum(output * dOut) through MLP.apply, whose gradient with respect to the output is dOut
        const ref = tf.tidy(() => {
          const xt = tf.tensor2d(xs, [m, 7]);
          const d = tf.tensor2d(dOut, [m, 3]);
          const y = net.apply(xt);
          const { grads: g } = tf.variableGrads(() => tf.sum(tf.mul(net.apply(xt), d)) as tf.Scalar, net.variables);
          return { y: Array.from(y.dataSync()), g: net.variables.flatMap((v) => Array.from(g[v.name]!.dataSync())) };
        });
        out.forEach((v, i) => expect(v).toBeCloseTo(ref.y[i]!, 5));
        expect(grads.length).toBe(ref.g.length);
        grads.forEach((v, i) => expect(v).toBeCloseTo(ref.g[i]!, 4));
        // an all-zero batch: the output is the layers applied to the bias alone
        const zeros = new Float32Array(2 * 7);
        const z = pass.forward(zeros, 2).slice();
        const zref = tf.tidy(() => Array.from(net.apply(tf.tensor2d(zeros, [2, 7])).dataSync()));
        z.forEach((v, i) => expect(v).toBeCloseTo(zref[i]!, 5));
        // the first batch again: the same outputs after the weight rows were swapped around
        pass.forward(xs, m).forEach((v, i) => expect(v).toBeCloseTo(ref.y[i]!, 5));
        MLPPass.compactFromRows = saved;
        pass.dispose();
        net.dispose();
      },
    );

    it(`FastForward acts like forwardJS, and follows the weights after syncJS (${backend})`, async () => {
      await initBackend(backend);
      const net = new MLP([7, 9, 6, 3], new Rng(5), { hiddenGain: Math.SQRT2, outputGain: 1 });
      const fast = new FastForward([net]);
      const obs = Float32Array.from({ length: 4 * 7 }, (_, i) => (i % 3 === 0 ? 0 : Math.cos(i)));
      const out = new Float32Array(4 * 3);
      for (let round = 0; round < 2; round++) {
        const used = fast.forward(0, obs, 4, out);
        // only where the multiply is fast; cpu keeps forwardJS, bit for bit
        expect(used).toBe(backend === "wasm");
        if (used) {
          const ref = net.forwardJS(obs, 4);
          out.forEach((x, i) => expect(x).toBeCloseTo(ref[i]!, 5));
        }
        tf.tidy(() => net.variables.forEach((v) => v.assign(tf.mul(v, 1.5))));
        net.syncJS();
      }
      fast.dispose();
      net.dispose();
    });

    it(`FastForward.forwardEach gives each net's forwardJS outputs from one input load, batches of 4 and 40 (${backend})`, async () => {
      await initBackend(backend);
      const actor = new MLP([7, 9, 6, 3], new Rng(6), { hiddenGain: Math.SQRT2, outputGain: 1 });
      const critic = new MLP([7, 5, 1], new Rng(7), { hiddenGain: Math.SQRT2, outputGain: 1 });
      const fast = new FastForward([actor, critic]);
      for (const rows of [4, 40]) {
        // one-hot-like rows, some columns zero throughout (compacted at 40 rows)
        const obs = Float32Array.from({ length: rows * 7 }, (_, i) => (i % 7 === 2 || (i * 7) % 3 === 0 ? 0 : 1));
        const outs = [new Float32Array(rows * 3), new Float32Array(rows)];
        const used = fast.forwardEach(obs, rows, outs);
        expect(used).toBe(backend === "wasm");
        if (!used) continue;
        const refs = [actor.forwardJS(obs, rows), critic.forwardJS(obs, rows)];
        outs.forEach((out, k) => out.forEach((x, i) => expect(x).toBeCloseTo(refs[k]![i]!, 5)));
      }
      fast.dispose();
      actor.dispose();
      critic.dispose();
    });

    it(`adamStepFlat takes the Adam class's steps, clipping included (${backend})`, async () => {
      await initBackend(backend);
      const p = tf.variable(tf.tensor1d([1, -2, 0.5]));
      const q = tf.variable(tf.tensor2d([[0.3, 0.7]]));
      const opts = { beta1: 0.9, beta2: 0.999, eps: 1e-5 };
      const adam = new Adam([p, q], opts);
      const state = { params: Float32Array.from([1, -2, 0.5, 0.3, 0.7]), m: new Float32Array(5), v: new Float32Array(5), t: 0 };
      const gradSeq = [
        [1, 2, -3, 0.5, 4],
        [0.1, -0.2, 0.3, 0, 0.05],
        [2, 2, 2, 2, 2],
        [-0.01, 0.02, 0, 0.03, -0.02],
      ];
      for (const [step, g] of gradSeq.entries()) {
        const maxNorm = step % 2 === 0 ? 1 : null;
        const norm = tf.tidy(() => adam.step([tf.tensor1d(g.slice(0, 3)), tf.tensor2d([g.slice(3)])], 0.01, maxNorm).dataSync()[0]!);
        expect(adamStepFlat(state, Float32Array.from(g), 0.01, opts, maxNorm)).toBeCloseTo(norm, 5);
      }
      expect(state.t).toBe(adam.t);
      Array.from(state.params).forEach((x, i) => expect(x).toBeCloseTo([...p.dataSync(), ...q.dataSync()][i]!, 6));
      Array.from(state.m).forEach((x, i) => expect(x).toBeCloseTo(adam.m.dataSync()[i]!, 6));
      Array.from(state.v).forEach((x, i) => expect(x).toBeCloseTo(adam.v.dataSync()[i]!, 6));
      adam.dispose();
      p.dispose();
      q.dispose();
    });
  }
});
