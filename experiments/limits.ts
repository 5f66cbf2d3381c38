/**
 * Named bounds on the work one request can start. Each is checked before
 * anything is expanded, stored or scheduled, and answered as a LimitError
 * (429) that names it; docs/security.md gives the reason for each value.
 */
import { RewardlabError } from "../envs/errors.ts";
import { LEVEL_LIMITS } from "../envs/levels.ts";

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
  /** Environment steps one sweep from the API may cost: its runs' budgets and evaluations, and its probes counted as a probe is. */
  maxSweepEnvSteps: 250_000_000,
  /** Runs one page of GET /api/runs holds at most (and its default: 100). */
  maxRunPage: 500,
  /** Variants one level may declare: every variant is built when it is loaded, uploaded and described. */
  maxLevelVariants: LEVEL_LIMITS.variants,
  /** Grid cells of one level over all its layouts (the default art and each variant's own). */
  maxLevelCells: LEVEL_LIMITS.cells,
  /** Non-floor, non-wall cells (goals, arrows, targets, buttons, ...) of one level over all its layouts. */
  maxLevelObjects: LEVEL_LIMITS.objects,
  /** Levels uploaded over the API that a data folder keeps. */
  maxUploadedLevels: 200,
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
