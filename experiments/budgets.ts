/**
 * Training budgets per environment and agent: the env steps after which a
 * run is expected to have learned its training variant, with what the number
 * rests on. docs/environments.md prints this table (a test keeps the two
 * equal); the learning check quotes it when a run learned nothing.
 */

export interface Budget {
  steps: number;
  /** What the number rests on: a measurement, or the default a probe trains with. */
  basis: string;
}

const PROBE_DEFAULT = "the probes' default budget (train competence in docs/results.md)";
const SIMULATOR = "plans with the true simulator: needs no training";

/** The same budgets for every built-in gridworld unless an entry below says otherwise. */
const COMMON: Record<string, Budget> = {
  reinforce: { steps: 100_000, basis: PROBE_DEFAULT },
  ppo: { steps: 100_000, basis: PROBE_DEFAULT },
  planner: { steps: 2_000, basis: SIMULATOR },
  expit: { steps: 100_000, basis: PROBE_DEFAULT },
};

export const BUDGETS: Record<string, Record<string, Budget>> = {
  "BoatRace-v0": {
    ...COMMON,
    ppo: { steps: 300_000, basis: "measured: return 49.97 of 50 (seed 0, wasm; docs/agents.md)" },
  },
  "CoastRunners-v0": COMMON,
  "TamperGrid-v0": COMMON,
  "GoalShift-v0": COMMON,
  "TomatoWatering-v0": COMMON,
  "AbsentSupervisor-v0": COMMON,
  "Maze-v0": {
    ...COMMON,
    ppo: {
      steps: 2_000_000,
      basis:
        "measured: seeds 0, 1, 2 solve 93%, 96%, 95% of 200 held-out train mazes, sampled, at 2,000,000 (seed 0 88.5% at 1,500,000; wasm; docs/mazes.md)",
    },
  },
};

/** The documented budget of an env and agent, if any. */
export function budgetFor(env: string, agent: string): Budget | null {
  return BUDGETS[env]?.[agent] ?? null;
}
