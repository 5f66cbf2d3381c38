/**
 * Small statistics for probe and run results: Wilson intervals, means with t
 * intervals, and the intervals over seeds that probes report.
 *
 * In a probe the unit is the seed (one training run), not the episode: the
 * episodes of one trained policy are draws from that one policy, not from the
 * training procedure. `rateOverSeeds` and `meanOverSeeds` take one number per
 * seed; docs/probes.md explains the method and what it assumes.
 */

const Z95 = 1.959963984540054;

/** Clamps an interval into [lo, hi] and makes it contain `point` exactly. */
function settle(ci: [number, number], point: number, lo: number, hi: number): [number, number] {
  let a = Math.max(lo, Math.min(ci[0], point));
  let b = Math.min(hi, Math.max(ci[1], point));
  // at the edge of the range the bound is the edge itself, not 1e-19 beside it
  if (point <= lo) a = lo;
  if (point >= hi) b = hi;
  if (Number.isNaN(a)) a = lo;
  if (Number.isNaN(b)) b = hi;
  return [a, b];
}

/**
 * 95% Wilson score interval for k successes in n trials (k may be fractional:
 * a sum of per-seed rates). Exact at the edges: k = 0 gives a lower bound of
 * exactly 0, k = n an upper bound of exactly 1, and the interval always holds k/n.
 */
export function wilson(k: number, n: number, z = Z95): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt(Math.max(0, (p * (1 - p)) / n + z2 / (4 * n * n)))) / denom;
  return settle([centre - half, centre + half], p, 0, 1);
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

export function variance(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return s / (xs.length - 1);
}

/** Two-sided 97.5% quantile of Student's t with df degrees of freedom. */
export function tQuantile975(df: number): number {
  const table = [
    NaN,
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.16,
    2.145,
    2.131,
    2.12,
    2.11,
    2.101,
    2.093,
    2.086,
    2.08,
    2.074,
    2.069,
    2.064,
    2.06,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
  ];
  if (df < 1) return NaN;
  if (df < table.length) return table[df]!;
  // Cornish-Fisher style expansion around the normal quantile
  const z = Z95;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

/**
 * Mean with a 95% t interval, clamped to `range` (the values' possible range,
 * when known) and always containing the mean. Fewer than two values give no
 * spread to measure: the interval is the whole range (infinite if unknown).
 */
export function meanCI(
  xs: readonly number[],
  range: readonly [number, number] = [-Infinity, Infinity],
): { mean: number; ci: [number, number] } {
  const m = mean(xs);
  if (xs.length === 0) return { mean: m, ci: [range[0], range[1]] };
  if (xs.length < 2) return { mean: m, ci: [range[0], range[1]] };
  const half = tQuantile975(xs.length - 1) * Math.sqrt(variance(xs) / xs.length);
  return { mean: m, ci: settle([m - half, m + half], m, range[0], range[1]) };
}

/** A rate with the seed as the unit: the mean of the seeds' rates and its 95% interval. */
export interface SeedRate {
  /** Mean of the per-seed rates (the pooled rate when every seed has as many episodes). */
  rate: number;
  ci: [number, number];
  /** One rate per seed, in seed order. */
  perSeed: number[];
}

/**
 * The event rate over seeds. The interval is the union of two intervals, so
 * it is never narrower than either:
 * - Student's t over the k seed rates (what the seeds' spread supports);
 * - Wilson for the sum of the seed rates as successes in k trials: each seed
 *   counted as one Bernoulli unit, the widest a [0, 1] quantity with that mean
 *   can vary, so k seeds that happen to agree (all at 0, say) still get the
 *   interval k draws support (0 of 3: upper bound 0.56; 0 of 10: 0.28).
 * Bounds lie in [0, 1] and contain the rate exactly.
 */
export function rateOverSeeds(perSeed: readonly number[]): SeedRate {
  const k = perSeed.length;
  if (k === 0) return { rate: NaN, ci: [0, 1], perSeed: [] };
  const rate = mean(perSeed);
  const w = wilson(rate * k, k);
  let ci: [number, number] = w;
  if (k >= 2) {
    const t = meanCI(perSeed, [0, 1]).ci;
    ci = [Math.min(t[0], w[0]), Math.max(t[1], w[1])];
  }
  return { rate, ci: settle(ci, rate, 0, 1), perSeed: [...perSeed] };
}

/** A mean with the seed as the unit: the mean of the seeds' means and its 95% t interval. */
export interface SeedMean {
  mean: number;
  ci: [number, number];
  perSeed: number[];
}

/**
 * A mean over seeds (return, performance): Student's t over the k seed means,
 * clamped to the quantity's possible range when it has one, containing the
 * mean exactly. One seed gives the whole range (infinite bounds, null in
 * JSON, when there is none).
 */
export function meanOverSeeds(perSeed: readonly number[], range: readonly [number, number] = [-Infinity, Infinity]): SeedMean {
  const r = meanCI(perSeed, range);
  return { mean: r.mean, ci: r.ci, perSeed: [...perSeed] };
}

/**
 * The possible range of an episode's sum of per-step values in [lo, hi] over
 * episodes of 1 to `maxSteps` steps (the return range of an env with reward
 * range [lo, hi]); infinite where a per-step bound is.
 */
export function episodeSumRange(step: readonly [number, number], maxSteps: number): [number, number] {
  const [lo, hi] = step;
  const a = lo < 0 ? lo * maxSteps : lo;
  const b = hi > 0 ? hi * maxSteps : hi;
  return [Number.isFinite(a) ? a : -Infinity, Number.isFinite(b) ? b : Infinity];
}
