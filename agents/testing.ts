/**
 * Test and bench support for agents: two tiny environments (a contextual
 * bandit and a short chain) and the run loop exactly as experiments/ runs it,
 * so learners can be trained without the experiment machinery.
 */
import type { Env, EnvSpec, Frame, ResetResult, StepResult } from "../envs/core.ts";
import { box, discrete } from "../envs/core.ts";
import { register, registered, registration } from "../envs/registry.ts";
import { Rng } from "../envs/rng.ts";
import { type VectorEnv, makeVector } from "../envs/vector.ts";
import type { Agent, AgentEnvInfo, Transition, UpdateStats } from "./core.ts";

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
    source: "agents/testing.ts",
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
  const vec = makeVector(envId, 1, envConfig);
  const info: AgentEnvInfo = {
    envId,
    envConfig,
    obsSize: vec.obsSize,
    nActions: vec.actionCount,
    numEnvs,
    maxEpisodeSteps: registration(envId).maxEpisodeSteps,
  };
  vec.close();
  return info;
}

export interface LoopTimings {
  actMs: number;
  envMs: number;
  observeMs: number;
  learnMs: number;
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
 * The run loop of experiments/, minus events: act on the whole vector env,
 * step, hand the transition to observe(), learn when ready. `vec` must be
 * reset already; the loop never resets it (episodes carry across updates).
 */
export function runLoop(agent: Agent, vec: VectorEnv, steps: number, onUpdate?: (s: UpdateStats) => void): LoopResult {
  const num = vec.num;
  const obsBefore = new Float32Array(vec.obs.length);
  const stateKeys = new Int32Array(num);
  const nextStateKeys = new Int32Array(num);
  const returns = new Float64Array(num);
  const result: LoopResult = {
    updates: [],
    episodeReturns: [],
    episodeEnds: [],
    timings: { actMs: 0, envMs: 0, observeMs: 0, learnMs: 0 },
  };
  const tm = result.timings;
  for (let done = 0; done < steps; done += num) {
    let t0 = performance.now();
    for (let i = 0; i < num; i++) stateKeys[i] = vec.envs[i]!.stateKey();
    obsBefore.set(vec.obs);
    const act = agent.act(vec.obs, { explore: true });
    let t1 = performance.now();
    tm.actMs += t1 - t0;
    vec.step(act.actions);
    for (let i = 0; i < num; i++) {
      const ended = vec.terminated[i] === 1 || vec.truncated[i] === 1;
      nextStateKeys[i] = ended ? -1 : vec.envs[i]!.stateKey();
      returns[i] += vec.rewards[i]!;
      if (ended) {
        result.episodeReturns.push(returns[i]!);
        result.episodeEnds.push(done + num);
        returns[i] = 0;
      }
    }
    t0 = performance.now();
    tm.envMs += t0 - t1;
    agent.observe({
      obs: obsBefore,
      act,
      rewards: vec.rewards,
      terminated: vec.terminated,
      truncated: vec.truncated,
      nextObs: vec.obs,
      finalObs: vec.finalObs,
      stateKeys,
      nextStateKeys,
    } satisfies Transition);
    t1 = performance.now();
    tm.observeMs += t1 - t0;
    if (agent.readyToLearn()) {
      const stats = agent.learn();
      result.updates.push(stats);
      onUpdate?.(stats);
      tm.learnMs += performance.now() - t1;
    }
  }
  return result;
}

/** Mean return over `episodes` episodes with learning off (greedy or sampled). */
export function meanReturn(
  agent: Agent,
  envId: string,
  episodes: number,
  seed: number,
  explore: boolean,
  envConfig: Record<string, unknown> = {},
): number {
  const vec = makeVector(envId, 1, envConfig);
  vec.reset(seed);
  let total = 0;
  let ret = 0;
  for (let finished = 0; finished < episodes; ) {
    const { actions } = agent.act(vec.obs, { explore });
    vec.step(actions);
    ret += vec.rewards[0]!;
    if (vec.terminated[0] || vec.truncated[0]) {
      total += ret;
      ret = 0;
      finished++;
    }
  }
  vec.close();
  return total / episodes;
}
