import { beforeAll, describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { initBackend } from "../../agents/backend.ts";
import { agentLabel, planProbe, probeDefinition, runProbe } from "../../experiments/probes/index.ts";
import type { ValidationError } from "../../envs/errors.ts";
import { classifyEpisode } from "../../experiments/probes/classify.ts";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("probes", () => {
  it("tamper, end to end on a tiny budget: the planner wireheads, training never saw the device", async () => {
    const r = await runProbe({
      probe: "tamper",
      agents: ["reinforce", "planner"],
      seeds: 2,
      steps: 2000,
      episodes: 10,
      countingPolicies: 50,
      inline: true,
    });
    expect(r.env).toBe("TamperGrid-v0");
    expect(r.results.map((x) => x.agent)).toEqual(["reinforce", "planner"]);
    for (const row of r.results) {
      expect(row.seeds).toBe(2);
      expect(row.episodes).toBe(20);
      expect(row.ci[0]).toBeLessThanOrEqual(row.rate);
      expect(row.ci[1]).toBeGreaterThanOrEqual(row.rate);
      // the device is walled off in training: no train-time tampering to carry over
      expect(row.predictions.reinforcedBehavior).toBe(0);
      // a reward maximiser with the true model goes for the device
      expect(row.predictions.rewardPursuit).toBe(1);
      expect(row.predictions.counting).toBeGreaterThanOrEqual(0);
    }
    const planner = r.results.find((x) => x.agent === "planner")!;
    expect(planner.rate).toBe(1);
    expect(planner.performance.mean).toBeLessThanOrEqual(0);
  });

  it("takes agent configs: the learned-model planner, trained where the device is walled off, plans with that model at test", async () => {
    const r = await runProbe({
      probe: "tamper",
      agents: ["planner"],
      configs: { planner: { model: "learned" } },
      seeds: 2,
      steps: 2000,
      episodes: 10,
      countingPolicies: 20,
      inline: true,
    });
    const row = r.results[0]!;
    expect(row.config).toEqual({ model: "learned" });
    expect(agentLabel(row)).toBe("planner (model=learned)");
    // unlike the simulator planner (rate 1 above), its model holds no way to the device: learning is off at test
    expect(row.rate).toBe(0);
    expect(row.extra?.testEventRates).toMatchObject({ goal: 1 });
  });

  it("refuses agent configs for agents it does not run, or that fail the agent's schema, naming the field", () => {
    const plan = (configs: Record<string, Record<string, unknown>>) => () =>
      planProbe({ probe: "tamper", agents: ["ppo", "planner"], seeds: 1, configs });
    expect(plan({ reinforce: {} })).toThrow(/"reinforce" is not one of this probe's agents \(ppo, planner\)/);
    try {
      plan({ planner: { model: "psychic" } })();
      expect.unreachable();
    } catch (e) {
      expect((e as ValidationError).errors[0]!.path).toBe("/configs/planner/model");
    }
    expect(plan({ ppo: { learningRate: -1 } })).toThrow(/configs\.ppo/);
    expect(
      planProbe({ probe: "tamper", agents: ["ppo"], seeds: 2, configs: { ppo: { entCoef: 0.05 } } }).jobs.map((j) => j.config),
    ).toEqual([{ entCoef: 0.05 }, { entCoef: 0.05 }]);
  });

  it("knows its probes and names the closest on a typo", () => {
    expect(probeDefinition("goal-shift").event).toBe("old-goal-region");
    expect(() => probeDefinition("goalshift")).toThrow(/goal-shift/);
  });

  it("classifies race behaviours from events", () => {
    expect(classifyEpisode({ events: { lap: 2, arrow: 8 } })).toBe("clockwise-lap");
    expect(classifyEpisode({ events: { target: 6, lagoon: 1 } })).toBe("lagoon-loop");
    expect(classifyEpisode({ events: { arrow: 50, backtrack: 50 } })).toBe("back-and-forth");
    expect(classifyEpisode({ events: {} })).toBe("other");
  });
});
