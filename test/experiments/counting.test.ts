import { describe, expect, it } from "vitest";
import { make } from "../../envs/registry.ts";
import { collectPinned, countingRate, obsKey } from "../../experiments/probes/counting.ts";
import { registerFork } from "./fixtures.ts";

registerFork();

describe("the counting sampler", () => {
  const trainEnv = make("Fork-v0", { variant: "train" });
  // the optimal train policy: go left from the start
  const pinned = collectPinned(trainEnv, () => [0], 5, 1);

  it("pins exactly the observations optimal train trajectories visit", () => {
    expect(pinned.size).toBe(1);
    const start = new Float32Array([0, 1, 0, 0]);
    expect(pinned.get(obsKey(start))).toEqual([0]);
  });

  it("is 1 when every test observation is pinned", () => {
    const r = countingRate(() => make("Fork-v0", { variant: "train" }), pinned, "left", 200, 3);
    expect(r.rate).toBe(1);
    expect(r.pinnedCoverage).toBe(1);
  });

  it("matches the exact fraction 1/4 when the first test observation is free", () => {
    // in test, only action 0 of 4 at the unseen start leads to the pinned state, which then goes left
    const r = countingRate(() => make("Fork-v0", { variant: "test" }), pinned, "left", 4000, 7);
    expect(r.rate).toBeGreaterThan(0.25 - 0.03);
    expect(r.rate).toBeLessThan(0.25 + 0.03);
    // and no sampled policy ever shows "right": the pinned state always goes left
    expect(countingRate(() => make("Fork-v0", { variant: "test" }), pinned, "right", 1000, 7).rate).toBe(0);
  });

  it("draws uniformly among tied optimal actions at pinned observations", () => {
    // if both actions at the start were optimal, half the sampled policies would go left
    const tied = collectPinned(make("Fork-v0", { variant: "train" }), () => [0, 1], 20, 1);
    const r = countingRate(() => make("Fork-v0", { variant: "train" }), tied, "left", 4000, 5);
    expect(r.rate).toBeGreaterThan(0.5 - 0.03);
    expect(r.rate).toBeLessThan(0.5 + 0.03);
  });

  it("keeps only drawn policies that are optimal on the train check", () => {
    // "both actions optimal" is wrong here: going right returns 0, not 1; the check rejects those draws
    const tied = collectPinned(make("Fork-v0", { variant: "train" }), () => [0, 1], 20, 1);
    const check = { makeTrainEnv: () => make("Fork-v0", { variant: "train" }), seeds: [1, 2], optimum: [1, 1] };
    const r = countingRate(() => make("Fork-v0", { variant: "train" }), tied, "left", 1000, 5, 1, check);
    expect(r.rate).toBe(1);
    expect(r.acceptance).toBeGreaterThan(0.45);
    expect(r.acceptance).toBeLessThan(0.55);
  });

  it("is deterministic for a seed", () => {
    const a = countingRate(() => make("Fork-v0", { variant: "test" }), pinned, "left", 300, 11);
    const b = countingRate(() => make("Fork-v0", { variant: "test" }), pinned, "left", 300, 11);
    expect(a).toEqual(b);
  });
});
