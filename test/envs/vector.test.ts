/**
 * The vector env (auto-reset, finalObs, per-copy derived seeds) and the
 * generic reward wrappers (reward removed or negated, performance and events
 * unchanged).
 */
import { describe, expect, it } from "vitest";
import { Rng, deriveSeed, make, makeVector, registered, type StepResult } from "../../envs/index.ts";

describe("VectorEnv", () => {
  it("auto-resets at truncation, keeping the final observation", () => {
    const vec = makeVector("BoatRace-v0", 3);
    const first = vec.reset(5).slice();
    const single = make("BoatRace-v0");
    single.reset({ seed: deriveSeed(5, 0) });
    const actions = [3, 3, 3];
    let last: StepResult | undefined;
    for (let t = 1; t <= 100; t++) {
      vec.step(actions);
      last = single.step(3);
      if (t < 100) {
        expect(Array.from(vec.truncated)).toEqual([0, 0, 0]);
        expect(Array.from(vec.obs.subarray(0, vec.obsSize))).toEqual(Array.from(last.obs));
      }
      expect(vec.rewards[0]).toBe(last.reward);
    }
    expect(last!.truncated).toBe(true);
    expect(Array.from(vec.truncated)).toEqual([1, 1, 1]);
    expect(Array.from(vec.terminated)).toEqual([0, 0, 0]);
    // finalObs holds the last observation of the ended episode, obs the next episode's first
    expect(Array.from(vec.finalObs.subarray(0, vec.obsSize))).toEqual(Array.from(last!.obs));
    expect(Array.from(vec.obs)).toEqual(Array.from(first));
    expect(vec.infos[0]!.performance).toBe(last!.info.performance);
  });

  it("auto-resets at termination", () => {
    const vec = makeVector("TamperGrid-v0", 2, { variant: "train" });
    vec.reset(1);
    let ended = 0;
    for (let t = 0; t < 5; t++) {
      vec.step([3, 3]);
      ended += vec.terminated[0]!;
    }
    expect(ended).toBe(1);
    expect(vec.infos[0]!.events).toEqual(["goal"]);
    expect(vec.rewards[0]).toBeCloseTo(0.99, 6);
    expect(vec.envs[0]!.render().agent).toEqual({ x: 1, y: 1 });
  });

  it("seeds copy i with deriveSeed(seed, i)", () => {
    const vec = makeVector("GoalShift-v0", 8, { variant: "test" });
    vec.reset(11);
    const rows = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const env = make("GoalShift-v0", { variant: "test" });
      const { obs } = env.reset({ seed: deriveSeed(11, i) });
      const row = Array.from(vec.obs.subarray(i * vec.obsSize, (i + 1) * vec.obsSize));
      expect(row).toEqual(Array.from(obs));
      rows.add(row.join(""));
    }
    expect(rows.size).toBeGreaterThan(1);
    // the same seed gives the same batch
    const again = makeVector("GoalShift-v0", 8, { variant: "test" });
    expect(Array.from(again.reset(11))).toEqual(Array.from(vec.obs));
  });
});

describe("reward wrappers", () => {
  it.each(registered().map((r) => r.id))("%s: removed gives 0 reward and negated -reward, same performance and events", (id) => {
    const plain = make(id);
    const removed = make(id, {}, { reward: "removed" });
    const negated = make(id, {}, { reward: "negated" });
    for (const env of [plain, removed, negated]) env.reset({ seed: 4 });
    const rng = new Rng(2);
    for (let i = 0; i < 200; i++) {
      const a = rng.int(plain.actionSpace.n);
      const p = plain.step(a);
      const r = removed.step(a);
      const n = negated.step(a);
      expect(r.reward).toBe(0);
      expect(n.reward).toBe(-p.reward);
      for (const x of [r, n]) {
        expect(x.info.performance).toBe(p.info.performance);
        expect(x.info.events).toEqual(p.info.events);
        expect(Array.from(x.obs)).toEqual(Array.from(p.obs));
        expect([x.terminated, x.truncated]).toEqual([p.terminated, p.truncated]);
      }
      if (p.terminated || p.truncated) for (const env of [plain, removed, negated]) env.reset();
    }
  });
});
