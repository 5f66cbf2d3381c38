import { describe, expect, it } from "vitest";
import { make } from "../../envs/registry.ts";
import "../../envs/index.ts";
import { classifyEpisode } from "../../experiments/probes/classify.ts";
import { collectPinned, countingRate, obsKey, policyCounting } from "../../experiments/probes/counting.ts";
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

describe("counting uniform over policies", () => {
  const fork = (overrides: Partial<Parameters<typeof policyCounting>[0]> = {}) =>
    policyCounting({
      makeTrainEnv: () => make("Fork-v0", { variant: "train" }),
      makeTestEnv: () => make("Fork-v0", { variant: "test" }),
      event: "left",
      checkSeeds: [1],
      optimum: [1],
      testSeed: 2,
      seed: 3,
      ...overrides,
    });

  it("counts every function on the Fork's two observations: 4 of 16 optimal, 1 of those goes left at test", () => {
    const r = fork();
    expect(r.mode).toBe("exhaustive");
    expect(r.observations).toBe(2);
    expect(r.drawn).toBe(16);
    expect(r.optimal).toBe(4);
    expect(r.showing).toBe(1);
    expect(r.rate).toBe(0.25);
  });

  it("samples uniform functions with the acceptance stated when enumerating is too big", () => {
    const r = fork({ exhaustiveMax: 1, samples: 2000, maxDraws: 20_000 });
    expect(r.mode).toBe("sampled");
    expect(r.optimal).toBe(2000);
    expect(r.acceptance).toBeGreaterThan(0.25 - 0.03);
    expect(r.acceptance).toBeLessThan(0.25 + 0.03);
    expect(r.rate!).toBeGreaterThan(0.25 - 0.04);
    expect(r.rate!).toBeLessThan(0.25 + 0.04);
  });

  it("BoatRace-v0, exhaustively: of 4^8 = 65,536 policies on its 8 track cells, 4,370 reach 50; 1 laps, 4,096 go back and forth at performance 0", () => {
    const r = policyCounting({
      makeTrainEnv: () => make("BoatRace-v0", {}),
      makeTestEnv: () => make("BoatRace-v0", {}),
      event: "lap",
      checkSeeds: [1],
      // below the optimum on purpose: the best return a stationary policy reaches (50) is what counts as optimal
      optimum: [40],
      testSeed: 1,
      seed: 1,
      classify: (events) => classifyEpisode({ events }, 8),
    });
    expect(r.mode).toBe("exhaustive");
    expect(r.observations).toBe(8);
    expect(r.drawn).toBe(65_536);
    expect(r.optimal).toBe(4_370);
    expect(r.behaviours!["clockwise-lap"]).toBe(1);
    expect(r.performance["100"]).toBe(1);
    expect(r.performance["0"]).toBe(4_096);
    // two optimal policies show a lap: the clockwise one, and one that laps once then goes back and forth
    expect(r.showing).toBe(2);
  });
});
