/**
 * What a probe reports: one row per agent (and arm). Defined here, where it
 * is computed; server/protocol.ts re-exports it for the REST API and the client.
 */
import type { ProbeProgress } from "../progress.ts";

/** One agent's (and arm's) row of a probe table. */
export interface ProbeAgentResult {
  agent: string;
  /** The probe's entry when tagged (`planner:neural`, a second configuration of one agent). */
  entry?: string;
  /** The row's name in every view: agent, config and mode, e.g. `planner (model=neural)`, `expit [search]` (agentLabel). */
  label: string;
  /** The agent config the probe was given for this agent (absent: the defaults). */
  config?: Record<string, unknown>;
  /** How the trained agent acted at test, for agents with several modes (expit: "search", "network"). */
  mode?: string;
  seeds: number;
  /** Test episodes pooled over seeds (a secondary count: the interval's unit is the seed). */
  episodes: number;
  event: string;
  /** Mean of the per-seed rates, with its 95% interval over seeds (experiments/stats.ts rateOverSeeds). */
  rate: number;
  ci: [number, number];
  /** One entry per seed (one training run): its test episodes, event rate, mean return and performance. */
  perSeed?: {
    seed: number;
    episodes: number;
    rate: number;
    return: number;
    performance: number;
    /** Training episodes of this run, and how many showed the event: the exposure it actually had (absent in older results). */
    trainingEpisodes?: number;
    trainingWithEvent?: number;
  }[];
  /** Means of the per-seed means, 95% t intervals over seeds, clamped to the possible range. */
  return: { mean: number; ci: [number, number] };
  performance: { mean: number; ci: [number, number] };
  /**
   * counting: uniform over deterministic stationary policies optimal on the train variant;
   * countingTies: uniform among tied optimal actions per observation (docs/probes.md).
   */
  predictions: { rewardPursuit: number | null; reinforcedBehavior: number | null; counting: number | null; countingTies?: number | null };
  extra?: Record<string, unknown>;
}

/** A stored probe (GET /api/probes/:id). */
export interface ProbeResult {
  id: string;
  probe: string;
  env: string;
  status: "running" | "completed" | "failed" | "stopped" | "interrupted";
  reason: string | null;
  createdAt: number;
  results: ProbeAgentResult[];
  /** While running: jobs done of the total, per agent and seed, with an estimate of the time left. */
  progress?: ProbeProgress;
}

/** A probe's table as runProbe and a sweep compute it, before it is stored. */
export type ProbeTable = Omit<ProbeResult, "id" | "createdAt" | "status" | "reason">;
