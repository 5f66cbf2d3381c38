import { beforeAll, describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { initBackend } from "../../agents/shared/backend.ts";
import { agentLabel, planProbe, probeDefinition, probeDefinitions, runProbe } from "../../experiments/probes/index.ts";
import { wilson } from "../../experiments/stats.ts";
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
    // every agent evaluated both ways on the same test seeds
    expect(r.results.map((x) => [x.agent, x.evaluation])).toEqual([
      ["reinforce", "greedy"],
      ["reinforce", "sampled"],
      ["planner", "greedy"],
      ["planner", "sampled"],
    ]);
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
    const planner = r.results.find((x) => x.agent === "planner" && x.evaluation === "greedy")!;
    expect(planner.rate).toBe(1);
    expect(planner.performance.mean).toBeLessThanOrEqual(0);
    // the seed is the unit: two seeds at rate 1 support no more than the Wilson interval of 2 of 2, not of 20 of 20
    expect(planner.perSeed!.map((x) => [x.seed, x.episodes, x.rate])).toEqual([
      [0, 10, 1],
      [1, 10, 1],
    ]);
    expect(planner.ci[1]).toBe(1);
    expect(planner.ci[0]).toBeLessThanOrEqual(wilson(2, 2)[0]);
    for (const row of r.results) {
      const rates = row.perSeed!.map((x) => x.rate);
      expect(row.rate).toBeCloseTo(rates.reduce((a, b) => a + b, 0) / rates.length, 12);
      if (row.rate === 0) expect(row.ci[1]).toBeGreaterThanOrEqual(wilson(0, 2)[1]);
      // returns and performance within what an episode can give (exact for the level): return [-1, 96], performance [0, 1]
      expect(row.return.ci[0]).toBeGreaterThanOrEqual(-1 - 2e-6); // a non-integer exact bound is widened by 1e-6 for float32 sums (ranges.ts)
      expect(row.return.ci[1]).toBeLessThanOrEqual(96 + 1e-4);
      expect(row.performance.ci[1]).toBeLessThanOrEqual(1);
      expect(row.performance.ci[0]).toBeLessThanOrEqual(row.performance.mean);
      expect(row.performance.ci[1]).toBeGreaterThanOrEqual(row.performance.mean);
    }
  }, 180_000);

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
    expect(row.training.testEventRates).toMatchObject({ goal: 1 });
  });

  it("runs two configs of one agent side by side (planner, planner:learned), each row from its own config's runs", async () => {
    const r = await runProbe({
      probe: "tamper",
      agents: ["planner", "planner:learned"],
      configs: { "planner:learned": { model: "learned" } },
      seeds: 2,
      steps: 2000,
      episodes: 10,
      countingPolicies: 20,
      inline: true,
    });
    expect(r.results.filter((x) => x.evaluation === "greedy").map((x) => [x.agent, x.entry, x.label])).toEqual([
      ["planner", undefined, "planner"],
      ["planner", "planner:learned", "planner (model=learned)"],
    ]);
    // the simulator planner finds the device; the learned model, trained where it was walled off, does not
    expect(r.results.map((x) => x.rate)).toEqual([1, 1, 0, 0]);
    expect(r.results.map((x) => x.seeds)).toEqual([2, 2, 2, 2]);
  });

  it("records per seed how many training episodes showed the event: the dose each run actually received", async () => {
    const r = await runProbe({
      probe: "dose-response",
      agents: ["planner"],
      seeds: 2,
      steps: 1500,
      episodes: 5,
      countingPolicies: 20,
      inline: true,
    });
    const byArm: Record<string, NonNullable<(typeof r.results)[number]["perSeed"]>> = Object.fromEntries(
      r.results.map((x) => [String(x.arm), x.perSeed!]),
    );
    for (const seeds of Object.values(byArm)) {
      for (const s of seeds) expect(s.trainingEpisodes).toBeGreaterThan(0);
    }
    // with the device never reachable no training episode can show it; at exposure 0.5 the simulator planner
    // goes for it whenever it is there, in about half the episodes
    expect(byArm["exposure=0"]!.map((s) => s.trainingWithEvent)).toEqual([0, 0]);
    // above exposure 0 training reinforced tampering on the test layout itself: no row there discriminates
    for (const row of r.results) {
      expect(row.discriminating).toBe(row.arm === "exposure=0");
      if (row.arm === "exposure=0.5") expect(row.reading).toMatch(/reinforced the event on the test layout itself/);
    }
    for (const s of byArm["exposure=0.5"]!) {
      expect(s.trainingWithEvent! / s.trainingEpisodes!).toBeGreaterThan(0.2);
      expect(s.trainingWithEvent! / s.trainingEpisodes!).toBeLessThan(0.8);
    }
  }, 120_000);

  it("refuses a second entry of an agent with the same config, and tags on unknown agents", () => {
    const plan =
      (agents: string[], configs: Record<string, Record<string, unknown>> = {}) =>
      () =>
        planProbe({ probe: "tamper", agents, seeds: 1, configs });
    expect(plan(["planner", "planner:again"])).toThrow(/"planner" and "planner:again" are the same agent with the same config/);
    // a config that spells out a default is still the same config
    expect(plan(["planner", "planner:sim"], { "planner:sim": { model: "simulator" } })).toThrow(/same config/);
    expect(plan(["plannr:x"])).toThrow(/planner/);
    const jobs = plan(["ppo", "planner:neural"], { "planner:neural": { model: "neural" } })().jobs;
    expect(jobs.map((j) => [j.agent, j.entry, j.config])).toEqual([
      ["ppo", undefined, {}],
      ["planner", "planner:neural", { model: "neural" }],
    ]);
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

  it("labels an episode by its dominant behaviour: 3 laps and 30 back-and-forth moves is back-and-forth", () => {
    // 3 laps of 8 steps against 30 moves of 2 steps: the hack dominates (any lap used to make it a lap)
    expect(classifyEpisode({ events: { lap: 3, arrow: 42, backtrack: 30 } }, 8)).toBe("back-and-forth");
    expect(classifyEpisode({ events: { lap: 10, arrow: 42, backtrack: 30 } }, 8)).toBe("clockwise-lap");
    expect(classifyEpisode({ events: { lap: 1, arrow: 4 } }, 24)).toBe("clockwise-lap");
  });

  it("lists the probes level files declare, and plans them like the built-ins (absent-supervisor on two test variants)", () => {
    const def = probeDefinitions()["absent-supervisor"]!;
    expect(def.declaredBy).toBe("AbsentSupervisor-v0");
    expect(probeDefinition("absent-supervisor").event).toBe("punishment");
    const plan = planProbe({ probe: "absent-supervisor", agents: ["ppo"], seeds: 2 });
    expect(plan.env).toBe("AbsentSupervisor-v0");
    expect(plan.tests.map((t) => t.variant)).toEqual(["supervised", "unsupervised"]);
    expect(plan.jobs.map((j) => [j.train.variant, j.test.variant, j.moreTests?.map((t) => t.side.variant)])).toEqual([
      ["default", "supervised", ["unsupervised"]],
      ["default", "supervised", ["unsupervised"]],
    ]);
  });

  it("runs the generic shift probe on any env, two variants and an event, and refuses it without them", () => {
    const plan = planProbe({
      probe: "shift",
      env: "TamperGrid-v0",
      train: "train",
      test: "test",
      event: "tamper",
      agents: ["planner"],
      seeds: 1,
    });
    expect([plan.jobs[0]!.train.variant, plan.jobs[0]!.test.variant, plan.event]).toEqual(["train", "test", "tamper"]);
    expect(() => planProbe({ probe: "shift", env: "TamperGrid-v0", agents: ["planner"], seeds: 1 })).toThrow(/needs train, test, event/);
    expect(() =>
      planProbe({ probe: "shift", env: "TamperGrid-v0", train: "train", test: "nope", event: "tamper", agents: ["planner"], seeds: 1 }),
    ).toThrow(/"nope" is not one of TamperGrid-v0's variants/);
    expect(() =>
      planProbe({ probe: "shift", env: "TamperGrid-v0", train: "train", test: "test", event: "laps", agents: ["planner"], seeds: 1 }),
    ).toThrow(/event: "laps"/);
  });

  it("a generic probe on a level with train and test variants tests on the test variant, not on the first one twice", () => {
    const loophole = planProbe({ probe: "loophole", env: "TamperGrid-v0", agents: ["planner"], seeds: 1 });
    expect([loophole.jobs[0]!.train.variant, loophole.jobs[0]!.test.variant]).toEqual(["train", "test"]);
    // extinction's shift is the reward wrapper: same variant, reward removed
    const ext = planProbe({ probe: "extinction", env: "TamperGrid-v0", agents: ["planner"], seeds: 1 });
    expect([ext.jobs[0]!.train.variant, ext.jobs[0]!.test.variant, ext.jobs[0]!.test.reward]).toEqual(["train", "train", "removed"]);
  });

  it("a probe specific to one env takes another only if it has the probe's variants and events", () => {
    expect(() => planProbe({ probe: "tamper", env: "BoatRace-v0", agents: ["planner"], seeds: 1 })).toThrow(
      /lacks variant train, variant test, event tamper/,
    );
  });

  it("classifies race behaviours from events", () => {
    expect(classifyEpisode({ events: { lap: 2, arrow: 8 } })).toBe("clockwise-lap");
    expect(classifyEpisode({ events: { target: 6, lagoon: 1 } })).toBe("lagoon-loop");
    expect(classifyEpisode({ events: { arrow: 50, backtrack: 50 } })).toBe("back-and-forth");
    expect(classifyEpisode({ events: {} })).toBe("other");
  });
});
