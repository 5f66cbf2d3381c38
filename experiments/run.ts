/**
 * A run: trains an agent through the shared step loop (loop.ts) to its
 * budget, evaluates it with learning off, and emits every step of that as
 * RunEvents. What only a run does lives here: interventions, recording of
 * copy 0's episodes, checkpoints, pausing. Nothing reaches into the loop:
 * callers pause, resume, stop and intervene through the Run object, and
 * listen to its events.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Frame } from "../envs/core.ts";
import { registration } from "../envs/registry.ts";
import { deriveSeed } from "../envs/rng.ts";
import { ValidationError } from "../envs/errors.ts";
import type { Agent, AgentEnvInfo } from "../agents/core.ts";
import type { VectorEnv } from "../envs/vector.ts";
import type { Intervention } from "./runspec.ts";
import { createAgent, loadAgent } from "../agents/registry.ts";
import type { EpisodeStats, EvaluationStats, RunEvent, RunListener, RunSpec, RunStatus, TrajectoryRecord } from "./events.ts";
import { meanCI } from "./stats.ts";
import { RUN_STATE_FILE, type RunCheckpointState, writeCheckpoint } from "./checkpoint.ts";
import { Stepper, agentEnvInfo as loopEnvInfo, playEpisodes } from "./loop.ts";
import { SALT } from "./seeds.ts";

export type { RunCheckpointState } from "./checkpoint.ts";

// The run request, its schema and resolution live in runspec.ts (one definition); re-exported for callers of run.ts.
export { MAX_STEPS, resolveRunSpec, runRequestSchema, type Intervention, type RunRequest } from "./runspec.ts";

/** What the agent is told about a run's envs. */
export function agentEnvInfo(spec: Pick<RunSpec, "env" | "variant" | "envConfig" | "config">): AgentEnvInfo {
  return loopEnvInfo({ env: spec.env, config: { ...spec.envConfig, variant: spec.variant }, numEnvs: Number(spec.config.numEnvs ?? 1) });
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

/** Where a resumed run picks up: the checkpoint folder, its state, and the episodes the store kept before it. */
export interface ResumePoint extends RunCheckpointState {
  dir: string;
  episodes: number;
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
            // on the variant and reward wrapper in force now, which interventions may have changed
            ...evaluate(this.agent, this.spec, {
              episodes: this.spec.evalEpisodes,
              seed: deriveSeed(this.spec.seed, SALT.evaluation),
              greedy: this.spec.evalGreedy,
              variant: this.variant,
              reward: this.reward,
            }),
            // the run's own step count (the agent's excludes steps taken with learning off)
            envSteps: this.envSteps,
            reward: this.reward,
            learning: this.learning,
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

  /** The run's envs from here on: its variant and reward wrapper, reset with a seed derived from the step count. */
  private stepper(agent: Agent, numEnvs: number, seedSalt: number): Stepper {
    const stepper = new Stepper(agent, {
      env: this.spec.env,
      config: { ...this.spec.envConfig, variant: this.variant },
      reward: this.reward,
      numEnvs,
      seed: deriveSeed(this.spec.seed, this.envSteps + seedSalt),
    });
    stepper.vec.captureFinalFrame = 0;
    return stepper;
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
    let stepper = this.stepper(agent, num, 0);
    const yieldEvery = this.opts.yieldEvery ?? 64;

    // recording of copy 0's episodes, for live frames and replay
    let recording: TrajectoryRecord | null = null;
    let lastRecordStart = -Infinity;
    const startRecording = () => {
      if (spec.recordEveryMs <= 0 || Date.now() - lastRecordStart < spec.recordEveryMs) return;
      lastRecordStart = Date.now();
      const frame = stepper.vec.envs[0]!.render();
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
    let search = new Map<number, number[]>();
    let stepsAtVisits = this.envSteps;

    while (this.envSteps < spec.steps && !this.stopRequested) {
      if (this.pending) {
        const change = this.pending;
        this.pending = null;
        if (change.learning !== undefined) this.learning = change.learning;
        if (change.variant !== undefined || change.reward !== undefined) {
          this.variant = change.variant ?? this.variant;
          this.reward = change.reward ?? this.reward;
          stepper.close();
          stepper = this.stepper(agent, num, 1);
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

      // act, step, account, observe, learn when ready
      stepper.step({ explore: true, learn: this.learning });
      const vec = stepper.vec;
      this.envSteps += num;
      vectorSteps++;
      for (let i = 0; i < num; i++) {
        const k = stepper.stateKeys[i]!;
        if (k >= 0) visits.set(k, (visits.get(k) ?? 0) + 1);
      }
      const searched = stepper.lastAct?.searchVisits;
      if (searched) addSearchVisits(search, stepper.stateKeys, searched);

      if (recording) {
        const rec = recording as TrajectoryRecord;
        const inf = vec.infos[0]!;
        const done = vec.terminated[0] === 1 || vec.truncated[0] === 1;
        const frame: Frame = done ? vec.finalFrame! : vec.envs[0]!.render();
        rec.frames.push(frame);
        rec.actions.push(stepper.lastAct!.actions[0]!);
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
      for (const e of stepper.finished) {
        const episode: EpisodeStats = {
          index: this.episodes++,
          envSteps: this.envSteps,
          return: e.return,
          performance: e.performance,
          length: e.length,
          terminated: e.terminated,
          events: e.events,
          variant: this.variant,
        };
        this.emit({ type: "episode", runId: this.id, episode });
        if (e.copy === 0) {
          if (recording) this.emit({ type: "trajectory", runId: this.id, trajectory: recording });
          recording = null;
          startRecording();
        }
      }

      const stats = stepper.update;
      if (stats) {
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
          ...(search.size > 0 ? { search: Object.fromEntries(search) } : {}),
        });
        visits = new Map();
        search = new Map();
        if (spec.checkpointEvery > 0 && stats.update % spec.checkpointEvery === 0) await this.checkpoint();
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
    stepper.close();
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
  /** Called after the reset and after every step (copy 0's last frame of an episode is in `vec.finalFrame`): `rewardlab watch`. */
  onStep?: (vec: VectorEnv) => void;
}

/** Runs `episodes` episodes with learning off (loop.ts playEpisodes) and summarises them. */
export function evaluate(
  agent: Agent,
  spec: Pick<RunSpec, "env" | "variant" | "envConfig" | "config">,
  opts: EvaluateOptions,
): EvaluationStats {
  const variant = opts.variant ?? spec.variant;
  const finished: EpisodeStats[] = [];
  playEpisodes(
    agent,
    {
      env: spec.env,
      config: { ...spec.envConfig, variant },
      reward: opts.reward ?? "keep",
      numEnvs: Number(spec.config.numEnvs ?? 1),
      seed: opts.seed,
    },
    {
      episodes: opts.episodes,
      explore: !opts.greedy,
      ...(opts.onStep ? { onStep: opts.onStep } : {}),
      onEpisode: (e) => {
        const stats: EpisodeStats = {
          index: finished.length,
          envSteps: e.envSteps,
          return: e.return,
          performance: e.performance,
          length: e.length,
          terminated: e.terminated,
          events: e.events,
          variant,
        };
        finished.push(stats);
        opts.onEpisode?.(stats);
      },
    },
  );
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

/** Adds each copy's root visit counts (rows of `rows`) to its state key's sums; copies without a state key are skipped. */
export function addSearchVisits(into: Map<number, number[]>, stateKeys: Int32Array, rows: Float32Array): void {
  const nActions = rows.length / stateKeys.length;
  for (let i = 0; i < stateKeys.length; i++) {
    const k = stateKeys[i]!;
    if (k < 0) continue;
    let sums = into.get(k);
    if (!sums) into.set(k, (sums = new Array<number>(nActions).fill(0)));
    for (let a = 0; a < nActions; a++) sums[a]! += rows[i * nActions + a]!;
  }
}
