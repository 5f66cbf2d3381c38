/**
 * The run loop: collect on a vector env, learn when the agent is ready,
 * evaluate with learning off, and emit every step of that as RunEvents.
 * Nothing reaches into the loop: callers pause, resume, stop and intervene
 * through the Run object, and listen to its events.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Frame } from "../envs/core.ts";
import { make, registration, resolveEnvConfig, type EnvConfig } from "../envs/registry.ts";
import { deriveSeed } from "../envs/rng.ts";
import { VectorEnv } from "../envs/vector.ts";
import { cloneInput, validate } from "../envs/schema.ts";
import { ValidationError } from "../envs/errors.ts";
import type { ActContext, Agent, AgentEnvInfo, Transition } from "../agents/core.ts";
import { agentRegistration, createAgent, loadAgent, resolveAgentConfig } from "../agents/registry.ts";
import type { EpisodeStats, EvaluationStats, RunEvent, RunListener, RunSpec, RunStatus, TrajectoryRecord } from "./events.ts";
import { meanCI } from "./stats.ts";
import { RUN_STATE_FILE, writeCheckpoint } from "./checkpoint.ts";

/** What a user may give; resolveRunSpec fills the rest. */
export interface RunRequest {
  env: string;
  variant?: string;
  envConfig?: Record<string, unknown>;
  agent: string;
  config?: Record<string, unknown>;
  seed?: number;
  steps?: number;
  evalEpisodes?: number;
  evalGreedy?: boolean;
  checkpointEvery?: number;
  recordEveryMs?: number;
  reward?: RunSpec["reward"];
  label?: string;
}

export const MAX_STEPS = 50_000_000;

export const runRequestSchema = {
  type: "object",
  additionalProperties: false,
  required: ["env", "agent"],
  properties: {
    env: { type: "string", minLength: 1, maxLength: 100 },
    variant: { type: "string", minLength: 1, maxLength: 100 },
    envConfig: { type: "object", maxProperties: 32 },
    agent: { type: "string", minLength: 1, maxLength: 100 },
    config: { type: "object", maxProperties: 64 },
    seed: { type: "integer", minimum: 0, maximum: 4294967295, default: 0 },
    steps: { type: "integer", minimum: 1, maximum: MAX_STEPS, default: 100000 },
    evalEpisodes: { type: "integer", minimum: 0, maximum: 10000, default: 100 },
    evalGreedy: { type: "boolean", default: false },
    checkpointEvery: { type: "integer", minimum: 0, maximum: 1000000, default: 10 },
    recordEveryMs: { type: "integer", minimum: 0, maximum: 3600000, default: 1000 },
    reward: { enum: ["keep", "removed", "negated"], default: "keep" },
    label: { type: "string", maxLength: 200 },
  },
} as const;

/** Validates a run request against the run, env and agent schemas; fills every default. */
export function resolveRunSpec(request: unknown): RunSpec {
  const req = validate<Required<Omit<RunRequest, "variant" | "envConfig" | "config" | "label">> & RunRequest>(
    runRequestSchema,
    cloneInput(request, "run request"),
    "run request",
  );
  const envConfig: EnvConfig = { ...(req.envConfig ?? {}) };
  if (req.variant !== undefined) envConfig.variant = req.variant;
  const resolvedEnv = prefixed(
    () => resolveEnvConfig(req.env, envConfig),
    (path) => (path === "/variant" ? "/variant" : `/envConfig${path}`),
  );
  const reg = agentRegistration(req.agent);
  const userConfig = { ...(req.config ?? {}) };
  // annealing schedules run over the run's budget unless the user pins them
  const props = (reg.configSchema as { properties?: Record<string, unknown> }).properties ?? {};
  if ("totalSteps" in props && userConfig.totalSteps === undefined) userConfig.totalSteps = req.steps;
  const config = prefixed(
    () => resolveAgentConfig<Record<string, unknown>>(req.agent, userConfig),
    (path) => `/config${path === "/" ? "" : path}`,
  );
  const { variant, ...rest } = resolvedEnv;
  return {
    env: req.env,
    variant: String(variant),
    envConfig: rest,
    agent: req.agent,
    config,
    seed: req.seed,
    steps: req.steps,
    evalEpisodes: req.evalEpisodes,
    evalGreedy: req.evalGreedy,
    checkpointEvery: req.checkpointEvery,
    recordEveryMs: req.recordEveryMs,
    reward: req.reward,
    ...(req.label !== undefined ? { label: req.label } : {}),
  };
}

/** Re-roots a nested schema's error paths in the request ("/numEnvs" -> "/config/numEnvs"), for forms. */
function prefixed<T>(f: () => T, path: (p: string) => string): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ValidationError) {
      const errors = e.errors.map((x) => ({ ...x, path: path(x.path) }));
      throw new ValidationError(
        e.message.replace(/(\s)(\/[^\s]*)/g, (_m, sp: string, p: string) => `${sp}${path(p)}`),
        errors,
      );
    }
    throw e;
  }
}

export function agentEnvInfo(spec: Pick<RunSpec, "env" | "variant" | "envConfig" | "config">): AgentEnvInfo {
  const env = make(spec.env, { ...spec.envConfig, variant: spec.variant });
  const info: AgentEnvInfo = {
    envId: spec.env,
    envConfig: { ...spec.envConfig, variant: spec.variant },
    obsSize: env.observationSpace.shape.reduce((a, b) => a * b, 1),
    nActions: env.actionSpace.n,
    numEnvs: Number(spec.config.numEnvs ?? 1),
    maxEpisodeSteps: registration(spec.env).maxEpisodeSteps,
  };
  env.close?.();
  return info;
}

type Simulator = NonNullable<ActContext["simulator"]>;

/** The act context an agent asked for in `needs`: state keys, and for the simulator planner the live envs and how they were made. */
export function actContext(agent: Agent, explore: boolean, vec: VectorEnv, stateKeys: Int32Array, simulator: Simulator): ActContext {
  return {
    explore,
    ...(agent.needs.stateKeys ? { stateKeys } : {}),
    ...(agent.needs.simulator ? { envs: vec.envs, simulator } : {}),
  };
}

export interface Intervention {
  variant?: string;
  /** Keep learning (true) or freeze the agent (false). */
  learning?: boolean;
  reward?: RunSpec["reward"];
}

export interface RunOptions {
  /** Where checkpoints go (checkpoint/ inside it); none if absent. */
  dir?: string;
  /** Resume from a saved agent, continuing at its envSteps and at this episode index. */
  resumeFrom?: ResumePoint;
  /** Yield to the event loop every this many vector steps (pause/stop latency). */
  yieldEvery?: number;
  /** Backend name, reported in the started event. */
  backend?: string;
}

/** The run's own state at a checkpoint (run.json beside the agent's files). */
export interface RunCheckpointState {
  /** The run's step count (the agent's own count leaves out steps taken with learning off). */
  envSteps: number;
  variant: string;
  learning: boolean;
  reward: RunSpec["reward"];
}

/** Where a resumed run picks up: the checkpoint folder, its state, and the episodes the store kept before it. */
export interface ResumePoint extends RunCheckpointState {
  dir: string;
  episodes: number;
}

/** Per-copy episode accumulators. */
interface EpisodeAcc {
  ret: number;
  perf: number;
  len: number;
  events: Record<string, number>;
}

function newAcc(): EpisodeAcc {
  return { ret: 0, perf: 0, len: 0, events: {} };
}

export class Run {
  status: RunStatus = "queued";
  agent: Agent | null = null;
  envSteps = 0;
  updates = 0;
  episodes = 0;
  private listeners: RunListener[] = [];
  private pausedResolve: (() => void) | null = null;
  private pauseRequested = false;
  private stopRequested = false;
  private pending: Intervention | null = null;
  private learning = true;
  private variant: string;
  private reward: RunSpec["reward"];
  evaluation: EvaluationStats | null = null;

  constructor(
    readonly id: string,
    readonly spec: RunSpec,
    private readonly opts: RunOptions = {},
  ) {
    this.variant = spec.variant;
    this.reward = spec.reward;
  }

  on(listener: RunListener): this {
    this.listeners.push(listener);
    return this;
  }

  private emit(e: RunEvent): void {
    for (const l of this.listeners) l(e);
  }

  private setStatus(status: RunStatus, reason?: string): void {
    this.status = status;
    this.emit({ type: "status", runId: this.id, status, envSteps: this.envSteps, ...(reason ? { reason } : {}) });
  }

  pause(): void {
    if (this.status === "running") this.pauseRequested = true;
  }

  resume(): void {
    this.pauseRequested = false;
    if (this.pausedResolve) {
      const r = this.pausedResolve;
      this.pausedResolve = null;
      r();
    }
  }

  stop(): void {
    this.stopRequested = true;
    this.resume();
  }

  /** Switches the environment variant, learning or reward wrapper from the next step on. */
  intervene(change: Intervention): void {
    if (change.variant !== undefined) {
      const reg = registration(this.spec.env);
      if (!reg.variants.includes(change.variant)) {
        throw new ValidationError(`variant "${change.variant}" is not one of ${this.spec.env}'s variants: ${reg.variants.join(", ")}`, [
          { path: "/variant", message: `must be one of ${reg.variants.join(", ")}` },
        ]);
      }
    }
    this.pending = { ...(this.pending ?? {}), ...change };
  }

  /** Trains to the budget, then evaluates; resolves with the final status. Never throws. */
  async execute(): Promise<RunStatus> {
    try {
      await this.train();
      if (this.stopRequested) {
        await this.checkpoint();
        this.setStatus("stopped");
      } else {
        if (this.spec.evalEpisodes > 0 && this.agent) {
          this.evaluation = {
            ...evaluate(this.agent, this.spec, {
              episodes: this.spec.evalEpisodes,
              seed: deriveSeed(this.spec.seed, 0x5eed),
              greedy: this.spec.evalGreedy,
            }),
            // the run's own step count (the agent's excludes steps taken with learning off)
            envSteps: this.envSteps,
          };
          this.emit({ type: "evaluation", runId: this.id, evaluation: this.evaluation });
        }
        await this.checkpoint();
        this.setStatus("completed");
      }
    } catch (err) {
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      try {
        await this.checkpoint();
      } catch {
        // the failure reason matters more than a last checkpoint
      }
      this.setStatus("failed", reason);
    }
    return this.status;
  }

  private async checkpoint(): Promise<void> {
    if (!this.opts.dir || !this.agent) return;
    const agent = this.agent;
    const state: RunCheckpointState = { envSteps: this.envSteps, variant: this.variant, learning: this.learning, reward: this.reward };
    const dir = await writeCheckpoint(this.opts.dir, async (d) => {
      await writeFile(join(d, RUN_STATE_FILE), JSON.stringify(state));
      await agent.save(d);
    });
    this.emit({ type: "checkpoint", runId: this.id, envSteps: this.envSteps, update: this.updates, dir });
  }

  private makeVector(num: number, seed: number): VectorEnv {
    const envs = Array.from({ length: num }, () =>
      make(this.spec.env, { ...this.spec.envConfig, variant: this.variant }, { reward: this.reward }),
    );
    const vec = new VectorEnv(envs);
    vec.captureFinalFrame = 0;
    vec.reset(seed);
    return vec;
  }

  private async train(): Promise<void> {
    const spec = this.spec;
    const info = agentEnvInfo(spec);
    if (this.opts.resumeFrom) {
      const from = this.opts.resumeFrom;
      this.agent = await loadAgent(from.dir, info);
      this.envSteps = from.envSteps;
      this.episodes = from.episodes;
      this.variant = from.variant;
      this.learning = from.learning;
      this.reward = from.reward;
    } else {
      this.agent = createAgent(spec.agent, info, spec.config, spec.seed);
    }
    const agent = this.agent;
    this.status = "running";
    this.emit({
      type: "started",
      runId: this.id,
      spec,
      backend: this.opts.backend ?? "unknown",
      time: Date.now(),
      ...(this.opts.resumeFrom ? { resumedFrom: this.envSteps } : {}),
    });
    this.setStatus("running");

    const num = info.numEnvs;
    let vec = this.makeVector(num, deriveSeed(spec.seed, this.envSteps));
    let simulator: Simulator = { envId: spec.env, envConfig: { ...spec.envConfig, variant: this.variant }, reward: this.reward };
    const obsSize = vec.obsSize;
    const obsBefore = new Float32Array(num * obsSize);
    const stateKeys = new Int32Array(num);
    const nextStateKeys = new Int32Array(num);
    const accs = Array.from({ length: num }, newAcc);
    const yieldEvery = this.opts.yieldEvery ?? 64;

    // recording of copy 0's episodes, for live frames and replay
    let recording: TrajectoryRecord | null = null;
    let lastRecordStart = -Infinity;
    const startRecording = () => {
      if (spec.recordEveryMs <= 0 || Date.now() - lastRecordStart < spec.recordEveryMs) return;
      lastRecordStart = Date.now();
      const frame = vec.envs[0]!.render();
      recording = {
        episode: this.episodes,
        envSteps: this.envSteps,
        variant: this.variant,
        frames: [frame],
        actions: [],
        rewards: [],
        performance: [],
        events: [],
      };
      this.emit({ type: "frame", runId: this.id, episode: this.episodes, t: 0, frame, reward: 0, performance: 0, events: [] });
    };
    startRecording();

    let sinceUpdate = performance.now();
    let stepsAtUpdate = this.envSteps;
    let vectorSteps = 0;
    let visits = new Map<number, number>();
    let stepsAtVisits = this.envSteps;

    // collect
    while (this.envSteps < spec.steps && !this.stopRequested) {
      if (this.pending) {
        const change = this.pending;
        this.pending = null;
        if (change.learning !== undefined) this.learning = change.learning;
        if (change.variant !== undefined || change.reward !== undefined) {
          this.variant = change.variant ?? this.variant;
          this.reward = change.reward ?? this.reward;
          vec.close();
          vec = this.makeVector(num, deriveSeed(spec.seed, this.envSteps + 1));
          simulator = { envId: spec.env, envConfig: { ...spec.envConfig, variant: this.variant }, reward: this.reward };
          for (let i = 0; i < num; i++) accs[i] = newAcc();
          // learning under the new reward or variant starts from a fresh rollout
          agent.resetRollout?.();
          recording = null;
          startRecording();
        }
        this.emit({
          type: "intervention",
          runId: this.id,
          envSteps: this.envSteps,
          variant: this.variant,
          learning: this.learning,
          reward: this.reward,
        });
      }

      // keys feed the ledger (every learner) and tabular models; acting sees them only if needed
      for (let i = 0; i < num; i++) {
        const k = vec.envs[i]!.stateKey();
        stateKeys[i] = k;
        if (k >= 0) visits.set(k, (visits.get(k) ?? 0) + 1);
      }
      obsBefore.set(vec.obs);
      const act = agent.act(vec.obs, actContext(agent, true, vec, stateKeys, simulator));
      vec.step(act.actions);
      this.envSteps += num;
      vectorSteps++;

      for (let i = 0; i < num; i++) {
        const done = vec.terminated[i]! === 1 || vec.truncated[i]! === 1;
        // the key of the state reached (read before the auto-reset where the episode ended)
        nextStateKeys[i] = done ? vec.finalStateKeys[i]! : vec.envs[i]!.stateKey();
        const inf = vec.infos[i]!;
        const acc = accs[i]!;
        acc.ret += vec.rewards[i]!;
        acc.perf += inf.performance;
        acc.len++;
        for (const ev of inf.events) acc.events[ev] = (acc.events[ev] ?? 0) + 1;
        if (i === 0 && recording) {
          const rec = recording as TrajectoryRecord;
          const frame: Frame = done ? vec.finalFrame! : vec.envs[0]!.render();
          rec.frames.push(frame);
          rec.actions.push(act.actions[0]!);
          rec.rewards.push(vec.rewards[0]!);
          rec.performance.push(inf.performance);
          rec.events.push([...inf.events]);
          this.emit({
            type: "frame",
            runId: this.id,
            episode: rec.episode,
            t: rec.actions.length,
            frame,
            reward: vec.rewards[0]!,
            performance: inf.performance,
            events: [...inf.events],
          });
        }
        if (done) {
          const episode: EpisodeStats = {
            index: this.episodes++,
            envSteps: this.envSteps,
            return: acc.ret,
            performance: acc.perf,
            length: acc.len,
            terminated: vec.terminated[i]! === 1,
            events: acc.events,
            variant: this.variant,
          };
          this.emit({ type: "episode", runId: this.id, episode });
          accs[i] = newAcc();
          if (i === 0) {
            if (recording) this.emit({ type: "trajectory", runId: this.id, trajectory: recording });
            recording = null;
            startRecording();
          }
        }
      }

      if (this.learning) {
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
        // update
        if (agent.readyToLearn()) {
          const stats = agent.learn();
          this.updates = stats.update;
          const now = performance.now();
          const sps = ((this.envSteps - stepsAtUpdate) / Math.max(1e-9, now - sinceUpdate)) * 1000;
          sinceUpdate = now;
          stepsAtUpdate = this.envSteps;
          this.emit({
            type: "update",
            runId: this.id,
            update: stats.update,
            envSteps: this.envSteps,
            stepsPerSecond: sps,
            metrics: stats.metrics,
            ...(stats.ledger ? { ledger: stats.ledger } : {}),
            visits: Object.fromEntries(visits),
          });
          visits = new Map();
          if (spec.checkpointEvery > 0 && stats.update % spec.checkpointEvery === 0) await this.checkpoint();
        }
      }

      if (visits.size > 0 && this.envSteps - Math.max(stepsAtUpdate, stepsAtVisits) >= 5000) {
        // agents that never update still get a visitation heatmap
        this.emit({ type: "visits", runId: this.id, envSteps: this.envSteps, visits: Object.fromEntries(visits) });
        visits = new Map();
        stepsAtVisits = this.envSteps;
      }
      if (vectorSteps % yieldEvery === 0) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.pauseRequested && !this.stopRequested) {
          this.setStatus("paused");
          await new Promise<void>((r) => (this.pausedResolve = r));
          if (!this.stopRequested) this.setStatus("running");
        }
      }
    }
    vec.close();
  }
}

export interface EvaluateOptions {
  episodes: number;
  seed: number;
  greedy: boolean;
  /** Evaluate on this variant instead of the run's. */
  variant?: string;
  reward?: RunSpec["reward"];
  /** Called with each finished episode. */
  onEpisode?: (e: EpisodeStats) => void;
}

/**
 * Runs `episodes` episodes with learning off. Copy i of the vector env is
 * responsible for episodes i, i+N, ..., so short episodes are not over-counted.
 */
export function evaluate(
  agent: Agent,
  spec: Pick<RunSpec, "env" | "variant" | "envConfig" | "config">,
  opts: EvaluateOptions,
): EvaluationStats {
  const num = Math.max(1, Math.min(Number(spec.config.numEnvs ?? 1), opts.episodes));
  const variant = opts.variant ?? spec.variant;
  const envs = Array.from({ length: num }, () => make(spec.env, { ...spec.envConfig, variant }, { reward: opts.reward ?? "keep" }));
  const vec = new VectorEnv(envs);
  vec.reset(opts.seed);
  const quota = Array.from({ length: num }, (_, i) => Math.floor(opts.episodes / num) + (i < opts.episodes % num ? 1 : 0));
  const accs = Array.from({ length: num }, newAcc);
  const finished: EpisodeStats[] = [];
  const stateKeys = new Int32Array(num);
  const needs = agent.needs;
  const simulator: Simulator = { envId: spec.env, envConfig: { ...spec.envConfig, variant }, reward: opts.reward ?? "keep" };
  let steps = 0;
  while (finished.length < opts.episodes) {
    if (needs.stateKeys) for (let i = 0; i < num; i++) stateKeys[i] = vec.envs[i]!.stateKey();
    const act = agent.act(vec.obs, actContext(agent, !opts.greedy, vec, stateKeys, simulator));
    vec.step(act.actions);
    steps += num;
    for (let i = 0; i < num; i++) {
      if (quota[i] === 0) continue;
      const inf = vec.infos[i]!;
      const acc = accs[i]!;
      acc.ret += vec.rewards[i]!;
      acc.perf += inf.performance;
      acc.len++;
      for (const ev of inf.events) acc.events[ev] = (acc.events[ev] ?? 0) + 1;
      if (vec.terminated[i] || vec.truncated[i]) {
        const e: EpisodeStats = {
          index: finished.length,
          envSteps: steps,
          return: acc.ret,
          performance: acc.perf,
          length: acc.len,
          terminated: vec.terminated[i] === 1,
          events: acc.events,
          variant,
        };
        finished.push(e);
        opts.onEpisode?.(e);
        accs[i] = newAcc();
        quota[i]!--;
      }
    }
  }
  vec.close();
  return summarise(finished, { envSteps: agent.envSteps, variant, greedy: opts.greedy });
}

export function summarise(
  episodes: readonly EpisodeStats[],
  meta: { envSteps: number; variant: string; greedy: boolean },
): EvaluationStats {
  const events: Record<string, number> = {};
  const rates: Record<string, number> = {};
  for (const e of episodes) {
    for (const [k, v] of Object.entries(e.events)) {
      events[k] = (events[k] ?? 0) + v;
      if (v > 0) rates[k] = (rates[k] ?? 0) + 1;
    }
  }
  const n = episodes.length;
  for (const k of Object.keys(events)) {
    events[k]! /= n;
    rates[k] = (rates[k] ?? 0) / n;
  }
  return {
    envSteps: meta.envSteps,
    episodes: n,
    variant: meta.variant,
    greedy: meta.greedy,
    return: meanCI(episodes.map((e) => e.return)),
    performance: meanCI(episodes.map((e) => e.performance)),
    length: n ? episodes.reduce((s, e) => s + e.length, 0) / n : 0,
    events,
    eventRates: rates,
  };
}
