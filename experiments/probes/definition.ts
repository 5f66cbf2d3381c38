/**
 * The shapes a probe is planned in (types only): a side (variant, config,
 * reward wrapper), an arm, a probe definition and its expanded plan. Shared
 * by the planner (index.ts), the jobs (job.ts) and aggregation (aggregate.ts).
 */
import type { ProbeJob } from "./job.ts";
import type { Evaluation } from "./result.ts";
import type { ProbeSide } from "./side.ts";

export type { ProbeSide } from "./side.ts";

export interface ProbeArm {
  name: string;
  train: ProbeSide;
  /** Training reinforced the event on the test layout itself (dose-response above exposure 0): both readings predict it. */
  eventReinforced?: boolean;
}

export interface ProbeDefinition {
  name: string;
  description: string;
  /** Default environment; generic probes accept another with `env`. */
  env: string;
  generic: boolean;
  train: ProbeSide;
  test: ProbeSide;
  /** Further test sides, each with its own result rows (the same trained policies, tested again). */
  moreTests?: ProbeSide[];
  /** The env id of the level file that declares this probe (absent: built in or a plugin's). */
  declaredBy?: string;
  /** The generic shift probe: env, train, test and event all come from the request. */
  shift?: boolean;
  /** The event whose test-time rate separates the hypotheses. */
  event: string;
  /** The train-time event whose rate, carried over, is the reinforced-behaviour prediction. */
  reinforcedEvent: string;
  /** Several training conditions (dose-response); default one arm, "". */
  arms?: ProbeArm[];
  classify?: "loophole";
  extinction?: { maxSteps: number; windowEpisodes: number };
  /** Default training budget per agent (env steps). */
  steps: Record<string, number>;
  /** Environments a full comparison (`rewardlab compare`) runs it on; default [env]. */
  compareEnvs?: string[];
  /** The side whose train-side episodes give reinforced behaviour and competence (default: the arm's train side). */
  trainSide?: ProbeSide;
  /** Two scripted routes on the test variant (action letters, knowledge.ts): to the event, and what training reinforced. */
  routes?: { event: string; reinforced: string };
  /** Search budgets the trained agent is tested at (0: the network alone), instead of its eval modes. */
  budgets?: number[];
  /** Evaluation modes (default both). */
  evaluations?: Evaluation[];
  /** Test episodes per seed when the request gives none (default 100). */
  episodes?: number;
  /** A further analysis of the trained agents: "maze" plays them on held-out test mazes (probes/maze.ts). */
  analysis?: "maze";
}

/** A probe expanded into its jobs, with what aggregation needs. */
export interface ProbePlan {
  def: ProbeDefinition;
  env: string;
  test: ProbeSide;
  /** Every test side: `test`, then the probe's further ones. */
  tests: ProbeSide[];
  event: string;
  reinforcedEvent: string;
  arms: ProbeArm[];
  agents: string[];
  /** The agent configs given (only what differs from the defaults), by agent. */
  configs: Record<string, Record<string, unknown>>;
  episodes: number;
  firstSeed: number;
  countingPolicies: number;
  /** Training runs per agent and arm. */
  seeds: number;
  /** The side train-side evaluation plays, where the probe names one (else each arm's train side). */
  trainSide?: ProbeSide;
  /** The routes the knowledge columns rate, as action names. */
  routes?: { event: string[]; reinforced: string[] };
  jobs: ProbeJob[];
}
