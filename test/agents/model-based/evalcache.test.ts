import { beforeAll, describe, expect, it } from "vitest";
import { EvalCache } from "../../../agents/model-based/evalcache.ts";
import type { ExpitAgent } from "../../../agents/model-based/expit.ts";
import "../../../agents/index.ts";
import { createAgent, resolveAgentConfig } from "../../../agents/registry.ts";
import { initBackend } from "../../../agents/shared/backend.ts";
import "../../../envs/index.ts";
import { make } from "../../../envs/registry.ts";
import { Stepper } from "../../../experiments/loop.ts";
import { envInfo } from "../testing.ts";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("EvalCache", () => {
  const obs = (k: number) => Float32Array.from([k, 0, 1]);
  const counting = () => {
    let calls = 0;
    const compute = (o: Float32Array) => {
      calls++;
      return Float32Array.from([o[0]! * 2, calls]);
    };
    return { compute, calls: () => calls };
  };

  it("computes each observation once per weights version and answers repeats from the kept row", () => {
    const cache = new EvalCache(2, 8);
    const c = counting();
    expect([...cache.lookup(obs(1), 3, 0, c.compute)]).toEqual([2, 1]);
    expect([...cache.lookup(obs(2), 3, 0, c.compute)]).toEqual([4, 2]);
    expect([...cache.lookup(obs(1), 3, 0, c.compute)]).toEqual([2, 1]);
    expect(c.calls()).toBe(2);
    expect(cache.takeHitRate()).toBeCloseTo(1 / 3);
    // new weights: computed again
    expect([...cache.lookup(obs(1), 3, 1, c.compute)]).toEqual([2, 3]);
    expect(Number.isNaN(new EvalCache(1).takeHitRate())).toBe(true);
  });

  it("keys only the first `size` floats, and empties itself when full", () => {
    const cache = new EvalCache(2, 2);
    const c = counting();
    cache.lookup(Float32Array.from([5, 0, 1, 9]), 3, 0, c.compute);
    cache.lookup(Float32Array.from([5, 0, 1, 7]), 3, 0, c.compute);
    expect(c.calls()).toBe(1);
    cache.lookup(obs(6), 3, 0, c.compute);
    cache.lookup(obs(7), 3, 0, c.compute); // full: emptied, then kept
    cache.lookup(obs(5), 3, 0, c.compute);
    expect(c.calls()).toBe(4);
    expect(() => new EvalCache(2, 0)).toThrow(/capacity/);
  });
});

describe("expit's evaluations through the cache", () => {
  it("equal the network's own forward at every state met, and most searches' evaluations are repeats", () => {
    const config = resolveAgentConfig("expit", { simulations: 16, updateEvery: 100, gradientSteps: 4, batchSize: 32, hiddenSizes: [32] });
    const agent = createAgent("expit", envInfo("GoalShift-v0", 1, { variant: "train" }), config, 3) as ExpitAgent;
    const stepper = new Stepper(agent, { env: "GoalShift-v0", config: { variant: "train" }, reward: "keep", numEnvs: 1, seed: 3 });
    const rates: number[] = [];
    try {
      while (stepper.envSteps < 400) {
        stepper.step({ explore: true, learn: true });
        const rate = stepper.update?.metrics["search/cache_hit_rate"];
        if (rate !== undefined) rates.push(rate);
      }
    } finally {
      stepper.close();
    }
    expect(rates.length).toBeGreaterThan(1);
    expect(Math.max(...rates)).toBeGreaterThan(0.5);
    // every observation of a short walk: the cached priors and value are the plain forward's, within float32 rounding
    const env = make("GoalShift-v0", { variant: "train" });
    let { obs } = env.reset({ seed: 1 });
    const priors = new Float32Array(agent.env.nActions);
    const again = new Float32Array(agent.env.nActions);
    for (let t = 0; t < 12; t++) {
      const value = agent.evaluate(obs, priors);
      expect(agent.evaluate(obs, again)).toBe(value);
      expect([...again]).toEqual([...priors]);
      const out = agent.net.forwardJS(obs, 1);
      const A = agent.env.nActions;
      const max = Math.max(...out.subarray(0, A));
      const e = Array.from(out.subarray(0, A), (z) => Math.exp(z - max));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let a = 0; a < A; a++) expect(priors[a]).toBeCloseTo(e[a]! / sum, 6);
      expect(value).toBeCloseTo(out[A]!, 6);
      obs = env.step(t % agent.env.nActions).obs;
    }
    env.close?.();
    agent.dispose();
  }, 60_000);
});
