/**
 * The parsed shape of a level (see envs/levels.ts for the file format): tile
 * kinds, layouts, variants and the probes a level declares. Types and fixed
 * tables only, so that the engine (gridworld.ts), the parser (levels.ts), the
 * doc generator (leveldoc.ts) and the registrar (levelregistrar.ts) share them
 * without importing one another in a circle.
 */

export type Direction = "up" | "down" | "left" | "right";
export type ActionName = Direction | "noop";
export type TileKind = "wall" | "floor" | "start" | "goal" | "arrow" | "tamper" | "hazard" | "button" | "door" | "target";

export const TILE_KINDS: readonly TileKind[] = ["wall", "floor", "start", "goal", "arrow", "tamper", "hazard", "button", "door", "target"];
export const DIRECTIONS: readonly Direction[] = ["up", "down", "left", "right"];
export const DOC_SECTIONS = ["Description", "Actions", "Observations", "Rewards", "Performance", "Episode end", "Variants"] as const;
export type DocSection = (typeof DOC_SECTIONS)[number];

/**
 * Observation channels of the built-in tile names, in this fixed order; other
 * names (set with a legend entry's `name`) follow in alphabetical order, then
 * "checkpoint-next" (when the course observes it) and "agent", always last.
 */
export const CHANNEL_ORDER: readonly string[] = [
  "wall",
  "goal",
  "arrow-up",
  "arrow-down",
  "arrow-left",
  "arrow-right",
  "tamper",
  "hazard",
  "button",
  "door",
  "target",
];

/** One legend entry with every default filled in. */
export interface TileDef {
  char: string;
  kind: TileKind;
  /**
   * Render and observation class ("wall", "arrow-right", "supervisor", ...).
   * "floor" is not observed (all planes zero); every other name has a plane.
   */
  name: string;
  /** Added to the reward when the effect fires (see the kind's doc). */
  reward: number;
  /** Added to the hidden performance when the effect fires. */
  performance: number;
  /** The episode terminates when the effect fires. */
  terminates: boolean;
  /** Event emitted when the effect fires; null for none. */
  event: string | null;
  /** Arrows: event when entered or left against the arrow; null for none. */
  againstEvent: string | null;
  direction: Direction | null;
  /** Buttons and doors: a button opens every door with the same group. */
  group: string | null;
  /** Targets: steps until a hit target reappears. */
  respawn: number;
  /** Course checkpoint index (0..n-1), passed in order, entering along `direction`. */
  checkpoint: number | null;
  /** Event emitted when the agent moves onto this tile from a tile without the same enterEvent. */
  enterEvent: string | null;
  /** All cells with this character form a group; one of them, drawn each episode, keeps the kind, the rest are floor. */
  choose: boolean;
}

export interface CourseDef {
  /** Reward and performance when a lap is completed (the last checkpoint passed in order). */
  lapReward: number;
  lapPerformance: number;
  /** Reward and performance for each checkpoint passed in order. */
  checkpointReward: number;
  checkpointPerformance: number;
  /**
   * Upstream boat-race hidden reward, each step: `onCourse` if the move followed
   * the arrows (entered an arrow in its direction, or left an arrow in its
   * direction onto a non-arrow tile), else `offCourse`. Null: not applied.
   */
  onCourse: number | null;
  offCourse: number | null;
  /** Adds a "checkpoint-next" plane marking the next checkpoint (keeps lap rewards Markov). */
  observeNext: boolean;
}

/** A concrete layout: art and legend, the things a variant can change. */
export interface LevelLayout {
  name: string;
  art: string[];
  legend: Record<string, TileDef>;
  stepReward: number;
  stepPerformance: number;
  /** Merged into reset info and the render hud (e.g. {supervised: true}). */
  info: Record<string, string | number | boolean>;
}

/**
 * A config-selectable variant: one layout, or a per-episode draw among layouts
 * (p is a probability or the name of a numeric config field; null = remainder).
 */
export interface LevelVariant {
  name: string;
  layouts: { layout: number; p: number | string | null }[];
}

export interface Level {
  id: string;
  description: string;
  /** Where it came from: the file path, or the module that defines it. */
  file: string;
  docSections: Record<DocSection, string>;
  /** The doc block: every section, "## Section" headings. */
  doc: string;
  width: number;
  height: number;
  actions: ActionName[];
  maxEpisodeSteps: number;
  observeTime: boolean;
  course: CourseDef | null;
  /** Number of checkpoints (0 if no course). */
  checkpoints: number;
  /** Steps of the shortest lap of the first layout's course (null without one): the unit the loophole classifier weighs laps in. */
  lapSteps: number | null;
  /** The value a tampered reward register is held at. */
  maxStepReward: number;
  rewardRange: [number, number];
  /** Per-step range of the hidden performance, from the tiles and course (modules with own dynamics may differ). */
  performanceRange: [number, number];
  layouts: LevelLayout[];
  variants: LevelVariant[];
  /** Extra config fields (JSON Schemas with defaults) beside `variant`. */
  config: Record<string, Record<string, unknown>>;
  events: string[];
  /** Observation channel names, in order; "agent" is last. */
  channels: string[];
  /** Probes the level file declares. */
  probes: LevelProbe[];
  /** Scripted routes per variant (the probes' knowledge columns). */
  routes: Record<string, LevelRoutes>;
  /** Declared per-episode ranges, where the engine cannot enumerate them. */
  episodeRange?: { return?: [number, number]; performance?: [number, number] };
}

/** Two scripted routes on one variant: to the event, and what training reinforced (action letters with counts). */
export interface LevelRoutes {
  event: string;
  reinforced: string;
}

/**
 * A probe a level file declares: train on one variant, test on others, count
 * an event. Run like the built-in probes (experiments/probes/index.ts).
 */
export interface LevelProbe {
  name: string;
  description: string;
  /** The variant agents train on. */
  train: string;
  /** The variants tested, learning off: the first is the probe's test; each gets its own result rows. */
  test: string[];
  /** The test-time event whose rate separates the hypotheses. */
  event: string;
  /** The train-time event whose rate, carried over, is the reinforced-behaviour prediction. */
  reinforcedEvent: string;
  /** The variant whose train-side episodes give the reinforced behaviour and competence (default: train). */
  reinforcedOn?: string;
  /** Routes on the first test variant (else the level's routes for it). */
  routes?: LevelRoutes;
  /** Training budget per agent (env steps); agents not named get the probes' default. */
  steps: Record<string, number>;
}
