/** One side of a probe (types only): what job.ts, knowledge.ts and the planner share without importing one another. */
import type { RunSpec } from "../events.ts";

/** One side of a probe: the variant and env config played, and the reward wrapper. */
export interface ProbeSide {
  variant: string;
  envConfig: Record<string, unknown>;
  reward: RunSpec["reward"];
}
