/**
 * register() and make(): every environment, built-in, level file or plugin,
 * goes through the same declaration. make() validates the config, then wraps
 * the env in the order checks and the time limit.
 */
import { type Env, type EnvContext, type EnvOrigin, type EnvSpec, REWARD_TRANSFORMS, type RewardTransform } from "./core.ts";
import { RegistrationError, UnknownIdError } from "./errors.ts";
import { StringEnum, cloneInput, validate } from "./schema.ts";
import { OrderEnforcing, TimeLimit, RewardRemoved, RewardNegated } from "./wrappers.ts";

export interface EnvConfig {
  variant?: string;
  [key: string]: unknown;
}

/**
 * What register() takes: the spec's fields (the config schema must accept
 * `variant`; make() fills its defaults), the source optional ("builtin" when
 * absent), and how to create an instance.
 */
export interface EnvRegistration extends Omit<EnvSpec, "source"> {
  create: (config: EnvConfig, ctx: EnvContext) => Env;
  /** "builtin", or the level file / plugin module it came from. */
  source?: string;
  /**
   * Agent config fields this env recommends, by agent name (Maze-v0's PPO: the
   * convolutional network and the settings its training budget was measured
   * with). A run's own config overrides them field by field (top-level fields).
   */
  agentDefaults?: Record<string, Record<string, unknown>>;
}

/** The reward transform as a schema, for requests (the list is REWARD_TRANSFORMS in core.ts). */
export const rewardTransformSchema = StringEnum(REWARD_TRANSFORMS);
export type { RewardTransform };

export interface MakeOptions {
  /** Overrides the registered time limit. */
  maxEpisodeSteps?: number;
  /** Applies a generic reward wrapper. */
  reward?: RewardTransform;
}

const registry = new Map<string, EnvRegistration>();
const ID = /^[A-Za-z][A-Za-z0-9_.:-]*-v\d+$/;

export function register(reg: EnvRegistration, opts: { replace?: boolean } = {}): void {
  if (!ID.test(reg.id)) throw new RegistrationError(`environment id "${reg.id}" must look like Name-v0`);
  if (registry.has(reg.id) && !opts.replace) {
    throw new RegistrationError(`environment ${reg.id} is already registered (from ${registry.get(reg.id)!.source ?? "builtin"})`);
  }
  if (reg.variants.length === 0) throw new RegistrationError(`environment ${reg.id} declares no variants`);
  if (!(reg.maxEpisodeSteps > 0)) throw new RegistrationError(`environment ${reg.id} needs maxEpisodeSteps > 0`);
  registry.set(reg.id, { source: "builtin", ...reg });
}

export function unregister(id: string): boolean {
  return registry.delete(id);
}

export function registered(): EnvRegistration[] {
  return [...registry.values()];
}

export function registration(id: string): EnvRegistration {
  const didYouMean = (close: string[]) => (close.length ? ` Did you mean ${close.map((c) => `\`${c}\``).join(" or ")}?` : "");
  return lookUp(registry, id, (close) => `environment \`${id}\` doesn't exist.${didYouMean(close)}`);
}

/** The entry registered under `id`, or an UnknownIdError whose message `missing` phrases from the closest registered ids. */
export function lookUp<T>(entries: ReadonlyMap<string, T>, id: string, missing: (closest: string[]) => string): T {
  const found = entries.get(id);
  if (found === undefined) throw new UnknownIdError(missing(closest(id, [...entries.keys()])));
  return found;
}

export function specOf(id: string): EnvSpec {
  const r = registration(id);
  return {
    id: r.id,
    description: r.description,
    doc: r.doc,
    maxEpisodeSteps: r.maxEpisodeSteps,
    rewardRange: r.rewardRange,
    variants: r.variants,
    events: r.events,
    source: r.source ?? "builtin",
    configSchema: r.configSchema,
  };
}

/** Validates (and fills defaults into a copy of) an env config. */
export function resolveEnvConfig(id: string, config: EnvConfig = {}): EnvConfig {
  const reg = registration(id);
  return validate<EnvConfig>(reg.configSchema, cloneInput(config, `config for ${id}`), `config for ${id}`);
}

export function make(id: string, config: EnvConfig = {}, opts: MakeOptions = {}): Env {
  const reg = registration(id);
  const resolved = resolveEnvConfig(id, config);
  return build(reg, { id, config: resolved, reward: opts.reward ?? "keep", maxEpisodeSteps: opts.maxEpisodeSteps ?? reg.maxEpisodeSteps });
}

/** Builds from a registration already looked up: clones of a made env come back here, not through the registry. */
function build(reg: EnvRegistration, origin: EnvOrigin): Env {
  const { maxEpisodeSteps } = origin;
  let env: Env = reg.create(structuredClone(origin.config) as EnvConfig, { maxEpisodeSteps });
  if (origin.reward === "removed") env = new RewardRemoved(env);
  else if (origin.reward === "negated") env = new RewardNegated(env);
  return new OrderEnforcing(new TimeLimit(env, maxEpisodeSteps), { origin, build: (o) => build(reg, o) });
}

/** Ids within a small edit distance (or sharing a prefix), best first. */
export function closest(id: string, ids: string[], max = 3): string[] {
  const lower = id.toLowerCase();
  return ids
    .map((c) => ({ c, d: editDistance(lower, c.toLowerCase()) }))
    .filter(({ c, d }) => d <= Math.max(3, Math.floor(c.length / 3)) || c.toLowerCase().startsWith(lower.split("-")[0]!))
    .sort((a, b) => a.d - b.d)
    .slice(0, max)
    .map(({ c }) => c);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
