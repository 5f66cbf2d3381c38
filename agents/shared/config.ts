/**
 * Building blocks for agent config schemas (TypeBox): every hyperparameter
 * is optional in a request, carries its default and a one-line description,
 * and its limits; ajv fills the defaults, so the resolved config type is
 * `Required<Static<typeof schema>>`.
 */
import { Type } from "@sinclair/typebox";

/**
 * Every number a request can set is finite and bounded: JSON's 1e309 parses
 * as Infinity, and a field without a maximum sets the length of a loop or
 * the size of an allocation. A field that names no bound of its own on a side
 * gets these (a real number within +-1e6, a count up to 100,000).
 */
export const NUMBER_BOUND = 1e6;
export const INTEGER_BOUND = 100_000;

type Bounds = { minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number };
const bounded = (extra: Bounds, bound: number, min: number): Bounds => ({
  ...(extra.minimum === undefined && extra.exclusiveMinimum === undefined ? { minimum: min } : {}),
  ...(extra.maximum === undefined && extra.exclusiveMaximum === undefined ? { maximum: bound } : {}),
  ...extra,
});

export const num = (d: number, description: string, extra: object = {}) =>
  Type.Optional(Type.Number({ default: d, description, ...bounded(extra, NUMBER_BOUND, -NUMBER_BOUND) }));
export const int = (d: number, description: string, extra: object = {}) =>
  Type.Optional(Type.Integer({ default: d, description, ...bounded(extra, INTEGER_BOUND, -INTEGER_BOUND) }));
export const bool = (d: boolean, description: string) => Type.Optional(Type.Boolean({ default: d, description }));

/** An MLP's hidden layer sizes (tanh), bounded once for every agent: at most 8 layers of at most 4,096 units. */
export const hiddenSizes = (description: string, d: number[] = [64, 64]) =>
  Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), { minItems: 1, maxItems: 8, default: d, description }));
