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
): Map<string, number[]> {
  const pinned = new Map<string, number[]>();
  const rng = new Rng(deriveSeed(seed, 0xc0));
  for (let ep = 0; ep < episodes; ep++) {
    let { obs } = env.reset({ seed: deriveSeed(seed, ep) });
    for (;;) {
      const key = obsKey(obs);
      let best = pinned.get(key);
      if (!best) {
        best = optimalActions(obs, env);
        if (best.length === 0) throw new Error("collectPinned: the optimal policy returned no action");
        pinned.set(key, best);
      }
      const r = env.step(best[rng.int(best.length)]!);
      if (r.terminated || r.truncated) break;
      obs = r.obs;
    }
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
}

/** Samples `policies` policies; each plays `episodesPerPolicy` test episodes; counts those showing `event` in any. */
export function countingRate(
  makeTestEnv: () => Env,
  pinned: Map<string, number[]>,
  event: string,
  policies: number,
  seed: number,
  episodesPerPolicy = 1,
): CountingResult {
  const env = makeTestEnv();
  const n = env.actionSpace.n;
  let shows = 0;
  let coverage = 0;
  for (let p = 0; p < policies; p++) {
    const rng = new Rng(deriveSeed(seed, p));
    const free = new Map<string, number>();
    let showed = false;
    let steps = 0;
    let pinnedSteps = 0;
    for (let ep = 0; ep < episodesPerPolicy; ep++) {
      let { obs } = env.reset({ seed: deriveSeed(seed ^ 0x7e57, p * episodesPerPolicy + ep) });
      for (;;) {
        // one fixed action per observation per policy: an optimal one where training pins the
        // observation (uniform among ties), any action elsewhere
        const key = obsKey(obs);
        const best = pinned.get(key);
        if (best) pinnedSteps++;
        let a = free.get(key);
        if (a === undefined) {
          a = best ? best[rng.int(best.length)]! : rng.int(n);
          free.set(key, a);
        }
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
  return { rate: shows / policies, policies, pinned: pinned.size, pinnedCoverage: coverage / policies };
}
