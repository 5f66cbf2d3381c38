/**
 * Building blocks for agent config schemas (TypeBox): every hyperparameter
 * is optional in a request, carries its default and a one-line description,
 * and its limits; ajv fills the defaults, so the resolved config type is
 * `Required<Static<typeof schema>>`.
 */
import { Type } from "@sinclair/typebox";

export const num = (d: number, description: string, extra: object = {}) =>
  Type.Optional(Type.Number({ default: d, description, ...extra }));
export const int = (d: number, description: string, extra: object = {}) =>
  Type.Optional(Type.Integer({ default: d, description, ...extra }));
export const bool = (d: boolean, description: string) => Type.Optional(Type.Boolean({ default: d, description }));

/** An MLP's hidden layer sizes (tanh), bounded once for every agent: at most 8 layers of at most 4,096 units. */
export const hiddenSizes = (description: string, d: number[] = [64, 64]) =>
  Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), { minItems: 1, maxItems: 8, default: d, description }));
