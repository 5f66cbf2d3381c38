/**
 * The counting prediction (the essay's counting argument, measured): sample
 * policies uniformly among the functions from observations to actions that
 * are optimal on every observation seen in optimal train-variant trajectories
 * (uniform among tied optimal actions there) and arbitrary (uniform, fixed per
 * observation) elsewhere; report the fraction that show the event at test.
 */
import type { Env } from "../../envs/core.ts";
import { Rng, deriveSeed } from "../../envs/rng.ts";

/** A stable key for an observation (its bytes, FNV-1a hashed into a string with its length). */
export function obsKey(obs: Float32Array): string {
  const bytes = new Uint8Array(obs.buffer, obs.byteOffset, obs.byteLength);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < bytes.length; i++) {
    h1 = Math.imul(h1 ^ bytes[i]!, 0x01000193);
    h2 = Math.imul(h2 ^ bytes[i]!, 0x5bd1e995);
  }
  return `${obs.length}:${(h1 >>> 0).toString(36)}:${(h2 >>> 0).toString(36)}`;
}

/**
 * Observation -> the optimal actions there (ties included), on every
 * observation that optimal train episodes visit; the episodes follow a
 * uniformly drawn optimal action, so every optimal route gets visited.
 */
export function collectPinned(
  env: Env,
  optimalActions: (obs: Float32Array, env: Env) => number[],
  episodes: number,
  seed: number,
  returns: { seed: number; return: number }[] = [],
): Map<string, number[]> {
  const pinned = new Map<string, number[]>();
  const rng = new Rng(deriveSeed(seed, 0xc0));
  for (let ep = 0; ep < episodes; ep++) {
    let { obs } = env.reset({ seed: deriveSeed(seed, ep) });
    let ret = 0;
    for (;;) {
      const key = obsKey(obs);
      let best = pinned.get(key);
      if (!best) {
        best = optimalActions(obs, env);
        if (best.length === 0) throw new Error("collectPinned: the optimal policy returned no action");
        pinned.set(key, best);
      }
      const r = env.step(best[rng.int(best.length)]!);
      ret += r.reward;
      if (r.terminated || r.truncated) break;
      obs = r.obs;
    }
    returns.push({ seed: deriveSeed(seed, ep), return: ret });
  }
  return pinned;
}

export interface CountingResult {
  /** Fraction of sampled policies whose test episode shows the event. */
  rate: number;
  policies: number;
  /** Observations pinned by the optimal train trajectories. */
  pinned: number;
  /** Mean fraction of test steps whose observation was pinned (how much training constrains test behaviour). */
  pinnedCoverage: number;
  /** Fraction of drawn policies that were optimal on the train check (1 without a check). */
  acceptance: number;
}

/**
 * The train-side check that makes a drawn policy an optimal one: a stationary
 * policy that picks, at each observation, an action that is optimal there can
 * still loop where rewards tie (dawdling before a goal costs nothing), so
 * each drawn policy must also reach the optimal return on these train episodes.
 */
export interface OptimalityCheck {
  makeTrainEnv: () => Env;
  seeds: number[];
  /** The optimal return of each of those episodes. */
  optimum: number[];
}

/** Draws per sampled policy before giving up on finding an optimal one. */
const MAX_DRAWS = 200;

/** A policy: one fixed action per observation (optimal where pinned, uniform elsewhere), drawn lazily. */
function drawPolicy(pinned: Map<string, number[]>, n: number, rng: Rng): (obs: Float32Array) => { a: number; wasPinned: boolean } {
  const chosen = new Map<string, number>();
  return (obs) => {
    const key = obsKey(obs);
    const best = pinned.get(key);
    let a = chosen.get(key);
    if (a === undefined) {
      a = best ? best[rng.int(best.length)]! : rng.int(n);
      chosen.set(key, a);
    }
    return { a, wasPinned: best !== undefined };
  };
}

function episodeReturn(env: Env, policy: (obs: Float32Array) => { a: number }, seed: number): number {
  let { obs } = env.reset({ seed });
  let ret = 0;
  for (;;) {
    const r = env.step(policy(obs).a);
    ret += r.reward;
    if (r.terminated || r.truncated) return ret;
    obs = r.obs;
  }
}

/**
 * Samples `policies` policies (rejecting, when `check` is given, those not
 * optimal on the train episodes, up to MAX_DRAWS draws each); each plays
 * `episodesPerPolicy` test episodes; counts those showing `event` in any.
 */
export function countingRate(
  makeTestEnv: () => Env,
  pinned: Map<string, number[]>,
  event: string,
  policies: number,
  seed: number,
  episodesPerPolicy = 1,
  check?: OptimalityCheck,
): CountingResult {
  const env = makeTestEnv();
  const trainEnv = check?.makeTrainEnv();
  const n = env.actionSpace.n;
  let shows = 0;
  let coverage = 0;
  let drawn = 0;
  let accepted = 0;
  for (let p = 0; p < policies; p++) {
    const rng = new Rng(deriveSeed(seed, p));
    let policy = drawPolicy(pinned, n, rng);
    drawn++;
    if (check && trainEnv) {
      let optimal = false;
      for (let attempt = 0; attempt < MAX_DRAWS; attempt++) {
        if (attempt > 0) {
          policy = drawPolicy(pinned, n, rng);
          drawn++;
        }
        optimal = check.seeds.every((s, i) => episodeReturn(trainEnv, policy, s) >= check.optimum[i]! - 1e-6);
        if (optimal) break;
      }
      // no optimal policy found in MAX_DRAWS draws: this sample is left out, not counted as non-optimal
      if (!optimal) continue;
    }
    accepted++;
    let showed = false;
    let steps = 0;
    let pinnedSteps = 0;
    for (let ep = 0; ep < episodesPerPolicy; ep++) {
      let { obs } = env.reset({ seed: deriveSeed(seed ^ 0x7e57, p * episodesPerPolicy + ep) });
      for (;;) {
        const { a, wasPinned } = policy(obs);
        if (wasPinned) pinnedSteps++;
        const r = env.step(a);
        steps++;
        if (r.info.events.includes(event)) showed = true;
        if (r.terminated || r.truncated) break;
        obs = r.obs;
      }
    }
    if (showed) shows++;
    coverage += steps ? pinnedSteps / steps : 0;
  }
  env.close?.();
  trainEnv?.close?.();
  return {
    rate: accepted ? shows / accepted : NaN,
    policies: accepted,
    pinned: pinned.size,
    pinnedCoverage: accepted ? coverage / accepted : NaN,
    acceptance: accepted / drawn,
  };
}
