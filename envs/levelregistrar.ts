/**
 * Registers parsed levels as environments through the public `register` API,
 * and loads every level file of a folder. Keeps each registered level's
 * declared probes and ranges, for the probe runner to list and read.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Env, EnvContext } from "./core.ts";
import { LevelError, RewardlabError } from "./errors.ts";
import { GridEnv, specOfLevel } from "./gridworld.ts";
import type { Level, LevelProbe, LevelRoutes } from "./level.ts";
import { parseLevel } from "./levels.ts";
import { register, unregister, type EnvConfig } from "./registry.ts";

/** What the registrar keeps of each registered level, by env id. */
export interface RegisteredLevel {
  id: string;
  probes: LevelProbe[];
  /** Per-step performance range; null when a module's own dynamics may leave it. */
  performanceRange: [number, number] | null;
  /** Steps of the course's shortest lap (null without a course). */
  lapSteps: number | null;
  /** Action names (the letters of scripted routes). */
  actions: readonly string[];
  /** Scripted routes per variant. */
  routes: Record<string, LevelRoutes>;
  episodeRange?: { return?: [number, number]; performance?: [number, number] };
}

const levels = new Map<string, RegisteredLevel>();

/** The registered level behind an env id (undefined for envs that are not levels). */
export function registeredLevel(id: string): RegisteredLevel | undefined {
  return levels.get(id);
}

/** Every probe declared by a registered level, with the env that declares it, in registration order. */
export function declaredProbes(): { env: string; probe: LevelProbe }[] {
  return [...levels.values()].flatMap((l) => l.probes.map((probe) => ({ env: l.id, probe })));
}

export interface RegisterLevelOptions {
  /** Builds the env; default `new GridEnv(level, config, ctx)`. Modules pass a subclass. */
  create?: (level: Level, config: EnvConfig, ctx: EnvContext) => Env;
  /** Overrides the registered reward range (modules whose dynamics change it). */
  rewardRange?: [number, number];
  /** Extra events emitted by the module's dynamics. */
  events?: string[];
  /** Extra config fields (JSON Schemas with defaults) read by the module. */
  config?: Record<string, Record<string, unknown>>;
  /** Replace an environment already registered under the same id. */
  replace?: boolean;
  /** Per-step performance range of the module's dynamics (default: the level's, unless `create` is given). */
  performanceRange?: [number, number];
}

/**
 * Registers a parsed level as an environment through the public `register`
 * API. With options, registers a copy of the level carrying the module's
 * events, config fields and reward range, so that env.spec and the registry
 * agree.
 */
export function registerLevel(level: Level, opts: RegisterLevelOptions = {}): Level {
  const events = [...level.events];
  for (const e of opts.events ?? []) if (!events.includes(e)) events.push(e);
  for (const key of Object.keys(opts.config ?? {})) {
    if (key === "variant") throw new RewardlabError(`${level.id}: config field "variant" is reserved`);
  }
  const lvl: Level = {
    ...level,
    events,
    config: { ...level.config, ...opts.config },
    rewardRange: opts.rewardRange ?? level.rewardRange,
  };
  const create = opts.create ?? ((l: Level, config: EnvConfig, ctx: EnvContext) => new GridEnv(l, config, ctx));
  const spec = specOfLevel(lvl);
  register(
    {
      id: spec.id,
      description: spec.description,
      doc: spec.doc,
      maxEpisodeSteps: spec.maxEpisodeSteps,
      rewardRange: spec.rewardRange,
      variants: spec.variants,
      events: spec.events,
      configSchema: spec.configSchema,
      create: (config, ctx) => create(lvl, config, ctx),
      source: spec.source,
    },
    { replace: opts.replace },
  );
  levels.set(lvl.id, {
    id: lvl.id,
    probes: lvl.probes,
    performanceRange: opts.performanceRange ?? (opts.create ? null : lvl.performanceRange),
    lapSteps: lvl.lapSteps,
    actions: lvl.actions,
    routes: lvl.routes,
    ...(lvl.episodeRange ? { episodeRange: lvl.episodeRange } : {}),
  });
  return lvl;
}

/** Removes a registered level (its env and its declared probes); false if no level has that id. */
export function unregisterLevel(id: string): boolean {
  if (!levels.delete(id)) return false;
  return unregister(id);
}

export interface LoadResult {
  /** Ids registered. */
  loaded: string[];
  /** One LevelError per broken file (the other files still load). */
  errors: LevelError[];
}

/**
 * Registers every *.json level in `dir` (not recursive), in name order. A
 * broken file yields a LevelError naming the file and its problems; the
 * others still load. Throws only if the folder itself cannot be read.
 */
export function loadLevelDir(dir: string | URL, opts: { replace?: boolean } = {}): LoadResult {
  const path = dir instanceof URL ? fileURLToPath(dir) : dir;
  const files = readdirSync(path)
    .filter((f) => f.endsWith(".json"))
    .sort();
  const loaded: string[] = [];
  const errors: LevelError[] = [];
  for (const f of files) {
    const file = join(path, f);
    try {
      if (!statSync(file).isFile()) continue;
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(file, "utf8"));
      } catch (e) {
        throw new LevelError(file, [`not valid JSON: ${(e as Error).message}`]);
      }
      const level = parseLevel(json, file);
      registerLevel(level, opts);
      loaded.push(level.id);
    } catch (e) {
      errors.push(e instanceof LevelError ? e : new LevelError(file, [(e as Error).message]));
    }
  }
  return { loaded, errors };
}
