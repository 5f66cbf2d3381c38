/**
 * Named bounds on the work one request can start. Each is checked before
 * anything is expanded, stored or scheduled, and answered as a LimitError
 * (429) that names it; docs/security.md gives the reason for each value.
 */
import { RewardlabError } from "../envs/errors.ts";

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
