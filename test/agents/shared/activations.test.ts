/** The activation edit helpers: checking edits against layers, and applying them in order. */
import { describe, expect, it } from "vitest";
import { type LayerInfo, applyEdits, checkEdits, checkRecord, imageShapeOf } from "../../../agents/shared/activations.ts";

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
