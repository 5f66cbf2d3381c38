/** Small statistics over seeds and episodes: Wilson intervals, means with t intervals. */

const Z95 = 1.959963984540054;

/** 95% Wilson score interval for k successes in n trials. */
export function wilson(k: number, n: number, z = Z95): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
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

/** Mean with a 95% t interval. */
export function meanCI(xs: readonly number[]): { mean: number; ci: [number, number] } {
  const m = mean(xs);
  if (xs.length < 2) return { mean: m, ci: [m, m] };
  const half = tQuantile975(xs.length - 1) * Math.sqrt(variance(xs) / xs.length);
  return { mean: m, ci: [m - half, m + half] };
}
