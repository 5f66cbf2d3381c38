/**
 * Test and bench support for agents: two tiny environments (a contextual
 * bandit and a short chain), and `runLoop`, which trains through the shared
 * step loop (experiments/loop.ts) on a vector env the caller made, so
 * learners are tested on exactly the data a run feeds them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { initBackend } from "../../agents/shared/backend.ts";
import type { Env, EnvSpec, Frame, ResetResult, StepResult } from "../../envs/core.ts";
import { box, discrete } from "../../envs/core.ts";
import { register, registered } from "../../envs/registry.ts";
import { Rng } from "../../envs/rng.ts";
import { makeVector, type VectorEnv } from "../../envs/vector.ts";
import type { Agent, AgentEnvInfo, UpdateStats } from "../../agents/core.ts";
import { createAgent } from "../../agents/registry.ts";
import { type LoopTimings, Stepper, agentEnvInfo, train } from "../../experiments/loop.ts";

const variantSchema = {
  type: "object",
  additionalProperties: false,
  properties: { variant: { enum: ["train"], default: "train" } },
} as const;

function spec(id: string, description: string, maxEpisodeSteps: number, rewardRange: [number, number]): EnvSpec {
  return {
    id,
    description,
    doc: description,
    maxEpisodeSteps,
    rewardRange,
    variants: ["train"],
    events: ["goal"],
    source: "test/agents/testing.ts",
    configSchema: variantSchema,
  };
}

/**
 * TestBandit-v0: a contextual two-armed bandit. Each episode is one step:
 * the observation is one-hot of a random context c in {0, 1}; action c pays 1,
 * the other pays 0. A learner must read the observation to beat 0.5.
 */
export class ContextBandit implements Env {
  readonly spec = spec("TestBandit-v0", "contextual two-armed bandit (one step, action = context pays 1)", 1, [0, 1]);
  readonly observationSpace = box([2], 0, 1);
  readonly actionSpace = discrete(2, ["zero", "one"]);
  private rng = new Rng(0);
  private context = 0;
  private obs = new Float32Array(2);

  reset(opts: { seed?: number } = {}): ResetResult {
    if (opts.seed !== undefined) this.rng.seed(opts.seed);
    this.context = this.rng.int(2);
    this.obs = new Float32Array(2);
    this.obs[this.context] = 1;
    return { obs: this.obs.slice(), info: { performance: 0, events: [] } };
  }

  step(action: number): StepResult {
    const hit = action === this.context;
    return {
      obs: this.obs.slice(),
      reward: hit ? 1 : 0,
      terminated: true,
      truncated: false,
      info: { performance: hit ? 1 : 0, events: hit ? ["goal"] : [] },
    };
  }

  render(): Frame {
    return { width: 2, height: 1, rows: [this.context ? ".G" : "G."], legend: { G: "goal", ".": "floor" }, agent: null, t: 0 };
  }

  snapshot(): unknown {
    return { rng: this.rng.getState(), context: this.context };
  }

  restore(state: unknown): void {
    const s = state as { rng: number[]; context: number };
    this.rng.setState(s.rng);
    this.context = s.context;
    this.obs = new Float32Array(2);
    this.obs[this.context] = 1;
  }

  stateKey(): number {
    return this.context;
  }

  writeObs(out: Float32Array, offset: number): void {
    out.set(this.obs, offset);
  }
}

/**
 * TestChain-v0: positions 0..length-1, start at 0; "left" / "right" move one
 * cell; reaching the last cell pays 1 and terminates. The time limit
 * (2 x length) truncates dawdling episodes, so bootstrapping is exercised.
 */
export class Chain implements Env {
  static readonly length = 6;
  readonly spec = spec("TestChain-v0", "short chain: walk right to the goal", 2 * Chain.length, [0, 1]);
  readonly observationSpace = box([Chain.length], 0, 1);
  readonly actionSpace = discrete(2, ["left", "right"]);
  private pos = 0;
  private t = 0;

  reset(): ResetResult {
    this.pos = 0;
    this.t = 0;
    return { obs: this.observe(), info: { performance: 0, events: [] } };
  }

  private observe(): Float32Array {
    const o = new Float32Array(Chain.length);
    o[this.pos] = 1;
    return o;
  }

  step(action: number): StepResult {
    this.t++;
    this.pos = Math.max(0, Math.min(Chain.length - 1, this.pos + (action === 1 ? 1 : -1)));
    const goal = this.pos === Chain.length - 1;
    return {
      obs: this.observe(),
      reward: goal ? 1 : 0,
      terminated: goal,
      truncated: false,
      info: { performance: goal ? 1 : 0, events: goal ? ["goal"] : [] },
    };
  }

  render(): Frame {
    const row = Array.from({ length: Chain.length }, (_, i) => (i === Chain.length - 1 ? "G" : ".")).join("");
    return { width: Chain.length, height: 1, rows: [row], legend: { G: "goal", ".": "floor" }, agent: { x: this.pos, y: 0 }, t: this.t };
  }

  snapshot(): unknown {
    return { pos: this.pos, t: this.t };
  }

  restore(state: unknown): void {
    ({ pos: this.pos, t: this.t } = state as { pos: number; t: number });
  }

  stateKey(): number {
    return this.pos;
  }

  writeObs(out: Float32Array, offset: number): void {
    out.fill(0, offset, offset + Chain.length);
    out[offset + this.pos] = 1;
  }
}

/** Before a file's tests: the cpu backend (deterministic), and the two test environments registered. */
export function setUpAgentTests(): void {
  beforeAll(async () => {
    await initBackend("cpu");
    registerTestEnvs();
  });
}

/** A temporary folder for the tests of the enclosing describe block (or file): made before them, removed after; `dir()` names it. */
export function tempDir(prefix: string): () => string {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/** Registers TestBandit-v0 and TestChain-v0 once. */
export function registerTestEnvs(): void {
  const have = new Set(registered().map((r) => r.id));
  for (const make of [() => new ContextBandit(), () => new Chain()]) {
    const s = make().spec;
    if (have.has(s.id)) continue;
    register({ ...s, create: make, source: s.source });
  }
}

/** The env info the run loop would hand an agent for `envId` with `numEnvs` copies. */
export function envInfo(envId: string, numEnvs: number, envConfig: Record<string, unknown> = {}): AgentEnvInfo {
  return agentEnvInfo({ env: envId, config: envConfig, numEnvs });
}

/** A registered agent made for `numEnvs` copies of `envId`, and those copies made and reset, both with `seed`. */
export function agentOn<A extends Agent = Agent>(
  name: string,
  envId: string,
  numEnvs: number,
  config: unknown,
  seed: number,
): { agent: A; vec: VectorEnv } {
  const agent = createAgent(name, envInfo(envId, numEnvs), config, seed) as A;
  const vec = makeVector(envId, numEnvs);
  vec.reset(seed);
  return { agent, vec };
}

/** For TestBandit-v0: the probability of the paying arm in context 0 and in context 1 (a learner puts both near 1). */
export function payingArm(agent: Agent): [number, number] {
  const p = agent.actionProbs(Float32Array.from([1, 0, 0, 1]), 2);
  return [p[0]!, p[3]!];
}

/** The ids of every registered environment but the tests' own (TestBandit-v0, TestChain-v0): what the smoke tests run on. */
export function builtinEnvIds(): string[] {
  return registered()
    .map((r) => r.id)
    .filter((id) => !id.startsWith("Test"));
}

/** The probability of "right" in each cell of TestChain-v0 before the goal: what an agent that learned the chain puts near 1. */
export function rightOnChain(agent: Agent): number[] {
  const cells = Chain.length - 1;
  const obs = new Float32Array(cells * Chain.length);
  for (let p = 0; p < cells; p++) obs[p * Chain.length + p] = 1;
  const probs = agent.actionProbs(obs, cells);
  return Array.from({ length: cells }, (_, p) => probs[p * 2 + 1]!);
}

/** Trains a fresh `name` on `numEnvs` copies of TestChain-v0 (seed 1) for `steps` env steps; its probability of "right" in each cell before the goal. */
export function trainedOnChain(name: string, config: unknown, numEnvs: number, steps: number): number[] {
  const { agent, vec } = agentOn(name, "TestChain-v0", numEnvs, config, 1);
  runLoop(agent, vec, steps);
  const right = rightOnChain(agent);
  agent.dispose();
  vec.close();
  return right;
}

export interface LoopResult {
  updates: UpdateStats[];
  /** Returns of the episodes finished during the loop, in order. */
  episodeReturns: number[];
  /** Env steps into the loop (all copies) at which each of those episodes ended. */
  episodeEnds: number[];
  timings: LoopTimings;
}

/**
 * Trains `agent` for `steps` env steps through the shared loop on `vec`,
 * made with make(envId, envConfig) (reward kept) and reset already; the loop
 * never resets it, so episodes carry across calls (each call counts returns
 * from where it starts).
 */
export function runLoop(
  agent: Agent,
  vec: VectorEnv,
  steps: number,
  onUpdate?: (s: UpdateStats) => void,
  envConfig: Record<string, unknown> = {},
): LoopResult {
  const setup = { env: vec.envs[0]!.spec.id, config: envConfig, reward: "keep" as const, numEnvs: vec.num, seed: 0 };
  const stepper = new Stepper(agent, setup, { vec, timed: true });
  const r = train(stepper, steps, { ...(onUpdate ? { onUpdate } : {}) });
  return {
    updates: r.updates,
    episodeReturns: r.episodes.map((e) => e.return),
    episodeEnds: r.episodes.map((e) => e.envSteps),
    timings: stepper.timings!,
  };
}
