/**
 * The typed stream every run emits. The store, the socket.io broadcaster,
 * the CLI progress bar and the tests are all consumers of this one stream.
 */
import type { Frame } from "../envs/core.ts";
import type { LedgerDelta } from "../agents/core.ts";
import type { RunSpec } from "./runspec.ts";

export type RunStatus = "queued" | "running" | "paused" | "stopped" | "completed" | "failed" | "interrupted";

/** What a run is (resolved and stored with it): derived from the run request's schema in runspec.ts. */
export type { RunSpec } from "./runspec.ts";

export interface EpisodeStats {
  /** 0-based index of the episode within the run. */
  index: number;
  /** Env steps when it ended. */
  envSteps: number;
  return: number;
  performance: number;
  length: number;
  terminated: boolean;
  /** Event name -> count within the episode. */
  events: Record<string, number>;
  variant: string;
}

export interface EvaluationStats {
  envSteps: number;
  episodes: number;
  /** The variant evaluated: a run's evaluation uses the variant in force when training ended (after interventions). */
  variant: string;
  greedy: boolean;
  /** The reward wrapper in force during the evaluation. */
  reward?: RunSpec["reward"];
  /** Whether the run was still learning when training ended (the evaluation itself never learns). */
  learning?: boolean;
  return: { mean: number; ci: [number, number] };
  performance: { mean: number; ci: [number, number] };
  length: number;
  /** Mean count per episode. */
  events: Record<string, number>;
  /** Fraction of episodes in which the event happened at least once. */
  eventRates: Record<string, number>;
}

export interface TrajectoryRecord {
  episode: number;
  envSteps: number;
  variant: string;
  frames: Frame[];
  actions: number[];
  rewards: number[];
  performance: number[];
  events: string[][];
}

export type RunEvent =
  | { type: "started"; runId: string; spec: RunSpec; backend: string; time: number; resumedFrom?: number }
  | { type: "episode"; runId: string; episode: EpisodeStats }
  | {
      type: "update";
      runId: string;
      update: number;
      envSteps: number;
      stepsPerSecond: number;
      metrics: Record<string, number>;
      ledger?: LedgerDelta;
      /** State key -> training steps spent there since the last update (the visitation heatmap). */
      visits?: Record<string, number>;
      /**
       * Agents that search (ActResult.searchVisits): state key -> the root visit
       * counts per action, summed over the searches made there since the last update.
       */
      search?: Record<string, number[]>;
    }
  | { type: "frame"; runId: string; episode: number; t: number; frame: Frame; reward: number; performance: number; events: string[] }
  | { type: "trajectory"; runId: string; trajectory: TrajectoryRecord }
  | { type: "evaluation"; runId: string; evaluation: EvaluationStats }
  | { type: "intervention"; runId: string; envSteps: number; variant: string; learning: boolean; reward: RunSpec["reward"] }
  /** Visits of agents that do not update (the simulator planner), flushed periodically. */
  | { type: "visits"; runId: string; envSteps: number; visits: Record<string, number> }
  | { type: "checkpoint"; runId: string; envSteps: number; update: number; dir: string }
  | { type: "status"; runId: string; status: RunStatus; reason?: string; envSteps?: number };

export type RunEventType = RunEvent["type"];
export type RunEventOf<T extends RunEventType> = Extract<RunEvent, { type: T }>;
export type RunListener = (e: RunEvent) => void;
