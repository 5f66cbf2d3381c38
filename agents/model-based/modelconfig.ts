/**
 * The configs of the learned world model (agents/model-based/worldmodel.ts)
 * and of the planner that searches it (agents/model-based/neuralplanner.ts):
 * schemas only, so that configs are checked and listed without loading
 * TensorFlow.js.
 */
import { type Static, Type } from "@sinclair/typebox";

export const worldModelConfigSchema = Type.Object(
  {
    ensemble: Type.Integer({ minimum: 1, maximum: 16, default: 3, description: "MLPs in the ensemble (disagreement needs at least 2)" }),
    hiddenSizes: Type.Array(Type.Integer({ minimum: 1, maximum: 1024 }), {
      minItems: 1,
      maxItems: 4,
      default: [64],
      description: "hidden layer sizes of each member (tanh)",
    }),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.02, description: "Adam learning rate" }),
    batchSize: Type.Integer({ minimum: 1, maximum: 4096, default: 32, description: "transitions per member per gradient step" }),
    gradientSteps: Type.Integer({ minimum: 1, maximum: 10000, default: 50, description: "gradient steps per learn() call" }),
    replayCapacity: Type.Integer({ minimum: 16, maximum: 1000000, default: 20000, description: "transitions kept (oldest dropped)" }),
    rareFraction: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.25,
      description:
        "share of each minibatch drawn from the rare transitions (a reward other than the most common one, or termination); sparse rewards are otherwise a few samples per step",
    }),
    rewardAtoms: Type.Integer({
      minimum: 0,
      maximum: 64,
      default: 16,
      description:
        "decode a predicted reward to the nearest reward seen in experience with the predicted termination, while at most this many distinct rewards were seen (0: never; rewards stay as predicted)",
    }),
  },
  { additionalProperties: false, default: {} },
);

export type WorldModelConfig = Static<typeof worldModelConfigSchema>;

/** The planner's `neural` settings: the world model's, plus the planning ones. */
export const neuralPlannerConfigSchema = Type.Object(
  {
    ...worldModelConfigSchema.properties,
    updateEvery: Type.Integer({ minimum: 1, maximum: 10000000, default: 500, description: "env steps between model updates (learn())" }),
    epsilon: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.1,
      description: "random-action probability when exploring (replaces the planner's epsilon, whose default 0 suits exact models)",
    }),
    bonus: Type.Number({ minimum: 0, maximum: 1000, default: 0.05, description: "exploration bonus per unit of ensemble disagreement" }),
    maxImagined: Type.Integer({ minimum: 1, maximum: 200000, default: 2000, description: "imagined states kept in the search graph" }),
    heldOut: Type.Integer({ minimum: 1, maximum: 100000, default: 256, description: "recent transitions scored before each update" }),
    // a number or null, as the planner config's other optional numbers (planner/config.ts orNull)
    exactGradientSteps: Type.Unsafe<number | null>({
      type: ["integer", "null"],
      minimum: 0,
      maximum: 10000,
      default: null,
      description:
        "gradient steps of an update whose new transitions (every one since the previous update, not yet trained on) the model already predicted right (decoded next observation, termination and reward), instead of gradientSteps; null: off, every update runs gradientSteps (docs/agents.md: 0 saved CPU and lowered train competence)",
    }),
  },
  { additionalProperties: false, default: {}, description: 'model "neural": the world model and its search' },
);

export type NeuralPlannerConfig = Static<typeof neuralPlannerConfigSchema>;
