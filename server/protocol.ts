/**
 * The one protocol shared by the server and the browser client: REST
 * resource shapes and the socket.io event maps. Type-only: the client
 * imports it with `import type`.
 */
import type { ProbeProgress } from "../experiments/progress.ts";
import type { Frame } from "../envs/core.ts";
import type { LedgerDelta } from "../agents/core.ts";
import type { EpisodeStats, EvaluationStats, RunSpec, RunStatus, TrajectoryRecord } from "../experiments/events.ts";

export type { Frame, EpisodeStats, EvaluationStats, RunSpec, RunStatus, TrajectoryRecord, LedgerDelta };

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

/** GET /api/runs, GET /api/runs/:id */
export interface RunSummary {
  id: string;
  spec: RunSpec;
  status: RunStatus;
  reason: string | null;
  createdAt: number;
  updatedAt: number;
  envSteps: number;
  episodes: number;
  updates: number;
  /** Means over the last (up to) 100 episodes. */
  recent: { return: number; performance: number; length: number; events: Record<string, number> } | null;
  evaluation: EvaluationStats | null;
  stepsPerSecond: number | null;
  /** Current variant (differs from spec.variant after an intervention). */
  variant: string;
  learning: boolean;
  /** Current reward wrapper (differs from spec.reward after an intervention). */
  reward: RunSpec["reward"];
  /** Interrupted, stopped or failed with a checkpoint and budget left: POST /resume restarts it from the checkpoint. */
  resumable: boolean;
}

/** A point of a run's history, for charts (GET /api/runs/:id/updates). */
export interface UpdatePoint {
  update: number;
  envSteps: number;
  metrics: Record<string, number>;
}

export interface InterventionRecord {
  envSteps: number;
  variant: string;
  learning: boolean;
  reward: RunSpec["reward"];
  time: number;
}

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

/** Probe result rows (GET /api/probes/:id). */
export interface ProbeAgentResult {
  agent: string;
  /** The agent config the probe was given for this agent (absent: the defaults). */
  config?: Record<string, unknown>;
  seeds: number;
  episodes: number;
  event: string;
  rate: number;
  ci: [number, number];
  return: { mean: number; ci: [number, number] };
  performance: { mean: number; ci: [number, number] };
  predictions: { rewardPursuit: number | null; reinforcedBehavior: number | null; counting: number | null };
  extra?: Record<string, unknown>;
}

export type { ProbeProgress };

export interface ProbeResult {
  id: string;
  probe: string;
  env: string;
  status: "running" | "completed" | "failed";
  reason: string | null;
  createdAt: number;
  results: ProbeAgentResult[];
  /** While running: jobs done of the total, per agent and seed, with an estimate of the time left. */
  progress?: ProbeProgress;
}

/** GET /api/sweeps/:id: progress and, once finished, the aggregated probe tables. */
export interface SweepView {
  id: string;
  name: string;
  status: string;
  mode: string;
  total: number;
  completed: number;
  failed: number;
  running: number;
  createdAt: number;
  updatedAt: number;
  /** Ids of the sweep's runs (their job keys; GET /api/runs/:id works for those already stored). */
  runs: string[];
  probes: Omit<ProbeResult, "id" | "createdAt" | "status" | "reason">[];
}

/** An error body: every 4xx/5xx answers with this. */
export interface ApiError {
  error: string;
  /** Field-level problems, for forms. */
  details?: { path: string; message: string }[];
}

// ---------------------------------------------------------------- socket.io

export interface ServerToClientEvents {
  frame: (e: { runId: string; episode: number; t: number; frame: Frame; reward: number; performance: number; events: string[] }) => void;
  /** Batched episode statistics (at most a few batches per second). */
  episode: (e: { runId: string; episodes: EpisodeStats[] }) => void;
  update: (e: {
    runId: string;
    update: number;
    envSteps: number;
    stepsPerSecond: number;
    metrics: Record<string, number>;
    ledger?: LedgerDelta;
  }) => void;
  status: (e: { runId: string; status: RunStatus; reason?: string; envSteps?: number }) => void;
  evaluation: (e: { runId: string; evaluation: EvaluationStats }) => void;
  intervention: (e: { runId: string } & InterventionRecord) => void;
  trajectory: (e: { runId: string; trajectory: TrajectoryRecord }) => void;
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
  subscribe: (e: { runId: string }) => void;
  unsubscribe: (e: { runId: string }) => void;
}
