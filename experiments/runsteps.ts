/**
 * The named steps of a run's training loop (experiments/run.ts), each a small
 * piece with its own state so that it can be tested alone
 * (test/experiments/runsteps.test.ts): applying an intervention, recording
 * copy 0's episodes, counting visits for the heatmaps, the episode record,
 * and the step rate between updates. Run.train calls them in order; pausing
 * and checkpoints stay on the Run, which owns the files and the status.
 */
import type { VectorEnv } from "../envs/vector.ts";
import type { EpisodeStats, RunEvent, RunEventOf, RunSpec, TrajectoryRecord } from "./events.ts";
import type { LoopEpisode, Stepper } from "./loop.ts";
import type { Intervention } from "./runspec.ts";

/** What an intervention can change, as a run holds it. */
export interface RunSettings {
  variant: string;
  learning: boolean;
  reward: RunSpec["reward"];
}

/**
 * The settings after an intervention, and whether the envs must be made
 * again: any change naming the variant or the reward wrapper remakes them
 * (and learning starts from a fresh rollout); learning alone does not.
 */
export function applyIntervention(settings: RunSettings, change: Intervention): { settings: RunSettings; remakeEnvs: boolean } {
  const remakeEnvs = change.variant !== undefined || change.reward !== undefined;
  return {
    settings: {
      variant: change.variant ?? settings.variant,
      learning: change.learning ?? settings.learning,
      reward: change.reward ?? settings.reward,
    },
    remakeEnvs,
  };
}

/** An episode the loop finished, as the run reports it: its index in the run, the run's env steps and the variant it was played on. */
export function episodeStats(e: LoopEpisode, index: number, envSteps: number, variant: string): EpisodeStats {
  return {
    index,
    envSteps,
    return: e.return,
    performance: e.performance,
    length: e.length,
    terminated: e.terminated,
    events: e.events,
    variant,
  };
}

/** Where in the run a recorded episode starts. */
export interface RecordPoint {
  episode: number;
  envSteps: number;
  variant: string;
}

/**
 * Records copy 0's episodes, for live frames and replay: an episode starts
 * recording when copy 0 begins it and at least `everyMs` have passed since
 * the last start (0: never); each step emits a `frame`, and the end of the
 * episode a `trajectory`.
 */
export class EpisodeRecorder {
  private recording: TrajectoryRecord | null = null;
  private lastStart = -Infinity;

  constructor(
    private readonly runId: string,
    private readonly everyMs: number,
    private readonly emit: (e: RunEvent) => void,
  ) {}

  /** Starts recording the episode copy 0 begins now, unless the last start was less than `everyMs` ago. */
  start(vec: VectorEnv, at: RecordPoint): void {
    if (this.everyMs <= 0 || Date.now() - this.lastStart < this.everyMs) return;
    this.lastStart = Date.now();
    const frame = vec.envs[0]!.render();
    this.recording = { ...at, frames: [frame], actions: [], rewards: [], performance: [], events: [] };
    this.emit({ type: "frame", runId: this.runId, episode: at.episode, t: 0, frame, reward: 0, performance: 0, events: [] });
  }

  /** The envs were made again: the episode being recorded is dropped, and recording starts on the new one. */
  restart(vec: VectorEnv, at: RecordPoint): void {
    this.recording = null;
    this.start(vec, at);
  }

  /** Adds copy 0's last step (its action, reward, performance, events and the frame reached) and emits the frame. */
  step(vec: VectorEnv, action: number): void {
    const rec = this.recording;
    if (!rec) return;
    const info = vec.infos[0]!;
    const done = vec.terminated[0] === 1 || vec.truncated[0] === 1;
    const frame = done ? vec.finalFrame! : vec.envs[0]!.render();
    rec.frames.push(frame);
    rec.actions.push(action);
    rec.rewards.push(vec.rewards[0]!);
    rec.performance.push(info.performance);
    rec.events.push([...info.events]);
    this.emit({
      type: "frame",
      runId: this.runId,
      episode: rec.episode,
      t: rec.actions.length,
      frame,
      reward: vec.rewards[0]!,
      performance: info.performance,
      events: [...info.events],
    });
  }

  /** Copy 0 finished its episode: emits the recording, if there was one, and starts on the next episode. */
  episodeEnded(vec: VectorEnv, next: RecordPoint): void {
    if (this.recording) this.emit({ type: "trajectory", runId: this.runId, trajectory: this.recording });
    this.restart(vec, next);
  }
}

/**
 * Counts visits per state key, and a searching agent's root visit counts per
 * state key, between updates: the heatmaps an `update` event carries. An
 * agent that has not updated for `idleEvery` env steps still gets its visits
 * sent, as a `visits` event.
 */
export class VisitTally {
  private visits = new Map<number, number>();
  private search = new Map<number, number[]>();
  /** Env steps at the last update or visits event. */
  private sentAt: number;

  constructor(
    envSteps: number,
    private readonly idleEvery = 5000,
  ) {
    this.sentAt = envSteps;
  }

  /** Adds the last step's state keys (copies without one are skipped), and the search's root visits if the agent searched. */
  count(stepper: Stepper): void {
    const keys = stepper.stateKeys;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (k >= 0) this.visits.set(k, (this.visits.get(k) ?? 0) + 1);
    }
    const searched = stepper.lastAct?.searchVisits;
    if (searched) addSearchVisits(this.search, keys, searched);
  }

  /** The counts an update event carries (search only if the agent searched); counting starts afresh. */
  takeForUpdate(envSteps: number): Pick<RunEventOf<"update">, "visits" | "search"> {
    const out = {
      visits: Object.fromEntries(this.visits),
      ...(this.search.size > 0 ? { search: Object.fromEntries(this.search) } : {}),
    };
    this.visits = new Map();
    this.search = new Map();
    this.sentAt = envSteps;
    return out;
  }

  /** The visits to send on their own when `idleEvery` env steps passed since the last update or visits event, else null. */
  takeIfIdle(envSteps: number): Record<string, number> | null {
    if (this.visits.size === 0 || envSteps - this.sentAt < this.idleEvery) return null;
    const out = Object.fromEntries(this.visits);
    this.visits = new Map();
    this.sentAt = envSteps;
    return out;
  }
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

/** Env steps per wall-clock second between two updates. */
export class StepRate {
  private at = performance.now();

  constructor(private steps: number) {}

  /** The rate since the last tick (or since construction), and a new start at `envSteps`. */
  tick(envSteps: number): number {
    const now = performance.now();
    const rate = ((envSteps - this.steps) / Math.max(1e-9, now - this.at)) * 1000;
    this.at = now;
    this.steps = envSteps;
    return rate;
  }
}
