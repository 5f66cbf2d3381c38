import { describe, expect, it } from "vitest";
import { FlatAdam } from "../../../agents/shared/flatadam.ts";
import { type AdamOptions, adamStepFlat } from "../../../agents/shared/networks.ts";

const opts: AdamOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-5 };

/** Runs `steps` Adam steps through FlatAdam and through the reference rule; returns the first step whose bits differ, or -1. */
function firstMismatch(size: number, simd: boolean, steps = 40): number {
  const a = new FlatAdam(size, { simd });
  const ref = { params: new Float32Array(size), m: new Float32Array(size), v: new Float32Array(size), t: 0 };
  for (let i = 0; i < size; i++) a.params[i] = ref.params[i] = Math.sin(3 * i + 1);
  for (let s = 0; s < steps; s++) {
    // gradients of varied scale, some large enough to be clipped, some zero
    const g = Float32Array.from({ length: size }, (_, i) => (s % 5 === 4 ? 0 : Math.cos(i * (s + 1)) * 10 ** ((s % 4) - 2)));
    a.grads.set(g);
    const clip = s % 2 === 0 ? 0.5 : null;
    const lr = 0.01 / (1 + s);
    if (a.step(lr, opts, clip) !== adamStepFlat(ref, g, lr, opts, clip)) return s;
    for (let i = 0; i < size; i++) {
      if (!Object.is(a.params[i], ref.params[i]) || !Object.is(a.m[i], ref.m[i]) || !Object.is(a.v[i], ref.v[i])) return s;
    }
  }
  return -1;
}

describe("FlatAdam", () => {
  it("assembles its WebAssembly SIMD module on this runtime", () => {
    expect(new FlatAdam(3).simd).toBe(true);
  });

  for (const simd of [true, false]) {
    it.each([1, 2, 7, 1000, 28_001])(
      `takes the reference rule's steps bit for bit, clipping included (simd ${simd}, %i parameters)`,
      (size) => {
        expect(firstMismatch(size, simd)).toBe(-1);
      },
    );
  }

  it("moves parameters towards a quadratic's minimum and keeps padding at zero", () => {
    const a = new FlatAdam(5);
    const target = [1, -2, 3, 0.5, -0.25];
    for (let s = 0; s < 3000; s++) {
      for (let i = 0; i < 5; i++) a.grads[i] = 2 * (a.params[i]! - target[i]!);
      a.step(0.01, opts, null);
    }
    for (let i = 0; i < 5; i++) expect(a.params[i]).toBeCloseTo(target[i]!, 2);
    // the padded sixth slot of each array (odd size) is never written
    const padding = new Float32Array(a.params.buffer, a.params.byteOffset + 5 * 4, 1);
    expect(padding[0]).toBe(0);
  });
});
