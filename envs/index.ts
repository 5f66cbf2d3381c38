/**
 * The envs package: importing it registers every built-in environment (the
 * level files in envs/levels/ and the module-defined ones) and re-exports the
 * public API.
 */
import { LevelError } from "./errors.ts";
import { loadLevelDir } from "./levelregistrar.ts";
import { registration } from "./registry.ts";
import { registerTomatoWatering } from "./tomato.ts";
import { registerMaze } from "./maze.ts";

export * from "./core.ts";
export * from "./errors.ts";
export * from "./registry.ts";
export * from "./vector.ts";
export * from "./wrappers.ts";
export { Rng, deriveSeed } from "./rng.ts";
export { toAscii, frameToAscii } from "./ascii.ts";
export { GridEnv, NO_EVENTS, eventList, configSchemaOf, specOfLevel, type GridState } from "./gridworld.ts";
export {
  parseLevel,
  levelSchema,
  CHANNEL_ORDER,
  TILE_KINDS,
  type Level,
  type LevelLayout,
  type LevelProbe,
  type LevelVariant,
  type TileDef,
  type TileKind,
} from "./levels.ts";
export {
  loadLevelDir,
  registerLevel,
  declaredProbes,
  registeredLevel,
  type LoadResult,
  type RegisterLevelOptions,
  type RegisteredLevel,
} from "./levelregistrar.ts";
export { TomatoWateringEnv } from "./tomato.ts";
export { MazeEnv, MAZE_CHANNELS, MAZE_ID, carveMaze, type MazeLayout, type MazeConfig } from "./maze.ts";

/** Where the built-in level files live. */
export const BUILTIN_LEVELS = new URL("./levels/", import.meta.url);

function isRegistered(id: string): boolean {
  try {
    registration(id);
    return true;
  } catch {
    return false;
  }
}

/** Registers the built-ins (idempotent). A broken built-in level is a bug: it throws. */
export function registerBuiltins(): void {
  if (isRegistered("BoatRace-v0")) return;
  const { errors } = loadLevelDir(BUILTIN_LEVELS);
  if (errors.length)
    throw new LevelError(
      errors[0]!.file,
      errors.flatMap((e) => e.problems),
    );
  if (!isRegistered("TomatoWatering-v0")) registerTomatoWatering();
  registerMaze();
}

registerBuiltins();
