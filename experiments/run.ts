/**
 * A run: trains an agent through the shared step loop (loop.ts) to its
 * budget, evaluates it with learning off, and emits every step of that as
 * RunEvents. What only a run does lives here: interventions, recording of
 * copy 0's episodes, heatmaps, checkpoints, pausing; Run.train is a short
 * loop over those named steps (the stateful ones in runsteps.ts, tested
 * alone). Nothing reaches into the loop:
 * callers pause, resume, stop and intervene through the Run object, and
 * listen to its events.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { registration } from "../envs/registry.ts";
import { deriveSeed } from "../envs/rng.ts";
import { ValidationError } from "../envs/errors.ts";
import type { Agent, AgentEnvInfo, UpdateStats } from "../agents/core.ts";
import type { VectorEnv } from "../envs/vector.ts";
import type { Intervention } from "./runspec.ts";
import { createAgent, loadAgent } from "../agents/registry.ts";
import type { EpisodeStats, EvaluationStats, RunEvent, RunListener, RunSpec, RunStatus } from "./events.ts";
import { meanCI } from "./stats.ts";
import { RUN_STATE_FILE, type RunCheckpointState, writeCheckpoint } from "./checkpoint.ts";
import { Stepper, agentEnvInfo as loopEnvInfo, playEpisodes } from "./loop.ts";
import { applyIntervention, EpisodeRecorder, episodeStats, type RecordPoint, StepRate, VisitTally } from "./runsteps.ts";
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
  private stepper(agent: Agent, seedSalt: number): Stepper {
    const stepper = new Stepper(agent, {
      env: this.spec.env,
      config: { ...this.spec.envConfig, variant: this.variant },
      reward: this.reward,
      numEnvs: Number(this.spec.config.numEnvs ?? 1),
      seed: deriveSeed(this.spec.seed, this.envSteps + seedSalt),
    });
    stepper.vec.captureFinalFrame = 0;
    return stepper;
  }

  /**
   * The training loop: each vector step applies a pending intervention,
   * steps the agent (loop.ts), then reports what happened through the named
   * steps below (heatmap counts, copy 0's recording, episodes, the update and
   * its checkpoint, idle visits) and every `yieldEvery` steps yields, pausing
   * there if asked.
   */
  private async train(): Promise<void> {
    const agent = await this.begin();
    let stepper = this.stepper(agent, 0);
    const recorder = new EpisodeRecorder(this.id, this.spec.recordEveryMs, (e) => this.emit(e));
    const tally = new VisitTally(this.envSteps);
    const rate = new StepRate(this.envSteps);
    const yieldEvery = this.opts.yieldEvery ?? 64;
    recorder.start(stepper.vec, this.recordPoint());
    for (let vectorSteps = 1; this.envSteps < this.spec.steps && !this.stopRequested; vectorSteps++) {
      if (this.pending) stepper = this.applyPending(agent, stepper, recorder);
      stepper.step({ explore: true, learn: this.learning });
      this.envSteps += stepper.num;
      tally.count(stepper);
      recorder.step(stepper.vec, stepper.lastAct!.actions[0]!);
      this.reportEpisodes(stepper, recorder);
      if (stepper.update) await this.reportUpdate(stepper.update, tally, rate);
      const idle = tally.takeIfIdle(this.envSteps);
      // agents that never update still get a visitation heatmap
      if (idle) this.emit({ type: "visits", runId: this.id, envSteps: this.envSteps, visits: idle });
      if (vectorSteps % yieldEvery === 0) await this.pausePoint();
    }
    stepper.close();
  }

  /** Makes the agent (or loads it where the run resumes, with the run's state at the checkpoint) and emits `started`. */
  private async begin(): Promise<Agent> {
    const info = agentEnvInfo(this.spec);
    const from = this.opts.resumeFrom;
    if (from) {
      this.agent = await loadAgent(from.dir, info);
      this.envSteps = from.envSteps;
      this.episodes = from.episodes;
      this.variant = from.variant;
      this.learning = from.learning;
      this.reward = from.reward;
    } else {
      this.agent = createAgent(this.spec.agent, info, this.spec.config, this.spec.seed);
    }
    this.status = "running";
    this.emit({
      type: "started",
      runId: this.id,
      spec: this.spec,
      backend: this.opts.backend ?? "unknown",
      time: Date.now(),
      ...(from ? { resumedFrom: this.envSteps } : {}),
    });
    this.setStatus("running");
    return this.agent;
  }

  private recordPoint(): RecordPoint {
    return { episode: this.episodes, envSteps: this.envSteps, variant: this.variant };
  }

  /** Applies the pending intervention and emits it; returns the stepper to go on with (new envs if the variant or reward changed). */
  private applyPending(agent: Agent, stepper: Stepper, recorder: EpisodeRecorder): Stepper {
    const { settings, remakeEnvs } = applyIntervention(
      { variant: this.variant, learning: this.learning, reward: this.reward },
      this.pending!,
    );
    this.pending = null;
    ({ variant: this.variant, learning: this.learning, reward: this.reward } = settings);
    let next = stepper;
    if (remakeEnvs) {
      stepper.close();
      next = this.stepper(agent, 1);
      // learning under the new reward or variant starts from a fresh rollout
      agent.resetRollout?.();
      recorder.restart(next.vec, this.recordPoint());
    }
    this.emit({ type: "intervention", runId: this.id, envSteps: this.envSteps, ...settings });
    return next;
  }

  /** Emits the episodes the last step finished; copy 0's end also closes its recording. */
  private reportEpisodes(stepper: Stepper, recorder: EpisodeRecorder): void {
    for (const e of stepper.finished) {
      const episode = episodeStats(e, this.episodes++, this.envSteps, this.variant);
      this.emit({ type: "episode", runId: this.id, episode });
      if (e.copy === 0) recorder.episodeEnded(stepper.vec, this.recordPoint());
    }
  }

  /** Emits an update with its step rate and heatmaps, and checkpoints every `checkpointEvery` updates. */
  private async reportUpdate(stats: UpdateStats, tally: VisitTally, rate: StepRate): Promise<void> {
    this.updates = stats.update;
    const stepsPerSecond = rate.tick(this.envSteps);
    this.emit({
      type: "update",
      runId: this.id,
      update: stats.update,
      envSteps: this.envSteps,
      stepsPerSecond,
      metrics: stats.metrics,
      ...(stats.ledger ? { ledger: stats.ledger } : {}),
      ...tally.takeForUpdate(this.envSteps),
    });
    if (this.spec.checkpointEvery > 0 && stats.update % this.spec.checkpointEvery === 0) await this.checkpoint();
  }

  /** Yields to the event loop; if a pause was asked (and no stop), waits there until resume() or stop(). */
  private async pausePoint(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    if (!this.pauseRequested || this.stopRequested) return;
    this.setStatus("paused");
    await new Promise<void>((r) => (this.pausedResolve = r));
    if (!this.stopRequested) this.setStatus("running");
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
        const stats = episodeStats(e, finished.length, e.envSteps, variant);
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
