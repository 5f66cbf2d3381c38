/** The planner's config: one TypeBox definition, from which both the JSON Schema and the type come. */
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { RewardlabError } from "../../../envs/errors.ts";
import { neuralPlannerConfigSchema } from "../modelconfig.ts";

/** A closed set of strings as a plain JSON Schema `enum` (so ajv's error reads "must be one of ..."). */
function oneOf<const T extends readonly string[]>(
  values: T,
  options: { default: T[number]; description: string },
): TSchema & { static: T[number] } {
  return Type.Unsafe<T[number]>({ enum: [...values], ...options });
}

/** A bounded number or null (JSON Schema `type: [..., "null"]`), for settings where null means "take it from the env". */
function orNull(
  type: "integer" | "number",
  limits: { minimum: number; maximum: number },
  description: string,
): TSchema & { static: number | null } {
  return Type.Unsafe<number | null>({ type: [type, "null"], ...limits, default: null, description });
}

export const plannerConfigSchema = Type.Object(
  {
    /**
     * Plan with the true environment ("simulator", via snapshot/restore), a tabular model learned from
     * experience, or a neural world model learned from experience (agents/model-based/neuralplanner.ts); see plannerModels.
     */
    model: oneOf(["simulator", "learned", "neural"], {
      default: "simulator",
      description: "true environment via snapshot/restore, a learned tabular model, or a neural world model",
    }),
    /** Simulator search: exact value iteration ("exhaustive"), "mcts", or "auto" (exhaustive when at most maxStates states are reachable). */
    search: oneOf(["auto", "exhaustive", "mcts"], {
      default: "auto",
      description: "simulator search: value iteration, MCTS, or auto by state count",
    }),
    /** What the planner maximises: the reward signal, or (simulator only) the hidden performance. */
    objective: oneOf(["reward", "performance"], {
      default: "reward",
      description: "maximise the reward signal or (simulator only) the hidden performance",
    }),
    /** Largest reachable state set solved exactly; beyond it auto switches to MCTS and exhaustive fails. */
    maxStates: Type.Integer({ minimum: 1, maximum: 2000000, default: 20000, description: "largest reachable state set solved exactly" }),
    /** Planning depth in steps; null plans to the end of the episode (the steps left in the time limit). */
    horizon: orNull("integer", { minimum: 1, maximum: 100000 }, "planning depth; null = steps left in the episode"),
    /** MCTS simulations per decision. */
    simulations: Type.Integer({ minimum: 1, maximum: 100000, default: 200, description: "MCTS simulations per decision" }),
    /** UCT exploration constant (values are normalised to [0, 1] within each tree). */
    ucbC: Type.Number({ minimum: 0, maximum: 100, default: 1.41, description: "UCT exploration constant on normalised values" }),
    /** Discount of future reward (the learned model needs < 1 for its R-max bound). */
    discount: Type.Number({ minimum: 0, maximum: 1, default: 0.99, description: "discount of future reward" }),
    /** Stochastic envs, exhaustive search: sampled successors per state-action (snapshots kept per state). */
    samples: Type.Integer({ minimum: 1, maximum: 256, default: 8, description: "sampled successors per state-action in stochastic envs" }),
    /** Env copies stepped together by the run loop. */
    numEnvs: Type.Integer({ minimum: 1, maximum: 1024, default: 1, description: "env copies stepped together" }),
    /**
     * Learned model: what identifies a state. "state" uses the env's stateKey()
     * (the full dynamic state, privileged: it ignores static walls, so variants
     * that differ only by walls share keys); "observation" hashes what the agent
     * sees, so a changed layout is a new state (and works on envs without stateKey()).
     */
    modelKey: oneOf(["state", "observation"], {
      default: "state",
      description: "learned model: states by the env's stateKey() or by a hash of the observation",
    }),
    /** Learned model: the optimistic reward of an under-visited state-action; null takes the env's reward range maximum. */
    rmaxReward: orNull("number", { minimum: -1e6, maximum: 1e6 }, "learned model: optimistic reward; null = env reward range max"),
    /** Learned model: visits after which a state-action's estimate replaces the optimistic value. */
    optimismVisits: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 1,
      description: "learned model: visits before a state-action is known",
    }),
    /** Env steps (over all copies) between learn() calls: re-plans the learned model, reports metrics. */
    replanEvery: Type.Integer({ minimum: 1, maximum: 10000000, default: 100, description: "env steps between learn() calls" }),
    /** Learned model: also re-plan (at the next act) as soon as a state-action reaches optimismVisits, textbook R-max. */
    replanOnKnown: Type.Boolean({ default: true, description: "learned model: re-plan when a state-action becomes known" }),
    /** Probability of a uniform random action when acting with explore = true. */
    epsilon: Type.Number({ minimum: 0, maximum: 1, default: 0, description: "random-action probability when exploring" }),
    /** Model "neural": the world model ensemble and its imagined search. */
    neural: neuralPlannerConfigSchema,
  },
  { additionalProperties: false },
);

export type PlannerConfig = Static<typeof plannerConfigSchema>;

/** Misuse of the planner: a missing context, an unsolvable configuration. */
export class PlannerError extends RewardlabError {}
