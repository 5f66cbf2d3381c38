/**
 * What a probe reports: one typed record per agent, arm, test-time mode and
 * evaluation mode, with named parts (TypeBox schemas, so the type and its
 * JSON Schema are one definition). Defined here, where it is computed;
 * server/protocol.ts re-exports it for the REST API and the client.
 * docs/probes.md defines every field a reader could take two ways.
 */
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import type { ProbeProgress } from "../progress.ts";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Interval = Type.Tuple([Type.Number(), Type.Number()]);
const MeanCI = Type.Object({ mean: Type.Number(), ci: Interval });

/** How actions were chosen at test: the most probable action (ties drawn), or a draw from the agent's own policy (no training-time exploration). */
export const EVALUATIONS = ["greedy", "sampled"] as const;
export type Evaluation = (typeof EVALUATIONS)[number];
export const evaluationSchema = Type.Union(EVALUATIONS.map((e) => Type.Literal(e)));

/** One seed (one training run) of a row. */
export const seedPartSchema = Type.Object({
  seed: Type.Integer(),
  episodes: Type.Integer(),
  rate: Type.Number(),
  return: Type.Number(),
  performance: Type.Number(),
  /** Train-side mean return of this run in the row's evaluation mode. */
  trainReturn: Type.Number(),
  /** (trainReturn - chance) / (best - chance) on the train side (null: no best to compare with). */
  competence: Nullable(Type.Number()),
  /** Training episodes of this run, and how many showed the event: the exposure it actually had. */
  trainingEpisodes: Type.Optional(Type.Integer()),
  trainingWithEvent: Type.Optional(Type.Integer()),
});

/** The three predictions, computed in the row's evaluation mode where a mode applies. */
export const predictionsSchema = Type.Object({
  /** The simulator planner maximising reward on the test variant, acting in the row's evaluation mode. */
  rewardPursuit: Nullable(Type.Number()),
  /** The trained policy's own rate of the reinforced event on the train side, in the row's evaluation mode. */
  reinforcedBehavior: Nullable(Type.Number()),
  /** Uniform over deterministic stationary policies optimal on the train variant. */
  counting: Nullable(Type.Number()),
  /** Uniform among tied optimal actions per observation. */
  countingTies: Type.Optional(Nullable(Type.Number())),
});

/** Train competence: did this row learn the train side at all? */
export const competenceSchema = Type.Object({
  /** Mean over seeds of (train return - chance train return) / (best train return - chance train return). */
  value: Nullable(Type.Number()),
  /** The simulator planner's mean train-side return (the best; each seed is measured against its own, on its own resets). */
  best: Type.Number(),
  /** The uniform random policy's mean train-side return (the zero). */
  chance: Type.Number(),
  threshold: Type.Number(),
  /** value >= threshold; a row that did not learn is left out of readings. */
  learned: Type.Boolean(),
});

/** What the agent's own predictor says about the probe's two scripted routes on the test variant. */
export const KNOWLEDGE_CELLS = ["knows-and-does-not", "knows-and-does", "does-not-know"] as const;
export type KnowledgeCell = (typeof KNOWLEDGE_CELLS)[number];
export const knowledgeSchema = Type.Object({
  /** Which predictor rated the routes: "critic", "baseline", "value head", "world model". */
  predictor: Type.String(),
  /** Mean over seeds of the predicted return of the event route and of the reinforced route. */
  eventRoute: Type.Number(),
  reinforcedRoute: Type.Number(),
  /** The routes' true returns on the test variant (the same for every seed of a deterministic layout). */
  trueEventRoute: Type.Number(),
  trueReinforcedRoute: Type.Number(),
  /** Seeds whose predictor rates the event route higher, of `seeds`. */
  seedsKnowing: Type.Integer(),
  seeds: Type.Integer(),
  /** "yes": every seed knows; "no": none; "some": the rest. */
  knows: Type.Union([Type.Literal("yes"), Type.Literal("no"), Type.Literal("some")]),
  /** Per seed: knows (event route rated higher) and does (that seed's test event rate >= 0.5): the discriminating cell. */
  cells: Type.Record(Type.String(), Type.Integer()),
  perSeed: Type.Array(
    Type.Object({
      seed: Type.Integer(),
      eventRoute: Type.Number(),
      reinforcedRoute: Type.Number(),
      knows: Type.Boolean(),
      cell: Type.String(),
    }),
  ),
});

/** Counting's two measures, with what each rests on; or, without them, why counting does not apply. */
export const countingPartSchema = Type.Object({
  /** The test side is a new world every episode and its states are unseen in training (probes/novelty.ts): no measure is drawn. */
  notApplicable: Type.Optional(
    Type.Object({
      reason: Type.String(),
      unseen: Nullable(Type.Number()),
      testStates: Type.Integer(),
      trainStates: Type.Integer(),
      distinctStarts: Type.Integer(),
      resets: Type.Integer(),
    }),
  ),
  ties: Type.Optional(
    Type.Object({
      rate: Nullable(Type.Number()),
      policies: Type.Integer(),
      pinnedObservations: Type.Integer(),
      pinnedCoverage: Nullable(Type.Number()),
      acceptance: Type.Number(),
      discount: Type.Number(),
    }),
  ),
  policies: Type.Optional(
    Type.Object({
      mode: Type.String(),
      observations: Nullable(Type.Integer()),
      drawn: Type.Number(),
      optimal: Type.Number(),
      showing: Type.Number(),
      rate: Nullable(Type.Number()),
      acceptance: Type.Number(),
      behaviours: Type.Optional(Type.Record(Type.String(), Type.Number())),
      performance: Type.Record(Type.String(), Type.Number()),
    }),
  ),
  /** Why the two measures differ, where they do by more than 0.5 (a sentence; null otherwise). */
  disagreement: Nullable(Type.String()),
});

/** Train-side facts of the row's runs. */
export const trainingPartSchema = Type.Object({
  trainReturn: Type.Number(),
  trainPerformance: Type.Number(),
  trainEventRate: Type.Number(),
  trainSteps: Type.Integer(),
  seconds: Type.Number(),
  /** CPU seconds of the row's jobs, summed (absent where the OS gives no per-thread figure). */
  cpuSeconds: Type.Optional(Type.Number()),
  /** Every event's rate in the row's test episodes. */
  testEventRates: Type.Record(Type.String(), Type.Number()),
});

const curveSchema = Type.Object({
  envSteps: Type.Array(Type.Number()),
  return: Type.Array(Type.Number()),
  performance: Type.Array(Type.Number()),
});

/** What the views draw: learning curves per seed, reinforcement and visits per cell (summed over seeds), the train layout. */
export const plotsPartSchema = Type.Object({
  curves: Type.Array(curveSchema),
  ledgerCells: Nullable(Type.Array(Type.Number())),
  visitCells: Nullable(Type.Array(Type.Number())),
  frame: Type.Optional(Type.Unknown()),
});

export const behavioursPartSchema = Type.Object({
  classes: Type.Record(Type.String(), Type.Number()),
  lapsPerEpisode: Type.Number(),
  backAndForthPerEpisode: Type.Number(),
  lagoonHitsPerEpisode: Type.Number(),
  lapSteps: Type.Number(),
});

export const extinctionPartSchema = Type.Object({
  kl: Type.Number(),
  steps: Type.Array(Nullable(Type.Number())),
  budget: Type.Number(),
});

/** One agent's (arm's, mode's, evaluation's) row of a probe table. */
export const probeAgentResultSchema = Type.Object({
  agent: Type.String(),
  /** The probe's entry when tagged (`planner:neural`). */
  entry: Type.Optional(Type.String()),
  /** The row's name in every view: agent, config and mode (agentLabel). */
  label: Type.String(),
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  /** How the trained agent acted at test, for agents with several modes (expit: "search", "network"). */
  mode: Type.Optional(Type.String()),
  evaluation: evaluationSchema,
  /** Search simulations at test (search-budget probes; 0 = the network alone). */
  budget: Type.Optional(Type.Integer()),
  arm: Type.Optional(Type.String()),
  /** The test variant, where a probe tests several. */
  test: Type.Optional(Type.String()),
  seeds: Type.Integer(),
  episodes: Type.Integer(),
  event: Type.String(),
  rate: Type.Number(),
  ci: Interval,
  perSeed: Type.Array(seedPartSchema),
  /** Means of the per-seed means, 95% t intervals over seeds, clamped to what an episode can reach. */
  return: MeanCI,
  performance: MeanCI,
  /** Mean entropy (nats) of the agent's action distribution over the test states its sampled episodes visited. */
  entropy: Nullable(Type.Number()),
  competence: Nullable(competenceSchema),
  knowledge: Nullable(knowledgeSchema),
  predictions: predictionsSchema,
  counting: Nullable(countingPartSchema),
  training: trainingPartSchema,
  plots: plotsPartSchema,
  behaviours: Type.Optional(behavioursPartSchema),
  extinction: Type.Optional(extinctionPartSchema),
  /** The two readings predict different rates here (|pursuit - reinforced| >= 0.5) and the row learned the train side. */
  discriminating: Type.Boolean(),
  /** One sentence: what this row's cell says, or why it says nothing (did not learn train, not discriminating, does not know). */
  reading: Type.String(),
});
export type ProbeAgentResult = Static<typeof probeAgentResultSchema>;

/** The uniform random policy on a test side, over the same env seeds as the rows. */
export const chanceRowSchema = Type.Object({
  test: Type.Optional(Type.String()),
  evaluation: Type.Literal("sampled"),
  seeds: Type.Integer(),
  episodes: Type.Integer(),
  rate: Type.Number(),
  ci: Interval,
  perSeed: Type.Array(Type.Object({ seed: Type.Integer(), rate: Type.Number(), return: Type.Number(), performance: Type.Number() })),
  return: MeanCI,
  performance: MeanCI,
  entropy: Type.Number(),
});
export type ChanceRow = Static<typeof chanceRowSchema>;

/** A rate on a set of mazes with its intervals: over seeds (the seed is the unit) and over all mazes pooled (Wilson). */
export const mazeRateSchema = Type.Object({
  rate: Type.Number(),
  /** 95% interval over seeds (rateOverSeeds; [0, 1] with one seed). */
  ciSeeds: Interval,
  /** 95% Wilson interval over every maze of every seed pooled. */
  ciMazes: Interval,
  perSeed: Type.Array(Type.Number()),
});
export type MazeRate = Static<typeof mazeRateSchema>;

/** One half of a split on a distance: mazes whose decision square has the feature at most (or above) the median. */
export const decisionSplitSchema = Type.Object({
  feature: Type.Union([Type.Literal("cheeseToTopRight"), Type.Literal("decisionToCheese"), Type.Literal("decisionToCheeseSteps")]),
  median: Type.Number(),
  /** Cheese-first rate (cheese reached without entering the top-right square first) at or below the median, and above it. */
  low: Type.Object({ mazes: Type.Integer(), cheeseFirst: Type.Number() }),
  high: Type.Object({ mazes: Type.Integer(), cheeseFirst: Type.Number() }),
  /** Pearson correlation between the feature and going cheese-first (point-biserial). */
  correlation: Type.Number(),
});
export type DecisionSplit = Static<typeof decisionSplitSchema>;

/** One row of the maze analysis: a policy (several seeds) or a reference policy on the held-out test mazes. */
export const mazeProbeRowSchema = Type.Object({
  label: Type.String(),
  seeds: Type.Integer(),
  cheese: mazeRateSchema,
  topRight: mazeRateSchema,
  /** Neither within the time limit. */
  neither: Type.Number(),
  decision: Type.Object({ mazes: Type.Integer(), splits: Type.Array(decisionSplitSchema) }),
});
export type MazeProbeRow = Static<typeof mazeProbeRowSchema>;

/** The maze probe's analysis (probes/maze.ts): every row on one held-out set of test mazes, with chance and the simulator planner. */
export const mazeAnalysisSchema = Type.Object({
  /** Mazes in the set and the seed `heldOutMazes` derives it from (the set `rewardlab steer --seed <seed>` plays). */
  mazes: Type.Integer(),
  seed: Type.Integer(),
  rows: Type.Array(mazeProbeRowSchema),
});
export type MazeAnalysis = Static<typeof mazeAnalysisSchema>;

/** A probe's table as runProbe and a sweep compute it, before it is stored. */
export const probeTableSchema = Type.Object({
  probe: Type.String(),
  env: Type.String(),
  results: Type.Array(probeAgentResultSchema),
  /** One chance row per test side. */
  chance: Type.Optional(Type.Array(chanceRowSchema)),
  /** The per-episode ranges that clamp the return and performance intervals, and how they were found. */
  ranges: Type.Optional(Type.Object({ return: Interval, performance: Interval, source: Type.String() })),
  /** The scripted routes the knowledge columns rate (action names). */
  routes: Type.Optional(Type.Object({ event: Type.Array(Type.String()), reinforced: Type.Array(Type.String()) })),
  /** Maze probes: cheese and top-right rates per seed and the decision-square analysis, beside chance and the planner. */
  maze: Type.Optional(mazeAnalysisSchema),
});
export type ProbeTable = Static<typeof probeTableSchema>;

/** A stored probe (GET /api/probes/:id). */
export interface ProbeResult extends ProbeTable {
  id: string;
  status: "running" | "completed" | "failed" | "stopped" | "interrupted";
  reason: string | null;
  createdAt: number;
  /** While running: jobs done of the total, per agent and seed, with an estimate of the time left. */
  progress?: ProbeProgress;
}
