/**
 * The one step loop. Training (experiments/run.ts), evaluation, the probes'
 * extinction phase, the tests and the benchmarks all drive an agent through
 * this file, so they all hand it the same data:
 *
 *   keys -> act (with the act context the agent asked for) -> vector step
 *        -> per-copy episode accounting -> observe -> learn when ready
 *
 * `EnvSetup` says how the envs are made; a `Stepper` owns the vector env, the
 * state keys before and after each step (the ended episode's last key where
 * one ended, never -1 in its place), the transition handed to observe(), and
 * each copy's running episode (return, performance, length, events). What only
 * a run does (interventions, recording, checkpoints, pausing) stays in run.ts.
 */
import { make, registration, type RewardTransform } from "../envs/registry.ts";
import { VectorEnv } from "../envs/vector.ts";
import type { ActContext, ActResult, Agent, AgentEnvInfo, Transition, UpdateStats } from "../agents/core.ts";

/** How the envs of a loop are made: a plain value, stored and passed around whole. */
export interface EnvSetup {
  /** Registered env id, e.g. "BoatRace-v0". */
  env: string;
  /** The env's config, variant included (make() validates it and fills defaults). */
  config: Record<string, unknown>;
  /** Generic reward wrapper make() applies ("keep": none). */
  reward: RewardTransform;
  /** Env copies stepped together. */
  numEnvs: number;
  /** Seed of the first reset; copy i is seeded with deriveSeed(seed, i). */
  seed: number;
}

/** Makes the setup's copies and resets them with its seed. */
export function openEnvs(setup: EnvSetup): VectorEnv {
  if (!(Number.isInteger(setup.numEnvs) && setup.numEnvs >= 1))
    throw new RangeError(`numEnvs must be an integer >= 1, got ${setup.numEnvs}`);
  const envs = Array.from({ length: setup.numEnvs }, () => make(setup.env, setup.config, { reward: setup.reward }));
  const vec = new VectorEnv(envs);
  vec.reset(setup.seed);
  return vec;
}

/** What an agent is told about the envs it will act in (made once to read the spaces). */
export function agentEnvInfo(setup: Pick<EnvSetup, "env" | "config" | "numEnvs">): AgentEnvInfo {
  const env = make(setup.env, setup.config);
  const info: AgentEnvInfo = {
    envId: setup.env,
    envConfig: { ...setup.config },
    obsSize: env.observationSpace.shape.reduce((a, b) => a * b, 1),
    obsShape: [...env.observationSpace.shape],
    ...(env.observationSpace.layout ? { obsLayout: env.observationSpace.layout } : {}),
    nActions: env.actionSpace.n,
    numEnvs: setup.numEnvs,
    maxEpisodeSteps: registration(setup.env).maxEpisodeSteps,
    rewardRange: [...env.spec.rewardRange],
  };
  env.close?.();
  return info;
}

/** The act context an agent asked for in `needs`: state keys, the steps left per copy, and for the simulator planner the live envs and how they were made. */
export function actContext(agent: Agent, explore: boolean, vec: VectorEnv, stateKeys: Int32Array, setup: EnvSetup): ActContext {
  return {
    explore,
    ...(agent.needs.stateKeys ? { stateKeys } : {}),
    ...(agent.needs.simulator
      ? { envs: vec.envs, simulator: { envId: setup.env, envConfig: { ...setup.config }, reward: setup.reward } }
      : {}),
    ...(agent.needs.stepsLeft ? { stepsLeft: vec.envs.map((e) => e.stepsLeft?.() ?? Number.POSITIVE_INFINITY) } : {}),
  };
}

/** An episode one copy finished. */
export interface LoopEpisode {
  /** Which copy of the vector env played it. */
  copy: number;
  return: number;
  performance: number;
  length: number;
  /** Ended inside the MDP (false: truncated by the time limit). */
  terminated: boolean;
  /** Event name -> count within the episode. */
  events: Record<string, number>;
  /** The stepper's env steps (all copies) when it ended. */
  envSteps: number;
}

export interface StepOptions {
  /** Sample actions (true) or act with exploration off (false). */
  explore: boolean;
  /**
   * true: hand the transition to observe() and call learn() when the agent is
   * ready; "observe": observe() only, learn() is the caller's (collectRollout);
   * false: neither.
   */
  learn: boolean | "observe";
}

/** Wall time per phase, in ms (only kept when the stepper is made with `timed`). */
export interface LoopTimings {
  actMs: number;
  envMs: number;
  observeMs: number;
  learnMs: number;
}

interface Running {
  ret: number;
  perf: number;
  len: number;
  events: Record<string, number>;
}

const fresh = (): Running => ({ ret: 0, perf: 0, len: 0, events: {} });

/**
 * Steps an agent on the copies of one EnvSetup. After each step(), `lastAct`,
 * `stateKeys` (before the step), `nextStateKeys` (after it), `finished` and
 * `update` describe what happened; the vector env's buffers hold the rest.
 */
export class Stepper {
  readonly vec: VectorEnv;
  readonly num: number;
  /** State keys of each copy before the last step (-1 where the env has none). */
  readonly stateKeys: Int32Array;
  /** State keys after the last step: the ended episode's last state where one ended. */
  readonly nextStateKeys: Int32Array;
  /** Episodes finished in the last step, in copy order. */
  readonly finished: LoopEpisode[] = [];
  /** The last step's actions (and whatever the learner keeps with them). */
  lastAct: ActResult | null = null;
  /** The update learn() made in the last step, if it made one. */
  update: UpdateStats | null = null;
  /** Env steps taken by this stepper, over all copies. */
  envSteps = 0;
  readonly timings: LoopTimings | null;
  private readonly obsBefore: Float32Array;
  private readonly running: Running[];

  /** `vec`: copies already made from `setup` and reset (made and reset here otherwise). */
  constructor(
    readonly agent: Agent,
    readonly setup: EnvSetup,
    opts: { vec?: VectorEnv; timed?: boolean } = {},
  ) {
    this.vec = opts.vec ?? openEnvs(setup);
    this.num = this.vec.num;
    this.stateKeys = new Int32Array(this.num);
    this.nextStateKeys = new Int32Array(this.num);
    this.obsBefore = new Float32Array(this.vec.obs.length);
    this.running = Array.from({ length: this.num }, fresh);
    this.timings = opts.timed ? { actMs: 0, envMs: 0, observeMs: 0, learnMs: 0 } : null;
  }

  step(opts: StepOptions): void {
    const { vec, agent, num, timings } = this;
    let t0 = timings ? performance.now() : 0;
    // keys feed the ledger (every learner) and tabular models; acting sees them only if needed
    for (let i = 0; i < num; i++) this.stateKeys[i] = vec.envs[i]!.stateKey();
    this.obsBefore.set(vec.obs);
    const act = agent.act(vec.obs, actContext(agent, opts.explore, vec, this.stateKeys, this.setup));
    this.lastAct = act;
    let t1 = timings ? performance.now() : 0;
    if (timings) timings.actMs += t1 - t0;
    vec.step(act.actions);
    this.envSteps += num;
    this.finished.length = 0;
    for (let i = 0; i < num; i++) {
      const done = vec.terminated[i] === 1 || vec.truncated[i] === 1;
      // the key of the state reached (read before the auto-reset where the episode ended)
      this.nextStateKeys[i] = done ? vec.finalStateKeys[i]! : vec.envs[i]!.stateKey();
      const info = vec.infos[i]!;
      const acc = this.running[i]!;
      acc.ret += vec.rewards[i]!;
      acc.perf += info.performance;
      acc.len++;
      for (const ev of info.events) acc.events[ev] = (acc.events[ev] ?? 0) + 1;
      if (done) {
        this.finished.push({
          copy: i,
          return: acc.ret,
          performance: acc.perf,
          length: acc.len,
          terminated: vec.terminated[i] === 1,
          events: acc.events,
          envSteps: this.envSteps,
        });
        this.running[i] = fresh();
      }
    }
    this.update = null;
    if (timings) {
      t0 = performance.now();
      timings.envMs += t0 - t1;
    }
    if (!opts.learn) return;
    agent.observe({
      obs: this.obsBefore,
      act,
      rewards: vec.rewards,
      terminated: vec.terminated,
      truncated: vec.truncated,
      nextObs: vec.obs,
      finalObs: vec.finalObs,
      stateKeys: this.stateKeys,
      nextStateKeys: this.nextStateKeys,
    } satisfies Transition);
    if (timings) {
      t1 = performance.now();
      timings.observeMs += t1 - t0;
    }
    if (opts.learn === true && agent.readyToLearn()) {
      this.update = agent.learn();
      if (timings) timings.learnMs += performance.now() - t1;
    }
  }

  close(): void {
    this.vec.close();
  }
}

/** What `train` collected. */
export interface TrainResult {
  updates: UpdateStats[];
  episodes: LoopEpisode[];
  /** Wall time per phase during this call (a stepper made with `timed` only). */
  timings: LoopTimings | null;
}

/** Steps with learning on until at least `steps` env steps (over all copies) more are taken. */
export function train(
  stepper: Stepper,
  steps: number,
  opts: { explore?: boolean; onUpdate?: (u: UpdateStats) => void; onEpisode?: (e: LoopEpisode) => void } = {},
): TrainResult {
  const before = stepper.timings ? { ...stepper.timings } : null;
  const result: TrainResult = { updates: [], episodes: [], timings: null };
  for (let done = 0; done < steps; done += stepper.num) {
    stepper.step({ explore: opts.explore ?? true, learn: true });
    for (const e of stepper.finished) {
      result.episodes.push(e);
      opts.onEpisode?.(e);
    }
    if (stepper.update) {
      result.updates.push(stepper.update);
      opts.onUpdate?.(stepper.update);
    }
  }
  if (before) {
    const t = stepper.timings!;
    result.timings = {
      actMs: t.actMs - before.actMs,
      envMs: t.envMs - before.envMs,
      observeMs: t.observeMs - before.observeMs,
      learnMs: t.learnMs - before.learnMs,
    };
  }
  return result;
}

/**
 * Steps with observe() on until the agent is ready to learn, and leaves
 * learn() to the caller: the rollout a run would learn from, for a test to
 * inspect before the update.
 */
export function collectRollout(stepper: Stepper, opts: { explore?: boolean } = {}): void {
  while (!stepper.agent.readyToLearn()) stepper.step({ explore: opts.explore ?? true, learn: "observe" });
}

/**
 * Plays `episodes` episodes with learning off on fresh copies of `setup`
 * (at most one copy per episode). Copy i plays episodes i, i+N, ..., so short
 * episodes are not over-counted. Returned in the order they finished.
 */
export function playEpisodes(
  agent: Agent,
  setup: EnvSetup,
  opts: {
    episodes: number;
    explore: boolean;
    onEpisode?: (e: LoopEpisode) => void;
    /** Called after the reset and after every step; copy 0's last frame of an episode is kept in `vec.finalFrame` (`rewardlab watch`). */
    onStep?: (vec: VectorEnv) => void;
  },
): LoopEpisode[] {
  const num = Math.max(1, Math.min(setup.numEnvs, opts.episodes));
  const stepper = new Stepper(agent, { ...setup, numEnvs: num });
  if (opts.onStep) {
    stepper.vec.captureFinalFrame = 0;
    opts.onStep(stepper.vec);
  }
  const quota = Array.from({ length: num }, (_, i) => Math.floor(opts.episodes / num) + (i < opts.episodes % num ? 1 : 0));
  const finished: LoopEpisode[] = [];
  try {
    while (finished.length < opts.episodes) {
      stepper.step({ explore: opts.explore, learn: false });
      opts.onStep?.(stepper.vec);
      for (const e of stepper.finished) {
        if (quota[e.copy] === 0) continue;
        quota[e.copy]!--;
        finished.push(e);
        opts.onEpisode?.(e);
      }
    }
  } finally {
    stepper.close();
  }
  return finished;
}
