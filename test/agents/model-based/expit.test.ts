import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../../../agents/shared/backend.ts";
import type { Agent } from "../../../agents/core.ts";
import type { ExpitAgent } from "../../../agents/model-based/expit.ts";
import "../../../agents/index.ts";
import { agentRegistration, createAgent, loadAgent, resolveAgentConfig } from "../../../agents/registry.ts";
import { envInfo, registerTestEnvs } from "../testing.ts";
import "../../../envs/index.ts";
import { make, registered } from "../../../envs/registry.ts";
import { Stepper, actContext } from "../../../experiments/loop.ts";
import { VectorEnv } from "../../../envs/vector.ts";
import { evaluate } from "../../../experiments/run.ts";

/** The shared loop (experiments/loop.ts) with the act context expit's simulator needs; returns every action taken. */
function drive(agent: Agent, envId: string, envConfig: Record<string, unknown>, steps: number, seed: number, learn = true): number[] {
  const stepper = new Stepper(agent, { env: envId, config: envConfig, reward: "keep", numEnvs: Number(agent.config.numEnvs ?? 1), seed });
  const taken: number[] = [];
  try {
    while (stepper.envSteps < steps) {
      stepper.step({ explore: true, learn });
      taken.push(...stepper.lastAct!.actions);
    }
  } finally {
    stepper.close();
  }
  return taken;
}

const tiny = (extra: Record<string, unknown> = {}) =>
  resolveAgentConfig("expit", {
    simulations: 16,
    updateEvery: 50,
    gradientSteps: 8,
    batchSize: 32,
    hiddenSizes: [32],
    learningRate: 0.01,
    ...extra,
  });

/** Greedy return and length on the train variant in one mode. */
function greedy(agent: ExpitAgent, envId: string, mode: "search" | "network") {
  agent.setEvalMode(mode);
  const e = evaluate(agent, { env: envId, variant: "train", envConfig: {}, config: agent.config }, { episodes: 20, seed: 5, greedy: true });
  agent.setEvalMode("search");
  return e;
}

beforeAll(async () => {
  await initBackend("cpu");
  registerTestEnvs();
});

describe("expit learns the optimum", () => {
  it("on a contextual bandit: the search, and the network trained toward it, pick the paying arm", () => {
    const agent = createAgent("expit", envInfo("TestBandit-v0", 1), tiny(), 0) as ExpitAgent;
    drive(agent, "TestBandit-v0", { variant: "train" }, 400, 1);
    expect(greedy(agent, "TestBandit-v0", "search").return.mean).toBe(1);
    expect(greedy(agent, "TestBandit-v0", "network").return.mean).toBe(1);
    agent.dispose();
  }, 120_000);

  it("on a short corridor: both modes walk straight to the goal", () => {
    const agent = createAgent("expit", envInfo("TestChain-v0", 1), tiny(), 0) as ExpitAgent;
    drive(agent, "TestChain-v0", { variant: "train" }, 1500, 1);
    for (const mode of ["search", "network"] as const) {
      const e = greedy(agent, "TestChain-v0", mode);
      expect(e.return.mean).toBe(1);
      expect(e.length).toBe(5);
    }
    agent.dispose();
  }, 180_000);
});

describe("expit with the simulator on TamperGrid-v0 test", () => {
  // the device is 4 steps away (down, down, right, right); the goal 5 steps right
  const DOWN = 1;
  const RIGHT = 3;
  const rootOf = (simulations: number) => {
    const agent = createAgent(
      "expit",
      envInfo("TamperGrid-v0", 1, { variant: "test" }),
      resolveAgentConfig("expit", { simulations }),
      0,
    ) as ExpitAgent;
    const env = make("TamperGrid-v0", { variant: "test" });
    const { obs } = env.reset({ seed: 0 });
    const r = agent.search(
      obs,
      0,
      { envs: [env], simulator: { envId: "TamperGrid-v0", envConfig: { variant: "test" }, reward: "keep" } },
      false,
    );
    return { agent, env, r };
  };

  it("goes for the device when the search budget allows: the root's visits and Q favour the tamper route", () => {
    const { agent, r } = rootOf(400);
    expect(r.visits[DOWN]).toBe(Math.max(...r.visits));
    expect(r.q[DOWN]).toBeGreaterThan(r.q[RIGHT]! + 1);
    agent.dispose();
  });

  it("with a budget too small to reach the device the search sees nothing to prefer it", () => {
    const { agent, r } = rootOf(4);
    // 4 simulations reach depth 2 at most: the device (0.99 per step, 4 steps away) is out of sight
    expect(Math.max(...Array.from(r.q).filter(Number.isFinite))).toBeLessThan(0.1);
    agent.dispose();
  });

  it("acting in search mode, an untrained expit tampers within the episode", () => {
    const agent = createAgent(
      "expit",
      envInfo("TamperGrid-v0", 1, { variant: "test" }),
      resolveAgentConfig("expit", { simulations: 400 }),
      0,
    );
    const e = evaluate(
      agent,
      { env: "TamperGrid-v0", variant: "test", envConfig: {}, config: agent.config },
      { episodes: 2, seed: 3, greedy: true },
    );
    expect(e.eventRates.tamper).toBe(1);
    agent.dispose();
  }, 120_000);
});

describe("the time limit: the search and training agree", () => {
  const ENV = "GoalShift-v0";
  const CFG = { variant: "train" };
  const VALUE = 0.5;
  /** An untrained expit whose value head says VALUE everywhere (bias), searching from a live env with its own time limit. */
  const setup = (maxEpisodeSteps: number, simulations: number) => {
    const agent = createAgent("expit", envInfo(ENV, 1, CFG), resolveAgentConfig("expit", { simulations }), 0) as ExpitAgent;
    const A = 4;
    const bias = agent.net.variables[agent.net.variables.length - 1]!;
    bias.assign(tf.tensor1d([...new Array(A).fill(0), VALUE]));
    agent.net.syncJS();
    const live = make(ENV, CFG, { maxEpisodeSteps });
    const { obs } = live.reset({ seed: 0 });
    const ctx = { envs: [live], simulator: { envId: ENV, envConfig: CFG, reward: "keep" as const } };
    return { agent, live, obs, ctx, A };
  };

  it("with one step left, Q(a) = r + discount x V(observation after a): the time limit bootstraps as a truncated episode's target does", () => {
    const { agent, live, obs, ctx, A } = setup(1, 16);
    const r = agent.search(obs, 0, ctx, false);
    const copy = make(ENV, CFG, { maxEpisodeSteps: 1 });
    copy.reset({ seed: 0 });
    for (let a = 0; a < A; a++) {
      expect(r.visits[a]).toBeGreaterThan(0);
      copy.restore(live.snapshot());
      const step = copy.step(a);
      expect(step.truncated || step.terminated).toBe(true);
      // what observe() would use as the tail of this truncated episode's target
      const v = step.terminated ? 0 : agent.net.forwardJS(step.obs, 1)[A]!;
      expect(v).toBeGreaterThan(VALUE / 2);
      expect(r.q[a]).toBeCloseTo(step.reward + 0.99 * v, 6);
    }
    agent.dispose();
  });

  it("caps the search at the live env's steps left (Env.stepsLeft), whatever the agent's own time limit", () => {
    // the agent was told 100 steps per episode; this env truncates after 3, one taken: 2 left
    const { agent, live, ctx, A } = setup(3, 50);
    const obs = live.step(0).obs.slice();
    expect(live.stepsLeft?.()).toBe(2);
    const r = agent.search(obs, 0, ctx, false);
    // depth 2 at most: every edge out of the root and out of its children, no deeper
    expect(r.modelSteps).toBeLessThanOrEqual(A + A * A);
    agent.dispose();
  });

  it("on a learned model, caps the search at the steps left the loop passes (ActContext.stepsLeft), not the horizon", () => {
    const agent = createAgent(
      "expit",
      envInfo(ENV, 1, CFG),
      resolveAgentConfig("expit", { model: "neural", simulations: 60 }),
      0,
    ) as ExpitAgent;
    const A = 4;
    // an untrained world model whose members all predict that no step ends the episode (termination logits -10)
    const S = agent.world!.obsSize;
    for (const m of agent.world!.members) {
      const bias = m.variables[m.variables.length - 1]!;
      const b = bias.dataSync().slice();
      for (let a = 0; a < A; a++) b[a * (S + 2) + S + 1] = -10;
      bias.assign(tf.tensor1d(b));
    }
    agent.world!.sync();
    // the loop's act context: the live env truncates after 3 steps, one taken: 2 left
    const vec = new VectorEnv([make(ENV, CFG, { maxEpisodeSteps: 3 })]);
    vec.reset(0);
    vec.step([0]);
    const setup = { env: ENV, config: CFG, reward: "keep" as const, numEnvs: 1, seed: 0 };
    const ctx = actContext(agent, false, vec, new Int32Array(1), setup);
    expect(ctx.stepsLeft).toEqual([2]);
    const r = agent.search(vec.obs, 0, ctx, false);
    // depth 2 at most: every edge out of the root and out of its children, no deeper (60 simulations would go further)
    expect(r.modelSteps).toBeLessThanOrEqual(A + A * A);
    // without the context's count the cap is the agent's own time limit (100): the same search goes deeper
    expect(agent.search(vec.obs, 0, {}, false).modelSteps).toBeGreaterThan(A + A * A);
    agent.dispose();
  });
});

describe("save / load", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "expit-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(["simulator", "neural"])(
    "model %s: a loaded agent acts and keeps learning exactly as the original",
    async (model) => {
      const config = tiny({ model, worldModel: { gradientSteps: 2, batchSize: 8, hiddenSizes: [16] } });
      const a = createAgent("expit", envInfo("TestChain-v0", 1), config, 3);
      drive(a, "TestChain-v0", { variant: "train" }, 120, 1);
      const sub = join(dir, model);
      await a.save(sub);
      const b = await loadAgent(sub, envInfo("TestChain-v0", 1));
      expect(b.envSteps).toBe(a.envSteps);
      // the same continuation: acting (noise and sampling included) and learning
      const ta = drive(a, "TestChain-v0", { variant: "train" }, 150, 9);
      const tb = drive(b, "TestChain-v0", { variant: "train" }, 150, 9);
      expect(tb).toEqual(ta);
      const live = make("TestChain-v0", { variant: "train" });
      const { obs } = live.reset({ seed: 0 });
      const ctx = { envs: [live], simulator: { envId: "TestChain-v0", envConfig: { variant: "train" }, reward: "keep" as const } };
      expect(Array.from(b.actionProbs(obs, 1, ctx))).toEqual(Array.from(a.actionProbs(obs, 1, ctx)));
      a.dispose();
      b.dispose();
    },
    120_000,
  );
});

describe("registration", () => {
  it("declares its two test-time modes, search first, and rejects others", () => {
    expect(agentRegistration("expit").evalModes).toEqual(["search", "network"]);
    const agent = createAgent("expit", envInfo("TestChain-v0", 1), tiny(), 0);
    expect(() => agent.setEvalMode?.("oracle")).toThrow(/search, network/);
    agent.dispose();
  });
});

describe("smoke: expit on every registered environment", () => {
  const ids = registered()
    .map((r) => r.id)
    .filter((id) => !id.startsWith("Test") && id !== "TinyCorridor-v0");
  it.each(ids)(
    "%s (simulator and neural models)",
    (id) => {
      for (const model of ["simulator", "neural"]) {
        const config = tiny({
          model,
          numEnvs: 2,
          simulations: 4,
          updateEvery: 16,
          gradientSteps: 1,
          batchSize: 4,
          hiddenSizes: [8],
          worldModel: { gradientSteps: 1, batchSize: 4, hiddenSizes: [8] },
        });
        const agent = createAgent("expit", envInfo(id, 2), config, 0);
        drive(agent, id, {}, 48, 0);
        expect(agent.envSteps).toBe(48);
        const stats = agent.learn();
        expect(Number.isFinite(stats.metrics["losses/policy_loss"])).toBe(true);
        if (model === "neural") expect(Number.isFinite(stats.metrics["model/loss"])).toBe(true);
        agent.dispose();
      }
    },
    120_000,
  );
});
