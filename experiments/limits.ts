/**
 * Named bounds on the work one request can start. Each is checked before
 * anything is expanded, stored or scheduled, and answered as a LimitError
 * (429) that names it; docs/security.md gives the reason for each value.
 */
import { RewardlabError } from "../envs/errors.ts";
import { probes } from "./probes/index.ts";
import type { SweepSpec } from "./sweeps/spec.ts";

export const LIMITS = {
  /** Jobs one sweep may expand to (runs and probe jobs), counted from the grid before expanding it. */
  maxSweepJobs: 10_000,
  /** Jobs one probe may expand to: agents x arms x seeds. */
  maxProbeJobs: 400,
  /** Environment steps one probe may cost: jobs x (train steps + test and train-side episodes x max episode steps). */
  maxProbeEnvSteps: 250_000_000,
  /** Milliseconds a run or probe job has to acknowledge stop before its worker thread is terminated. */
  stopGraceMs: 5_000,
  /** Probes running at once on a server. */
  maxConcurrentProbes: 1,
} as const;

/** The work of a probe in env steps, for the limit above. `episodeSteps` is the env's max episode length. */
export function probeEnvSteps(jobs: { steps: number; episodes: number }[], episodeSteps: number): number {
  let total = 0;
  for (const j of jobs) total += j.steps + 2 * j.episodes * episodeSteps;
  return total;
}

export class LimitError extends RewardlabError {
  constructor(
    readonly limit: string,
    readonly value: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The number of jobs a (validated) sweep spec expands to at most, from the
 * lengths of its lists alone: a 500-byte grid can name a million jobs, and
 * expanding it first would block the event loop for tens of seconds.
 */
export function sweepJobCount(spec: SweepSpec): number {
  let n = 0;
  const g = spec.grid;
  if (g) {
    const seeds = typeof g.seeds === "number" ? g.seeds : g.seeds.length;
    n += g.env.length * (g.variant?.length ?? 1) * g.agent.length * (g.config?.length ?? 1) * g.steps.length * seeds;
  }
  n += spec.runs?.length ?? 0;
  for (const p of spec.probes ?? []) {
    const def = Object.hasOwn(probes, p.probe) ? probes[p.probe] : undefined;
    n += p.agents.length * Math.max(1, def?.arms?.length ?? 1) * p.seeds;
  }
  return n;
}

/** Throws a LimitError naming maxSweepJobs when a sweep would expand past it. */
export function checkSweepSize(spec: SweepSpec): void {
  const n = sweepJobCount(spec);
  if (n > LIMITS.maxSweepJobs) {
    throw new LimitError(
      "maxSweepJobs",
      LIMITS.maxSweepJobs,
      `sweep ${JSON.stringify(spec.name)} would expand to ${n.toLocaleString("en-US")} jobs; at most ${LIMITS.maxSweepJobs.toLocaleString("en-US")} per sweep (split it into several)`,
    );
  }
}
