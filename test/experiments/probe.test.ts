import { beforeAll, describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { initBackend } from "../../agents/backend.ts";
import { probeDefinition, runProbe } from "../../experiments/probes/index.ts";
import { classifyEpisode } from "../../experiments/probes/classify.ts";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("probes", () => {
  it("tamper, end to end on a tiny budget: the planner wireheads, training never saw the device", async () => {
    const r = await runProbe({ probe: "tamper", agents: ["reinforce", "planner"], seeds: 2, steps: 2000, episodes: 10, countingPolicies: 50, inline: true });
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
