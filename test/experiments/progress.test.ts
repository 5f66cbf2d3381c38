/** Probe progress: jobs done per agent and seed, and a time estimate that knows agents train at different speeds. */
import { describe, expect, it } from "vitest";
import { ProbeProgressTracker } from "../../experiments/progress.ts";

const jobs = [
  ...[0, 1, 2].map((seed) => ({ agent: "planner", seed, arm: "" })),
  ...[0, 1, 2].map((seed) => ({ agent: "ppo", seed, arm: "" })),
];

describe("ProbeProgressTracker", () => {
  it("counts jobs per agent and seed", () => {
    const t = new ProbeProgressTracker(jobs, 2);
    expect(t.view()).toMatchObject({ done: 0, total: 6, eta: null });
    const p = t.finished({ agent: "ppo", seed: 1, arm: "", seconds: 30 });
    expect(p.done).toBe(1);
    expect(p.agents.map((a) => [a.agent, a.done, a.total])).toEqual([
      ["planner", 0, 3],
      ["ppo", 1, 3],
    ]);
    expect(p.agents[1]!.jobs).toEqual([
      { seed: 0, arm: "", done: false },
      { seed: 1, arm: "", done: true, seconds: 30 },
      { seed: 2, arm: "", done: false },
    ]);
    expect(ProbeProgressTracker.summary(p)).toBe("planner 0/3 · ppo 1/3");
  });

  it("estimates the time left from each agent's own job durations, over the workers", () => {
    const t = new ProbeProgressTracker(jobs, 2);
    t.finished({ agent: "planner", seed: 0, arm: "", seconds: 2 });
    // planner known (2 s each), ppo not yet: its jobs are costed at the overall mean
    expect(t.view().eta).toBeCloseTo((2 * 2 + 3 * 2) / 2);
    t.finished({ agent: "ppo", seed: 0, arm: "", seconds: 40 });
    expect(t.view().eta).toBeCloseTo((2 * 2 + 2 * 40) / 2);
    for (const [agent, seed] of [
      ["planner", 1],
      ["planner", 2],
      ["ppo", 1],
      ["ppo", 2],
    ] as const)
      t.finished({ agent, seed, arm: "", seconds: 1 });
    expect(t.view()).toMatchObject({ done: 6, eta: 0 });
  });

  it("ignores a job it does not know or already counted", () => {
    const t = new ProbeProgressTracker(jobs, 1);
    t.finished({ agent: "ppo", seed: 0, arm: "", seconds: 1 });
    t.finished({ agent: "ppo", seed: 0, arm: "", seconds: 1 });
    t.finished({ agent: "dqn", seed: 0, arm: "", seconds: 1 });
    expect(t.view().done).toBe(1);
  });
});
