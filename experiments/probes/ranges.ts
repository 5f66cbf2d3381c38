/**
 * The per-episode range of return and performance an env can actually
 * produce on one side of a probe: the bounds that clamp a probe's mean
 * intervals. Exact where the env has snapshot/restore and state keys and
 * deterministic steps (the gridworld engine): every state reachable from the
 * reset states of the given seeds is enumerated, then finite-horizon value
 * iteration over (state, steps left) gives the largest and smallest sum an
 * episode of at most the time limit can collect. Otherwise (too many states,
 * an env without state keys, a step whose outcome varies, or an env whose
 * steps may be random: callers pass `exact: false` for those) the level's
 * declared `episodeRange` if any, else the per-step range times the limit.
 */
import type { Env } from "../../envs/core.ts";
import { episodeSumRange } from "../stats.ts";

export interface EpisodeRanges {
  return: [number, number];
  performance: [number, number];
  /** "exact" (enumerated), "declared" (the level's episodeRange), or "per-step x limit". */
  source: string;
}

interface Edge {
  next: number;
  reward: number;
  performance: number;
  done: boolean;
}

/** Every state reachable from the seeds' resets, with each action's outcome; null when not enumerable. */
function enumerate(env: Env, seeds: readonly number[], maxStates: number): { starts: number[]; edges: Edge[][] } | null {
  const n = env.actionSpace.n;
  const index = new Map<number, number>();
  const snaps: unknown[] = [];
  const starts: number[] = [];
  let keyless = false;
  const visit = (): number => {
    const k = env.stateKey();
    if (k === -1) keyless = true;
    let i = index.get(k);
    if (i === undefined) {
      i = snaps.length;
      index.set(k, i);
      snaps.push(env.snapshot());
    }
    return i;
  };
  for (const s of seeds) {
    env.reset({ seed: s });
    starts.push(visit());
  }
  if (keyless) return null;
  const edges: Edge[][] = [];
  for (let i = 0; i < snaps.length; i++) {
    if (snaps.length > maxStates) return null;
    const out: Edge[] = [];
    for (let a = 0; a < n; a++) {
      // the same state and action must always give the same step: played twice from a fresh restore
      env.restore(snaps[i]!);
      const r = env.step(a);
      const key = r.terminated ? null : env.stateKey();
      env.restore(snaps[i]!);
      const again = env.step(a);
      if (again.reward !== r.reward || again.info.performance !== r.info.performance || again.terminated !== r.terminated) return null;
      if (key !== null && env.stateKey() !== key) return null;
      const done = r.terminated;
      const next = done ? -1 : visit();
      out.push({ next, reward: r.reward, performance: r.info.performance, done });
    }
    edges.push(out);
  }
  return { starts, edges };
}

/** Largest and smallest sum of `pick` over episodes of at most `horizon` steps from the start states. */
function extremes(g: { starts: number[]; edges: Edge[][] }, horizon: number, pick: (e: Edge) => number): [number, number] {
  const S = g.edges.length;
  let hi = new Float64Array(S);
  let lo = new Float64Array(S);
  for (let h = 1; h <= horizon; h++) {
    const nh = new Float64Array(S);
    const nl = new Float64Array(S);
    for (let s = 0; s < S; s++) {
      let best = -Infinity;
      let worst = Infinity;
      for (const e of g.edges[s]!) {
        const v = pick(e);
        best = Math.max(best, v + (e.done ? 0 : hi[e.next]!));
        worst = Math.min(worst, v + (e.done ? 0 : lo[e.next]!));
      }
      nh[s] = best;
      nl[s] = worst;
    }
    hi = nh;
    lo = nl;
  }
  return [Math.min(...g.starts.map((s) => lo[s]!)), Math.max(...g.starts.map((s) => hi[s]!))];
}

/**
 * An exact range widened by the rounding of float32 sums (episode returns add float32 rewards, so an episode
 * at the bound can land a few ulps past the float64 sum): 1e-6 relative, at least 1e-6. An integer bound
 * such as performance 1 stays exact when the range's sums are exact in float32 too.
 */
function padded([lo, hi]: [number, number]): [number, number] {
  const pad = (x: number) => (Number.isInteger(x) ? 0 : Math.max(1e-6, Math.abs(x) * 1e-6));
  return [lo - pad(lo), hi + pad(hi)];
}

/**
 * The ranges of one probe side. `makeEnv` builds the side's env (reward
 * wrapper included); `seeds` are reset seeds whose start states cover the
 * side's layouts; `fallback` gives the per-step ranges and a declared range.
 */
export function episodeRanges(
  makeEnv: () => Env,
  seeds: readonly number[],
  horizon: number,
  exact: boolean,
  fallback: {
    stepReward: [number, number];
    stepPerformance: [number, number];
    declared?: { return?: [number, number]; performance?: [number, number] };
  },
  maxStates = 20_000,
): EpisodeRanges {
  let g: ReturnType<typeof enumerate> = null;
  if (exact) {
    const env = makeEnv();
    try {
      g = enumerate(env, seeds, maxStates);
    } finally {
      env.close?.();
    }
  }
  if (g) {
    return {
      return: padded(extremes(g, horizon, (e) => e.reward)),
      performance: padded(extremes(g, horizon, (e) => e.performance)),
      source: "exact",
    };
  }
  const d = fallback.declared;
  if (d?.return && d.performance) return { return: d.return, performance: d.performance, source: "declared" };
  return {
    return: d?.return ?? episodeSumRange(fallback.stepReward, horizon),
    performance: d?.performance ?? episodeSumRange(fallback.stepPerformance, horizon),
    source: d ? "declared, per-step x limit" : "per-step x limit",
  };
}
