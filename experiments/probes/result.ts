/**
 * What a probe reports: one row per agent (and arm). Defined here, where it
 * is computed; server/protocol.ts re-exports it for the REST API and the client.
 */

/** One agent's (and arm's) row of a probe table. */
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

/** A stored probe (GET /api/probes/:id). */
export interface ProbeResult {
  id: string;
  probe: string;
  env: string;
  status: "running" | "completed" | "failed" | "stopped" | "interrupted";
  reason: string | null;
  createdAt: number;
  results: ProbeAgentResult[];
}

/** A probe's table as runProbe and a sweep compute it, before it is stored. */
export type ProbeTable = Omit<ProbeResult, "id" | "createdAt" | "status" | "reason">;
