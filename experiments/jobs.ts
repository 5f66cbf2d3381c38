/**
 * A sweep's unit of work and what executing it returns: plain data, passed
 * to worker threads (experiments/pool.ts) and BullMQ workers, and written by
 * the store. Types only, on the floor above probes/ and below sweeps/, so
 * that the store needs nothing of the sweep coordinator.
 */
import type { EpisodeStats, EvaluationStats, RunSpec, RunStatus } from "./events.ts";
import type { ProbeJob, ProbeJobResult } from "./probes/job.ts";

/** A run or a probe seed, keyed by the hash of its resolved config and seed. */
export type SweepJob = { kind: "run"; key: string; spec: RunSpec } | { kind: "probe"; key: string; probeIndex: number; job: ProbeJob };

export interface RunOutcome {
  kind: "run";
  key: string;
  spec: RunSpec;
  status: RunStatus;
  reason: string | null;
  envSteps: number;
  episodes: EpisodeStats[];
  updates: { update: number; envSteps: number; metrics: Record<string, number> }[];
  evaluation: EvaluationStats | null;
  /** Checkpoint folder contents, file name -> base64. */
  checkpoint: Record<string, string> | null;
  seconds: number;
  host: string;
}

export interface ProbeOutcome {
  kind: "probe";
  key: string;
  probe: string;
  status: "completed" | "failed";
  reason: string | null;
  result: ProbeJobResult | null;
  seconds: number;
  host: string;
}

export type JobOutcome = RunOutcome | ProbeOutcome;
