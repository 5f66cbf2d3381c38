/**
 * The environment contract: Gymnasium's reset/step, typed, with rewardlab's
 * two signals (`reward` for learners, `info.performance` hidden) and events.
 *
 * Observations are always flat Float32Arrays (one-hot planes for gridworlds),
 * so that every agent works on every environment without adapters.
 */

/** A closed set of actions 0..n-1. */
export interface DiscreteSpace {
  readonly kind: "discrete";
  readonly n: number;
  /** Human names for the actions, e.g. ["up", "down", "left", "right"]. */
  readonly labels: readonly string[];
}

/**
 * A box of real numbers; observations are flat Float32Arrays, row-major over
 * `shape`. Image observations say so with a 3-dimensional shape:
 * [height, width, channels] (channels last), or [channels, height, width]
 * with layout "chw" (one plane per channel); convolutional policies need one.
 */
export interface BoxSpace {
  readonly kind: "box";
  readonly shape: readonly number[];
  readonly low: number;
  readonly high: number;
  /** For a 3-dimensional shape: "hwc" (the default) or "chw". */
  readonly layout?: "hwc" | "chw";
}

export type Space = DiscreteSpace | BoxSpace;

export function discrete(n: number, labels?: readonly string[]): DiscreteSpace {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`discrete space needs n >= 1, got ${n}`);
  return { kind: "discrete", n, labels: labels ?? Array.from({ length: n }, (_, i) => String(i)) };
}

export function box(shape: readonly number[], low: number, high: number, layout?: "hwc" | "chw"): BoxSpace {
  return layout ? { kind: "box", shape, low, high, layout } : { kind: "box", shape, low, high };
}

export function spaceSize(space: BoxSpace): number {
  return space.shape.reduce((a, b) => a * b, 1);
}

export function contains(space: Space, x: number | Float32Array): boolean {
  if (space.kind === "discrete") return typeof x === "number" && Number.isInteger(x) && x >= 0 && x < space.n;
  if (!(x instanceof Float32Array) || x.length !== spaceSize(space)) return false;
  for (let i = 0; i < x.length; i++) if (!(x[i] >= space.low && x[i] <= space.high)) return false;
  return true;
}

/** What happened in a step, beside the reward. Never shown to model-free agents. */
export interface Info {
  /** The hidden, intended objective for this step (0 on reset). */
  performance: number;
  /** Short tags of what happened this step: "goal", "tamper", "lap", ... */
  events: string[];
  [key: string]: unknown;
}

export interface ResetResult {
  obs: Float32Array;
  info: Info;
}

export interface StepResult {
  obs: Float32Array;
  reward: number;
  /** The episode ended inside the MDP (goal, hazard): do not bootstrap. */
  terminated: boolean;
  /** The episode was cut from outside (time limit): bootstrap from `obs`. */
  truncated: boolean;
  info: Info;
}

export interface ResetOptions {
  seed?: number;
  options?: Record<string, unknown>;
}

/** A small serialisable picture of the state; the client draws it, no pixels on the server. */
export interface Frame {
  width: number;
  height: number;
  /** One string per row, one character per cell (the level's own characters; agent not drawn). */
  rows: string[];
  /** Character -> tile kind name ("wall", "goal", "arrow-right", ...), for colouring. */
  legend: Record<string, string>;
  agent: { x: number; y: number } | null;
  /** Steps taken in the current episode. */
  t: number;
  /** Extra text drawn on cells or in a heads-up line. */
  labels?: { x: number; y: number; text: string }[];
  hud?: Record<string, number | string | boolean>;
}

/** Describes a registered environment. */
export interface EnvSpec {
  /** Versioned id, e.g. "BoatRace-v0". */
  id: string;
  /** One-line description. */
  description: string;
  /** Doc block: Description, Actions, Observations, Rewards, Performance, Episode end, Variants. */
  doc: string;
  /** Time limit applied by `make` as truncation. */
  maxEpisodeSteps: number;
  rewardRange: [number, number];
  /** Named variants selectable with config.variant; the first is the default. */
  variants: string[];
  /** Events this environment can emit (probes count them). */
  events: string[];
  /** Where the environment came from: "builtin", a level file path, or a plugin path. */
  source: string;
  /** JSON Schema of the config object passed to make(). */
  configSchema: object;
  /** What one episode's summed return and performance can reach, where the env knows it (probes clamp intervals to it). */
  episodeRange?: { return: [number, number]; performance: [number, number] };
}

/**
 * Generic reward wrappers make() applies by name: the reward kept, removed (0)
 * or negated; performance and events unchanged. The one list (registry.ts
 * builds its schema from it).
 */
export const REWARD_TRANSFORMS = ["keep", "removed", "negated"] as const;
export type RewardTransform = (typeof REWARD_TRANSFORMS)[number];

/** How make() built an env: a plain value, enough to build another like it. */
export interface EnvOrigin {
  /** Registered id. */
  id: string;
  /** The resolved config (defaults filled, variant included). */
  config: Readonly<Record<string, unknown>>;
  reward: RewardTransform;
  /** The time limit applied. */
  maxEpisodeSteps: number;
}

/** Opaque exact copy of an environment's state. Must be structured-cloneable. */
export type EnvState = unknown;

export interface Env {
  readonly spec: EnvSpec;
  readonly observationSpace: BoxSpace;
  readonly actionSpace: DiscreteSpace;
  reset(opts?: ResetOptions): ResetResult;
  step(action: number): StepResult;
  render(): Frame;
  /** Exact copy of the state (including the RNG), for planners. */
  snapshot(): EnvState;
  restore(state: EnvState): void;
  /**
   * Integer id of the environment state (excluding the time step), for
   * tabular models and the reinforcement ledger. -1 if the env has none.
   */
  stateKey(): number;
  /**
   * Writes the current observation into `out` at `offset` (the vector env's
   * fast path: no allocation). Same values as the last obs returned.
   */
  writeObs(out: Float32Array, offset: number): void;
  /** Releases resources; the env must not be used afterwards. */
  close?(): void;
  /**
   * The agent's cell in render()'s grid (y * width + x) in the state whose
   * stateKey() is `key`; -1 if the key says nothing about a cell. Lets views
   * paint per-state data (the ledger, visits) on the grid without knowing
   * how keys are encoded. Gridworlds: key % (width * height).
   */
  cellOfKey?(key: number): number;
  /** Steps left before the time limit truncates the episode (make()'s TimeLimit answers; wrappers forward). */
  stepsLeft?(): number;
  /**
   * Optional: with `false`, step() and reset() may return the env's own
   * observation buffer instead of a fresh copy (valid until the next call).
   * For simulators that read rewards and state keys, or copy the observation
   * at once (the planner's search, expit's): the copy was a third of the
   * planner's time on TomatoWatering-v0. Wrappers forward it.
   */
  setFreshObservations?(fresh: boolean): void;
  /** How the env was made (make() sets it; absent on an env built by hand). */
  readonly origin?: EnvOrigin;
  /**
   * A new env built as this one was (same registration, config and reward
   * wrapper), in its initial state, without going back to the registry;
   * `maxEpisodeSteps` replaces the time limit. make() provides it.
   */
  clone?(opts?: { maxEpisodeSteps?: number }): Env;
}

/** What `create` receives from make(), besides the validated config. */
export interface EnvContext {
  /** The time limit make() will apply; an env that observes time normalises by it. */
  maxEpisodeSteps: number;
}
