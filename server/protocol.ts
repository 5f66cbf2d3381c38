/**
 * The one protocol shared by the server and the browser client: REST
 * resource shapes and the socket.io event maps. Type-only: the client
 * imports it with `import type`. Shapes that the experiments layer owns
 * (the run request, a probe request and its result, the run events) are
 * defined there once and re-exported here; never redeclare them.
 */
import type { Frame } from "../envs/core.ts";
import type { RewardTransform } from "../envs/registry.ts";
import type { LedgerDelta } from "../agents/core.ts";
import type { EpisodeStats, EvaluationStats, RunEventOf, RunSpec, RunStatus, TrajectoryRecord } from "../experiments/events.ts";
import type { Intervention, RunRequest } from "../experiments/runspec.ts";
import type { ProbeStartRequest } from "../experiments/probes/request.ts";
import type { ChanceRow, MazeAnalysis, ProbeAgentResult, ProbeResult, ProbeTable } from "../experiments/probes/result.ts";
import type { SweepSpec } from "../experiments/sweeps/spec.ts";
import type { ProbeProgress } from "../experiments/progress.ts";
import type { ProbeEpisode, ProbeEpisodes } from "../experiments/probe-episodes.ts";
import type { SubscribeMessage } from "./schemas.ts";
import type { RunRecord, SweepProgress } from "../experiments/store.ts";

export type { Frame, EpisodeStats, EvaluationStats, RunSpec, RunStatus, TrajectoryRecord, LedgerDelta, RewardTransform };
/** Request bodies: POST /api/runs, POST /api/runs/:id/intervene, POST /api/probes, POST /api/sweeps. */
export type { RunRequest, Intervention, ProbeStartRequest, SweepSpec };
export type { ChanceRow, MazeAnalysis, ProbeAgentResult, ProbeResult, ProbeTable, ProbeProgress, ProbeEpisode, ProbeEpisodes };
/** GET and POST /api/runs/:id/steer (a Maze-v0 run's steering view). */
export type { SteerView, SteerViewRequest } from "../experiments/steerview.ts";

/** A comparison `compare` wrote into the data folder (GET /api/results/:name): its JSON file as written. */
export interface ResultsFile {
  name: string;
  /** The commit the comparison ran from (`+changes`: with uncommitted changes); absent in files written before it was recorded. */
  commit?: string | null;
  seeds: number;
  agents: string[];
  seconds: number;
  backend?: string;
  /** Set while the comparison was still running (or was interrupted): the probes it planned. */
  probesPlanned?: number;
  sections: {
    probe: string;
    env: string;
    description?: string;
    results: ProbeAgentResult[];
    /** The uniform random policy's rows (absent in files written before they were computed). */
    chance?: ChanceRow[];
    seconds?: number;
    /** Where the test episodes behind this section's cells are kept (GET /api/probe-episodes?key=…). */
    episodesKey: string;
  }[];
}

/** One line of GET /api/results. */
export interface ResultsListing {
  name: string;
  commit: string | null;
  seeds: number;
  agents: string[];
  probes: string[];
  complete: boolean;
  seconds: number;
}

/** GET /api/envs */
export interface EnvSummary {
  id: string;
  description: string;
  doc: string;
  variants: string[];
  events: string[];
  maxEpisodeSteps: number;
  source: string;
  configSchema: object;
  /** First frame of the default variant (seed 0). */
  frame: Frame;
  /** Frames of every variant (seed 0), keyed by variant. */
  variantFrames: Record<string, Frame>;
  actions: string[];
}

/** GET /api/agents */
export interface AgentSummary {
  name: string;
  description: string;
  kind: "model-free" | "model-based";
  configSchema: object;
  defaults: Record<string, unknown>;
}

/** GET /api/runs (a page: the `x-next-cursor` header names the next), GET /api/runs/:id: the stored run record and what is computed for it. */
export interface RunSummary extends RunRecord {
  /** Means over the last (up to) 100 episodes; events: the share of those episodes in which the event happened (0 to 1). */
  recent: { return: number; performance: number; length: number; events: Record<string, number> } | null;
  /** Current reward wrapper (differs from spec.reward after an intervention). */
  reward: RunSpec["reward"];
  /** Interrupted, stopped or failed with a checkpoint and budget left: POST /resume restarts it from the checkpoint. */
  resumable: boolean;
  /** For an ended run that learned nothing (policy near uniform, or return flat): one line with the documented budget; else null. */
  learningCheck: string | null;
}

/** A point of a run's history, for charts (GET /api/runs/:id/updates). */
export interface UpdatePoint {
  update: number;
  envSteps: number;
  metrics: Record<string, number>;
}

/** An intervention as stored and streamed: the run event's fields plus when it happened. */
export type InterventionRecord = Omit<RunEventOf<"intervention">, "type" | "runId"> & { time: number };

/** GET /api/runs/:id/ledger: running totals, state key -> per-action reinforcement. */
export interface LedgerTotals {
  envId: string;
  width: number;
  height: number;
  actions: string[];
  entries: Record<string, number[]>;
  /** state key -> visits (training steps spent there). */
  visits: Record<string, number>;
}

/** GET /api/runs/:id/trajectories: the stored episodes, without their frames. */
export interface TrajectoryListing {
  episode: number;
  envSteps: number;
  variant: string;
  length: number;
  return: number;
  performance: number;
}

/** GET /api/probes/definitions: what each probe trains on, tests on and counts. */
export interface ProbeDefinitionView {
  name: string;
  description: string;
  env: string;
  /** Generic probes also run on another environment. */
  generic: boolean;
  /** Train and test variants. */
  train: string;
  test: string;
  testReward: RewardTransform;
  event: string;
  /** Named arms (e.g. dose-response exposures), each a row of the result. */
  arms: string[];
  /** Every test variant (a level may declare several; each gets its own rows). */
  tests?: string[];
  /** The env whose level file declares this probe; null for built-ins. */
  declaredBy?: string | null;
  /** Request fields this probe needs (shift: env, train, test, event). */
  needs?: string[];
}

/** GET /api/sweeps/:id: progress and, once finished, the aggregated probe tables. */
export interface SweepView extends SweepProgress {
  running: number;
  /** Ids of the sweep's runs (their job keys; GET /api/runs/:id works for those already stored). */
  runs: string[];
  probes: ProbeTable[];
}

/** An error body: every 4xx/5xx answers with this. */
export interface ApiError {
  error: string;
  /** Field-level problems, for forms. */
  details?: { path: string; message: string }[];
}

// ---------------------------------------------------------------- socket.io

export interface ServerToClientEvents {
  frame: (e: Omit<RunEventOf<"frame">, "type">) => void;
  /** Batched episode statistics (at most a few batches per second). */
  episode: (e: { runId: string; episodes: EpisodeStats[] }) => void;
  /** The run's update event, without the visitation counts (the ledger view fetches those). */
  update: (e: Omit<RunEventOf<"update">, "type" | "visits">) => void;
  status: (e: Omit<RunEventOf<"status">, "type">) => void;
  evaluation: (e: Omit<RunEventOf<"evaluation">, "type">) => void;
  intervention: (e: { runId: string } & InterventionRecord) => void;
  trajectory: (e: Omit<RunEventOf<"trajectory">, "type">) => void;
  probe: (e: ProbeResult) => void;
  /** Sweep progress (at most twice a second per sweep) and its end. */
  sweep: (e: SweepView) => void;
  /** Sent on subscribe: the stored summary and history, so late joiners catch up. */
  snapshot: (e: { run: RunSummary; episodes: EpisodeStats[]; updates: UpdatePoint[]; interventions: InterventionRecord[] }) => void;
  /** Sent to everyone when a run is created or deleted. */
  runs: (e: { runs: RunSummary[] }) => void;
  /** A rejected message. */
  error: (e: ApiError) => void;
  /** The server is shutting down. */
  shutdown: (e: { reason: string }) => void;
}

export interface ClientToServerEvents {
  subscribe: (e: SubscribeMessage) => void;
  unsubscribe: (e: SubscribeMessage) => void;
}
