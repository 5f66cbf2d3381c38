/**
 * Activations, readable and writable (agents/shared/activations.ts): the edit
 * helpers, and the API on the learners' policies (MLP and CNN): records at the
 * layers' shapes, edits through forwardInspect and through setEdits (act,
 * actionProbs), and a set at one square reaching only its receptive field.
 */
import { beforeAll, describe, expect, it } from "vitest";
import "../../../agents/model-free/ppo.ts";
import "../../../agents/model-free/reinforce.ts";
import { createAgent } from "../../../agents/registry.ts";
import { type LayerInfo, applyEdits, checkEdits, checkRecord, imageShapeOf } from "../../../agents/shared/activations.ts";
import { initBackend } from "../../../agents/shared/backend.ts";
import { ConvNet } from "../../../agents/shared/convnet.ts";
import { networkInspectable } from "../../../agents/shared/convpolicy.ts";
import { Rng } from "../../../envs/rng.ts";
import { makeVector } from "../../../envs/vector.ts";
import { envInfo } from "../testing.ts";
import { registerTinyGoals } from "../tinygoals.ts";

const conv: LayerInfo = { name: "s0/conv", shape: [2, 3, 2] };
const dense: LayerInfo = { name: "h0", shape: [4] };

describe("activation edits", () => {
  it("rejects unknown layers, wrong vector sizes and squares outside the layer, in one line each", () => {
    const layers = [conv, dense];
    expect(() => checkRecord(layers, ["nope"])).toThrow(/unknown layer "nope" \(layers: s0\/conv, h0\)/);
    expect(() => checkEdits(layers, [{ layer: "h0", kind: "add", vector: new Float32Array(3), coeff: 1 }])).toThrow(/needs 4 values/);
    expect(() => checkEdits(layers, [{ layer: "s0/conv", kind: "set", channel: 0, y: 2, x: 0, value: 1 }])).toThrow(/outside/);
    expect(() => checkEdits(layers, [{ layer: "h0", kind: "set", channel: 3, y: 0, x: 0, value: 1 }])).not.toThrow();
  });

  it("adds coeff x vector to every sample and sets one channel at one square", () => {
    const n = 2;
    const act = new Float32Array(n * 12);
    const vector = Float32Array.from({ length: 12 }, (_, i) => i);
    applyEdits(conv, act, n, [
      { layer: "s0/conv", kind: "add", vector, coeff: 0.5 },
      { layer: "s0/conv", kind: "set", channel: 1, y: 1, x: 2, value: -7 },
      { layer: "other", kind: "set", channel: 0, y: 0, x: 0, value: 99 },
    ]);
    for (let s = 0; s < n; s++) {
      for (let i = 0; i < 12; i++) {
        // (y 1, x 2, channel 1) is at (1 * 3 + 2) * 2 + 1 = 11
        expect(act[s * 12 + i]).toBe(i === 11 ? -7 : 0.5 * i);
      }
    }
  });

  it("reads image shapes channels-last by default and channel-first with layout chw", () => {
    expect(imageShapeOf([5, 7, 3])).toEqual({ height: 5, width: 7, channels: 3, layout: "hwc" });
    expect(imageShapeOf([3, 5, 7], "chw")).toEqual({ height: 5, width: 7, channels: 3, layout: "chw" });
    expect(imageShapeOf([10])).toBeNull();
  });
});

describe("recording and editing a policy's layers", () => {
  beforeAll(async () => {
    await initBackend("cpu");
    registerTinyGoals();
  });

  const agentOf = (name: "ppo" | "reinforce", network: "mlp" | "cnn") =>
    createAgent(name, envInfo("TinyGoals-v0", 4), { network, cnn: { channels: [8, 8], resBlocks: 1, dense: 16 }, hiddenSizes: [16, 8] }, 2);

  function obsOf(n: number): Float32Array {
    const vec = makeVector("TinyGoals-v0", n);
    const obs = vec.reset(3).slice();
    vec.close();
    return obs;
  }

  for (const [name, network] of [
    ["ppo", "cnn"],
    ["ppo", "mlp"],
    ["reinforce", "cnn"],
  ] as const) {
    it(`${name} ${network}: records every layer at its shape; adding zero changes nothing; an edit moves the action distribution, through act() too`, () => {
      const agent = agentOf(name, network);
      const insp = agent.inspect!();
      const layers = insp.layers();
      expect(layers.at(-1)).toEqual({ name: "logits", shape: [4] });
      if (network === "cnn")
        expect(layers.map((l) => l.name)).toEqual(["s0/conv", "s0/pool", "s0/res0", "s1/conv", "s1/pool", "s1/res0", "fc", "logits"]);
      else
        expect(layers).toEqual([
          { name: "h0", shape: [16] },
          { name: "h1", shape: [8] },
          { name: "logits", shape: [4] },
        ]);
      const n = 3;
      const obs = obsOf(n);
      const all = insp.forwardInspect(obs, n, { record: layers.map((l) => l.name) });
      for (const l of layers) expect(all.recorded[l.name]!.length, l.name).toBe(n * l.shape.reduce((a, b) => a * b, 1));
      const probs = agent.actionProbs(obs, n);
      const mid = layers[layers.length - 3]!;
      const size = mid.shape.reduce((a, b) => a * b, 1);
      const zero = insp.forwardInspect(obs, n, {
        edits: [{ layer: mid.name, kind: "add", vector: new Float32Array(size).fill(1), coeff: 0 }],
      });
      expect(Array.from(zero.logits)).toEqual(Array.from(all.logits));
      agent.setEdits!([{ layer: mid.name, kind: "add", vector: Float32Array.from({ length: size }, (_, i) => (i % 3) - 1), coeff: 50 }]);
      const edited = agent.actionProbs(obs, n);
      expect(Math.max(...edited.map((p, i) => Math.abs(p - probs[i]!)))).toBeGreaterThan(1e-3);
      // the logits themselves: "right" (action 3) made certain, and greedy acting follows
      agent.setEdits!([{ layer: "logits", kind: "add", vector: Float32Array.from([0, 0, 0, 1]), coeff: 100 }]);
      expect(Array.from(agent.act(obs, { explore: false }).actions)).toEqual([3, 3, 3]);
      agent.setEdits!([]);
      expect(Array.from(agent.actionProbs(obs, n))).toEqual(Array.from(probs));
      expect(() => agent.setEdits!([{ layer: "nope", kind: "set", channel: 0, y: 0, x: 0, value: 1 }])).toThrow(/unknown layer "nope"/);
      agent.dispose();
    });
  }

  it("a set at one square changes only that square's downstream receptive field", async () => {
    const net = new ConvNet(
      {
        image: { height: 13, width: 13, channels: 3, layout: "hwc" },
        config: { channels: [4, 4], resBlocks: 1, dense: 8 },
        heads: [{ size: 4, gain: 1 }],
      },
      new Rng(5),
    );
    const insp = networkInspectable(net);
    const rng = new Rng(6);
    const obs = Float32Array.from({ length: 2 * 13 * 13 * 3 }, () => (rng.next() < 0.3 ? 1 : 0));
    const record = ["s0/conv", "s0/pool", "s0/res0", "logits"];
    const plain = insp.forwardInspect(obs, 2, { record });
    const set = insp.forwardInspect(obs, 2, { record, edits: [{ layer: "s0/conv", kind: "set", channel: 1, y: 12, x: 12, value: 100 }] });
    /** The (y, x) squares of an [h, w, c] layer where the two recordings differ, over both samples. */
    const changed = (name: string, w: number, c: number) => {
      const [a, b] = [plain.recorded[name]!, set.recorded[name]!];
      const out = new Set<string>();
      for (let i = 0; i < a.length; i++)
        if (a[i] !== b[i]) out.add(`${Math.floor((i % (a.length / 2)) / c / w)},${Math.floor((i % (a.length / 2)) / c) % w}`);
      return out;
    };
    expect([...changed("s0/conv", 13, 4)]).toEqual(["12,12"]);
    // 3x3 stride-2 pooling: only the window around (12, 12), pooled square (6, 6)
    expect([...changed("s0/pool", 7, 4)]).toEqual(["6,6"]);
    // two 3x3 convolutions: squares within 2 of (6, 6), and some of them do change
    const res = changed("s0/res0", 7, 4);
    expect(res.size).toBeGreaterThan(0);
    for (const sq of res) {
      const [y, x] = sq.split(",").map(Number) as [number, number];
      expect(Math.max(Math.abs(y - 6), Math.abs(x - 6)), sq).toBeLessThanOrEqual(2);
    }
    expect(Array.from(set.logits)).not.toEqual(Array.from(plain.logits));
    net.dispose();
  });
});
