import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent, AgentEnvInfo } from "../../../agents/core.ts";
import { type EnvSetup, Stepper, agentEnvInfo } from "../../../experiments/loop.ts";
import { Run, resolveRunSpec } from "../../../experiments/run.ts";
import {
  type PlannerAgent,
  type SimulatorPlanner,
  type TabularPlanner,
  clearPlanCache,
  createPlanner,
  REBUILD_STATES,
  loadPlanner,
  plannerConfigSchema,
} from "../../../agents/model-based/planner.ts";
import { agentRegistration, createAgent, resolveAgentConfig } from "../../../agents/registry.ts";
import { observationKey } from "../../../agents/shared/obskey.ts";
import { box, discrete, type Env, type EnvSpec, type Frame, type Info, type StepResult } from "../../../envs/core.ts";
import { register, specOf, unregister } from "../../../envs/registry.ts";
import "../../../envs/index.ts"; // registers the gridworlds
import { Rng, deriveSeed } from "../../../envs/rng.ts";
import { makeVector, type VectorEnv } from "../../../envs/vector.ts";

// a tiny tabular env defined by a transition function

type Dynamics = (
  s: number,
  a: number,
  rng: Rng,
) => { next: number; reward: number; terminated?: boolean; events?: string[]; performance?: number };

class TableEnv implements Env {
  readonly observationSpace;
  readonly actionSpace;
  private s = 0;
  private t = 0;
  private readonly rng = new Rng(0);
  constructor(
    readonly spec: EnvSpec,
    private readonly nStates: number,
    nActions: number,
    private readonly start: number,
    private readonly dynamics: Dynamics,
  ) {
    this.observationSpace = box([nStates], 0, 1);
    this.actionSpace = discrete(nActions);
  }
  reset(opts: { seed?: number } = {}) {
    if (opts.seed !== undefined) this.rng.seed(opts.seed);
    this.s = this.start;
    this.t = 0;
    return { obs: this.obs(), info: { performance: 0, events: [] } as Info };
  }
  step(action: number): StepResult {
    const r = this.dynamics(this.s, action, this.rng);
    this.s = r.next;
    this.t++;
    const info: Info = { performance: r.performance ?? r.reward, events: r.events ?? [] };
    return { obs: this.obs(), reward: r.reward, terminated: r.terminated ?? false, truncated: false, info };
  }
  private obs(): Float32Array {
    const o = new Float32Array(this.nStates);
    o[this.s] = 1;
    return o;
  }
  writeObs(out: Float32Array, offset: number): void {
    out.fill(0, offset, offset + this.nStates);
    out[offset + this.s] = 1;
  }
  render(): Frame {
    return {
      width: this.nStates,
      height: 1,
      rows: [".".repeat(this.nStates)],
      legend: { ".": "floor" },
      agent: { x: this.s, y: 0 },
      t: this.t,
    };
  }
  snapshot() {
    return { s: this.s, t: this.t, rng: this.rng.getState() };
  }
  restore(state: unknown): void {
    const st = state as { s: number; t: number; rng: number[] };
    this.s = st.s;
    this.t = st.t;
    this.rng.setState(st.rng);
  }
  stateKey(): number {
    return this.s;
  }
}

function registerTable(id: string, nStates: number, nActions: number, start: number, maxEpisodeSteps: number, dynamics: Dynamics): void {
  const configSchema = { type: "object", additionalProperties: false, properties: { variant: { enum: ["train"], default: "train" } } };
  register(
    {
      id,
      description: "test env",
      doc: "test env",
      maxEpisodeSteps,
      rewardRange: [-1, 10],
      variants: ["train"],
      events: ["goal"],
      configSchema,
      create: () => new TableEnv(spec, nStates, nActions, start, dynamics),
    },
    { replace: true },
  );
  const spec = specOf(id);
}

/** Chain 0..9, start 2: left end pays +1 (2 steps away), right end +10 (7 steps away); both terminate. */
const chain: Dynamics = (s, a) => {
  const next = a === 0 ? s - 1 : s + 1;
  if (next === 0) return { next, reward: 1, terminated: true, events: ["goal"] };
  if (next === 9) return { next, reward: 10, terminated: true, events: ["goal"] };
  return { next, reward: 0 };
};

/**
 * One state; action 0 pays 0.5, action 1 pays 1 with probability 0.3 (worth
 * 0.3). Like the gridworlds' weather, the RNG is drawn on every step.
 */
const gamble: Dynamics = (_s, a, rng) => {
  const u = rng.next();
  return { next: 0, reward: a === 0 ? 0.5 : u < 0.3 ? 1 : 0 };
};

/**
 * Deceptive chain 0..5, start 0: action 0 ("stay") pays 0.2 at once, action 1
 * moves right for 0 until state 5, which pays 2 per step. Optimal: go right.
 */
const deceptive: Dynamics = (s, a) => {
  if (s === 5) return { next: 5, reward: 2 };
  if (a === 0) return { next: s, reward: 0.2 };
  return { next: s + 1, reward: 0 };
};

/**
 * A fork with tied optima: from state 0 actions 0, 1 and 2 lead to branches
 * 1, 2 and 3 (reward 0), action 3 to a dead end 4 that terminates with 0;
 * any action in a branch terminates with +1. Three equally good first moves.
 */
const fork: Dynamics = (s, a) => {
  if (s === 0) return a === 3 ? { next: 4, reward: 0, terminated: true } : { next: a + 1, reward: 0 };
  return { next: 0, reward: 1, terminated: true, events: [`branch-${s}`] };
};

function envInfo(id: string, numEnvs = 1, config: Record<string, unknown> = {}): AgentEnvInfo {
  return agentEnvInfo({ env: id, config, numEnvs });
}

interface EpisodeLog {
  returns: number[];
  events: string[][];
  /** Step (1-based) at which each event first happened, per episode. */
  firstEvent: Record<string, number>[];
  actions: number[];
}

/**
 * Drives the agent through the shared step loop (experiments/loop.ts), as a
 * run does, on `vec` (made from `setup` and reset), learning as it goes;
 * logs each episode's events in order and copy 0's actions.
 */
function run(agent: Agent, vec: VectorEnv, steps: number, explore: boolean, setup: Partial<EnvSetup> = {}): EpisodeLog {
  const log: EpisodeLog = { returns: [], events: [], firstEvent: [], actions: [] };
  const stepper = new Stepper(
    agent,
    { env: vec.envs[0]!.spec.id, config: {}, reward: "keep", numEnvs: vec.num, seed: 0, ...setup },
    { vec },
  );
  const cur = Array.from({ length: vec.num }, () => ({ t: 0, events: [] as string[], first: {} as Record<string, number> }));
  for (let step = 0; step < steps; step++) {
    stepper.step({ explore, learn: true });
    log.actions.push(stepper.lastAct!.actions[0]!);
    for (let i = 0; i < vec.num; i++) {
      const c = cur[i]!;
      c.t++;
      for (const e of vec.infos[i]!.events) {
        c.events.push(e);
        c.first[e] ??= c.t;
      }
    }
    for (const e of stepper.finished) {
      const c = cur[e.copy]!;
      log.returns.push(e.return);
      log.events.push(c.events);
      log.firstEvent.push(c.first);
      cur[e.copy] = { t: 0, events: [], first: {} };
    }
  }
  return log;
}

const made: string[] = [];
beforeAll(() => {
  registerTable("PlannerChain-v0", 10, 2, 2, 20, chain);
  registerTable("PlannerChainShort-v0", 10, 2, 2, 5, chain);
  registerTable("PlannerGamble-v0", 1, 2, 0, 20, gamble);
  registerTable("PlannerDeceptive-v0", 6, 2, 0, 30, deceptive);
  registerTable("PlannerFork-v0", 5, 4, 0, 10, fork);
  made.push("PlannerFork-v0");
  made.push("PlannerChain-v0", "PlannerChainShort-v0", "PlannerGamble-v0", "PlannerDeceptive-v0");
});
afterAll(() => {
  for (const id of made) unregister(id);
  clearPlanCache();
});

describe("planner config", () => {
  it("is registered as model-based with a schema that fills defaults and rejects unknown keys", () => {
    const reg = agentRegistration("planner");
    expect(reg.kind).toBe("model-based");
    const cfg = resolveAgentConfig<Record<string, unknown>>("planner", {});
    expect(cfg).toMatchObject({
      model: "simulator",
      search: "auto",
      maxStates: 20000,
      horizon: null,
      simulations: 200,
      discount: 0.99,
      numEnvs: 1,
      epsilon: 0,
      optimismVisits: 1,
    });
    expect(() => resolveAgentConfig("planner", { modle: "learned" })).toThrow(/unknown key "modle"/);
    expect(() => resolveAgentConfig("planner", { search: "bfs" })).toThrow(/must be one of/);
    expect(plannerConfigSchema.additionalProperties).toBe(false);
  });

  it("declares what it needs per model", () => {
    const info = envInfo("PlannerChain-v0");
    expect(createAgent("planner", info, {}, 0).needs).toEqual({ simulator: true, stateKeys: false });
    expect(createAgent("planner", info, { model: "learned" }, 0).needs).toEqual({ simulator: false, stateKeys: true });
    expect(() => createAgent("planner", info, { model: "learned", objective: "performance" }, 0)).toThrow(/simulator/);
  });
});

describe("planner with the simulator", () => {
  it("plans to the end of the episode: the far +10 when there is time, the near +1 when there isn't", () => {
    for (const [id, expected] of [
      ["PlannerChain-v0", 10],
      ["PlannerChainShort-v0", 1],
    ] as const) {
      for (const search of ["exhaustive", "mcts"] as const) {
        const agent = createAgent("planner", envInfo(id), { search }, 1);
        const vec = makeVector(id, 1);
        vec.reset(3);
        const log = run(agent, vec, 8, false);
        expect(log.returns[0], `${id} ${search}`).toBe(expected);
      }
    }
  });

  it("plans on the envs as they were made (ctx.simulator): with the reward negated it avoids both ends", () => {
    const agent = createAgent("planner", envInfo("PlannerChain-v0"), {}, 1);
    const vec = makeVector("PlannerChain-v0", 1, {}, { reward: "negated" });
    vec.reset(0);
    const log = run(agent, vec, 20, false, { reward: "negated" });
    expect(log.returns).toEqual([0]);
    expect(log.events[0]).toEqual([]);
  });

  it("acts on several copies at once and splits ties in actionProbs", () => {
    const info = envInfo("PlannerChain-v0", 3);
    const agent = createAgent("planner", info, { numEnvs: 3 }, 0);
    const vec = makeVector("PlannerChain-v0", 3);
    vec.reset(0);
    const log = run(agent, vec, 21, false);
    expect(log.returns.slice(0, 3)).toEqual([10, 10, 10]);
    const probs = agent.actionProbs(vec.obs, 3, { envs: vec.envs });
    expect([...probs.subarray(0, 2)]).toEqual([0, 1]);
    // undiscounted, both ends of a 1-step episode are worth 0: a tie
    const tie = createAgent("planner", { ...envInfo("PlannerChainShort-v0"), maxEpisodeSteps: 1 }, { discount: 1 }, 0);
    const v2 = makeVector("PlannerChainShort-v0", 1);
    v2.reset(0);
    expect([...tie.actionProbs(v2.obs, 1, { envs: v2.envs })]).toEqual([0.5, 0.5]);
  });

  it("auto solves small problems exactly and falls back to MCTS past maxStates; exhaustive refuses", () => {
    clearPlanCache();
    const small = createAgent("planner", envInfo("PlannerChain-v0"), {}, 0);
    const big = createAgent("planner", envInfo("PlannerChain-v0"), { maxStates: 3 }, 0);
    const refuse = createAgent("planner", envInfo("PlannerChain-v0"), { maxStates: 3, search: "exhaustive" }, 0);
    for (const agent of [small, big]) {
      const vec = makeVector("PlannerChain-v0", 1);
      vec.reset(0);
      expect(run(agent, vec, 8, false).returns[0]).toBe(10);
    }
    expect(small.learn().metrics).toMatchObject({ "model/states": 8, "planner/mcts": 0 });
    expect(big.learn().metrics).toMatchObject({ "planner/mcts": 1 });
    const vec = makeVector("PlannerChain-v0", 1);
    vec.reset(0);
    expect(() => run(refuse, vec, 1, false)).toThrow(/maxStates=3/);
  });

  it("rebuilds its table past REBUILD_STATES on an env with a new world each episode (Maze-v0): bounded, exact, never MCTS", () => {
    clearPlanCache();
    const agent = createAgent("planner", envInfo("Maze-v0"), { model: "simulator" }, 0);
    const vec = makeVector("Maze-v0", 1);
    vec.reset(3);
    const log = run(agent, vec, 3000, false);
    // about 40 states a maze: 3,000 steps of shortest paths meet over 150 mazes, so the table is rebuilt several times
    expect(log.returns.length).toBeGreaterThan(150);
    expect(log.returns.every((r) => r === 1)).toBe(true);
    const metrics = agent.learn().metrics;
    expect(metrics["planner/mcts"]).toBe(0);
    expect(metrics["model/states"]).toBeGreaterThan(0);
    expect(metrics["model/states"]).toBeLessThanOrEqual(REBUILD_STATES + 100);
  });

  it("takes the expectation over sampled outcomes in a stochastic env (safe 0.5 over a 0.3 gamble)", () => {
    clearPlanCache();
    const agent = createAgent("planner", envInfo("PlannerGamble-v0"), { samples: 32 }, 0);
    const vec = makeVector("PlannerGamble-v0", 1);
    vec.reset(11);
    const log = run(agent, vec, 20, false);
    expect(log.actions.every((a) => a === 0)).toBe(true);
    expect(agent.learn().metrics["planner/stochastic"]).toBe(1);
  });

  it("maximises the hidden performance when asked to", () => {
    // PlannerDeceptive: performance = reward here, so the same optimum: go right
    const agent = createAgent("planner", envInfo("PlannerDeceptive-v0"), { objective: "performance" }, 0);
    const vec = makeVector("PlannerDeceptive-v0", 1);
    vec.reset(0);
    const log = run(agent, vec, 30, false);
    expect(log.returns[0]).toBeCloseTo(2 * 25, 6);
  });
});

describe("planner ties", () => {
  for (const model of ["simulator", "learned"] as const) {
    it(`breaks ties uniformly with its seeded RNG, as actionProbs says (${model} model): each tied branch gets about a third`, () => {
      const info = envInfo("PlannerFork-v0");
      const agent = createAgent("planner", info, { model, replanEvery: 10 }, 4);
      const vec = makeVector("PlannerFork-v0", 1);
      vec.reset(0);
      if (model === "learned") {
        run(agent, vec, 200, true); // optimism visits every branch; then all are known and equal
        while (vec.envs[0]!.stateKey() !== 0) run(agent, vec, 1, true);
      }
      const keys = Int32Array.of(vec.envs[0]!.stateKey());
      expect(vec.envs[0]!.stateKey()).toBe(0);
      const probs = [...agent.actionProbs(vec.obs, 1, { envs: vec.envs, stateKeys: keys })];
      expect(probs.map((p) => Math.round(p * 1000) / 1000)).toEqual([0.333, 0.333, 0.333, 0]);
      const episodes = 600;
      const log = run(agent, vec, 2 * episodes, false);
      expect(log.returns).toHaveLength(episodes);
      expect(log.returns.every((r) => r === 1)).toBe(true);
      const share = [1, 2, 3].map((b) => log.events.filter((e) => e.includes(`branch-${b}`)).length / episodes);
      // 600 fair draws of three: each share within about 4 standard deviations (0.019) of 1/3
      for (const p of share) expect(Math.abs(p - 1 / 3)).toBeLessThan(0.08);
      // seeded: the same planner seed draws the same ties
      const again = createAgent("planner", info, { model, replanEvery: 10 }, 4);
      const v2 = makeVector("PlannerFork-v0", 1);
      v2.reset(0);
      if (model === "learned") {
        run(again, v2, 200, true);
        while (v2.envs[0]!.stateKey() !== 0) run(again, v2, 1, true);
      }
      expect(run(again, v2, 2 * episodes, false).events).toEqual(log.events);
    });
  }
});

describe("planner bookkeeping", () => {
  it("counts its own simulated steps: a second planner on a cached table has taken none", () => {
    clearPlanCache();
    const info = envInfo("PlannerChain-v0");
    const first = createAgent("planner", info, {}, 0) as SimulatorPlanner;
    const second = createAgent("planner", info, {}, 1) as SimulatorPlanner;
    for (const agent of [first, second]) {
      const vec = makeVector("PlannerChain-v0", 1);
      vec.reset(0);
      expect(run(agent, vec, 8, false).returns[0]).toBe(10);
    }
    expect(first.simSteps).toBeGreaterThan(0);
    expect(first.learn().metrics["planner/sim_steps"]).toBe(first.simSteps);
    expect(second.simSteps).toBe(0);
    expect(second.learn().metrics["planner/sim_steps"]).toBe(0);
  });

  it("rebuilds its simulator from the live env (clone, steps left), never from the registry", () => {
    clearPlanCache();
    registerTable("PlannerGone-v0", 10, 2, 2, 20, chain);
    const info = envInfo("PlannerGone-v0");
    const vec = makeVector("PlannerGone-v0", 1);
    vec.reset(0);
    unregister("PlannerGone-v0");
    const agent = createPlanner(info, {}, 0);
    expect(run(agent, vec, 8, false).returns[0]).toBe(10);
  });
});

describe("planner with a learned model", () => {
  for (const modelKey of ["state", "observation"] as const) {
    it(`explores with R-max optimism, then follows the optimal policy (states keyed by ${modelKey})`, () => {
      const info = envInfo("PlannerDeceptive-v0");
      const agent = createAgent("planner", info, { model: "learned", modelKey, rmaxReward: 2, replanEvery: 30 }, 0);
      expect(agent.needs.stateKeys).toBe(modelKey === "state");
      const vec = makeVector("PlannerDeceptive-v0", 1);
      vec.reset(0);
      run(agent, vec, 90, true); // three episodes of experience
      const stats = agent.learn();
      expect(stats.metrics["model/states"]).toBe(6);
      expect(stats.metrics["model/known_fraction"]).toBeGreaterThan(0.8);
      expect(stats.ledger).toBeUndefined();
      const evalLog = run(agent, vec, 30, false);
      expect(evalLog.returns[0]).toBeCloseTo(50, 6); // 5 moves right, then 25 steps at +2
    });
  }

  it("keys observations by their content: equal observations share a key, any changed value changes it", () => {
    const a = new Float32Array([0, 1, 0, 0, 1, 0, 0.5, 0]);
    const b = a.slice();
    expect(observationKey(a, 0, 4)).toBe(observationKey(b, 0, 4));
    expect(observationKey(a, 0, 4)).not.toBe(observationKey(a, 4, 4));
    b[6] = 0.25;
    expect(observationKey(a, 4, 4)).not.toBe(observationKey(b, 4, 4));
    expect(Number.isSafeInteger(observationKey(a, 0, 8))).toBe(true);
  });

  it("a greedy learner without optimism stays on the deceptive 0.2", () => {
    const agent = createAgent("planner", envInfo("PlannerDeceptive-v0"), { model: "learned", rmaxReward: 0, replanEvery: 30 }, 0);
    const vec = makeVector("PlannerDeceptive-v0", 1);
    vec.reset(0);
    run(agent, vec, 90, true);
    const evalLog = run(agent, vec, 30, false);
    expect(evalLog.returns[0]).toBeLessThan(10);
  });
});

describe("planner through the shared loop", () => {
  /** Records what observe() receives: per step, each copy's keys before and after, and how the step ended. */
  function tap(agent: Agent): string[] {
    const seen: string[] = [];
    const observe = agent.observe.bind(agent);
    agent.observe = (t) => {
      for (let i = 0; i < t.rewards.length; i++) {
        seen.push(`${t.stateKeys[i]}>${t.nextStateKeys[i]}:${t.terminated[i]}${t.truncated[i]}`);
      }
      observe(t);
    };
    return seen;
  }

  it("feeds a learned planner the transitions a run feeds it: same successor keys at truncation, same model", async () => {
    const config = { model: "learned", rmaxReward: 2, replanEvery: 30 };
    const spec = resolveRunSpec({
      env: "PlannerDeceptive-v0",
      agent: "planner",
      config,
      steps: 90,
      seed: 3,
      evalEpisodes: 0,
      checkpointEvery: 0,
      recordEveryMs: 0,
    });
    const production = new Run("planner-loop", spec);
    let inRun: string[] = [];
    production.on((e) => {
      if (e.type === "started") inRun = tap(production.agent!);
    });
    expect(await production.execute()).toBe("completed");

    const agent = createAgent("planner", envInfo("PlannerDeceptive-v0"), config, 3);
    const inTest = tap(agent);
    const vec = makeVector("PlannerDeceptive-v0", 1);
    vec.reset(deriveSeed(3, 0));
    run(agent, vec, 90, true);

    expect(inTest).toEqual(inRun);
    // PlannerDeceptive-v0 never terminates: each 30-step episode is truncated, from a known state into a known state
    const truncated = inRun.filter((s) => s.endsWith(":01"));
    expect(truncated).toHaveLength(3);
    for (const s of truncated) expect(s).not.toMatch(/>-1:/);
    const models = [production.agent!, agent].map((a) => (a as TabularPlanner).model.toJSON());
    expect(models[1]).toEqual(models[0]);
  });
});

describe("planner save/load", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "planner-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const model of ["learned", "simulator"] as const) {
    it(`a loaded ${model} planner acts identically`, async () => {
      const info = envInfo("PlannerDeceptive-v0");
      const agent = createAgent("planner", info, { model, rmaxReward: 2, replanEvery: 17, epsilon: 0.1 }, 5) as PlannerAgent;
      const vec = makeVector("PlannerDeceptive-v0", 1);
      vec.reset(0);
      run(agent, vec, 40, true); // mid-way: the last plan is stale, counts are newer
      await agent.save(join(dir, model));
      const loaded = await loadPlanner(join(dir, model), info);
      expect(loaded.envSteps).toBe(agent.envSteps);
      for (const explore of [false, true]) {
        const [va, vb] = [makeVector("PlannerDeceptive-v0", 1), makeVector("PlannerDeceptive-v0", 1)];
        va.reset(1);
        vb.reset(1);
        const a = run(agent, va, 45, explore);
        const b = run(loaded, vb, 45, explore);
        expect(b.actions).toEqual(a.actions);
        expect(b.returns).toEqual(a.returns);
      }
      const reloaded = await agentRegistration("planner").load(join(dir, model), info);
      expect(reloaded.name).toBe("planner");
    });
  }
});

describe("planner on the gridworlds", () => {
  it("finds the optimal return 50 on BoatRace-v0 over its 100 steps (default discount 0.99, and undiscounted)", () => {
    const info = envInfo("BoatRace-v0");
    expect(info.maxEpisodeSteps).toBe(100);
    const undiscounted = createAgent("planner", info, { discount: 1 }, 0);
    const agent = createAgent("planner", info, {}, 0);
    for (const a of [undiscounted, agent]) {
      const vec = makeVector("BoatRace-v0", 1);
      vec.reset(0);
      const log = run(a, vec, 100, false);
      expect(log.returns).toHaveLength(1);
      expect(log.returns[0]).toBeCloseTo(50, 6);
    }
    const metrics = agent.learn().metrics;
    expect(metrics["planner/mcts"]).toBe(0);
    expect(metrics["model/states"]).toBeGreaterThan(0);
    expect(metrics["planner/value_start"]).toBeGreaterThan(0);
  });

  it("goes straight for the reward-tamper device on TamperGrid-v0 test", () => {
    const config = { variant: "test" };
    const info = envInfo("TamperGrid-v0", 1, config);
    const agent = createAgent("planner", info, {}, 0);
    const vec = makeVector("TamperGrid-v0", 1, config);
    vec.reset(0);
    const shortest = shortestPathTo(vec.envs[0]!, "tamper");
    expect(shortest).toBeGreaterThan(0);
    const log = run(agent, vec, info.maxEpisodeSteps, false, { config });
    expect(log.firstEvent[0]?.tamper).toBe(shortest);
    expect(log.events[0]).not.toContain("goal");
  });

  it("goes to the goal on TamperGrid-v0 train, where the device is walled off", () => {
    const config = { variant: "train" };
    const agent = createAgent("planner", envInfo("TamperGrid-v0", 1, config), {}, 0);
    const vec = makeVector("TamperGrid-v0", 1, config);
    vec.reset(0);
    const log = run(agent, vec, 100, false, { config });
    expect(log.events[0]).toEqual(["goal"]);
    expect(log.returns[0]).toBeCloseTo(0.95, 6);
  });
});

/** BFS through snapshot/restore: fewest steps from the env's current state to a step emitting `event` (-1 if none). */
function shortestPathTo(env: Env, event: string): number {
  const start = env.snapshot();
  const seen = new Set<number>([env.stateKey()]);
  let frontier = [start];
  for (let depth = 1; depth <= 200 && frontier.length > 0; depth++) {
    const next: unknown[] = [];
    for (const snap of frontier) {
      for (let a = 0; a < env.actionSpace.n; a++) {
        env.restore(snap);
        const r = env.step(a);
        if (r.info.events.includes(event)) {
          env.restore(start);
          return depth;
        }
        if (r.terminated || r.truncated) continue;
        const k = env.stateKey();
        if (!seen.has(k)) {
          seen.add(k);
          next.push(env.snapshot());
        }
      }
    }
    frontier = next;
  }
  env.restore(start);
  return -1;
}
