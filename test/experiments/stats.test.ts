import { describe, expect, it } from "vitest";
import { meanCI, tQuantile975, wilson } from "../../experiments/stats.ts";

describe("wilson", () => {
  // reference values: Wilson score interval, z = 1.96 (e.g. statsmodels proportion_confint(method="wilson"))
  it.each([
    [0, 10, 0, 0.27753],
    [5, 10, 0.23659, 0.76341],
    [10, 10, 0.72247, 1],
    [1, 20, 0.00888, 0.23613],
    [37, 100, 0.28182, 0.46779],
  ])("%i of %i", (k, n, lo, hi) => {
    const [a, b] = wilson(k, n);
    expect(a).toBeCloseTo(lo, 4);
    expect(b).toBeCloseTo(hi, 4);
  });

  it("is [0, 1] with no trials", () => {
    expect(wilson(0, 0)).toEqual([0, 1]);
  });
});

describe("meanCI", () => {
  it("uses Student's t for small samples", () => {
    const r = meanCI([1, 2, 3, 4, 5]);
    expect(r.mean).toBe(3);
    // sd = 1.5811, se = 0.7071, t(4) = 2.776
    expect(r.ci[0]).toBeCloseTo(3 - 2.776 * Math.SQRT1_2, 3);
    expect(r.ci[1]).toBeCloseTo(3 + 2.776 * Math.SQRT1_2, 3);
  });
  it("approaches the normal quantile for many degrees of freedom", () => {
    expect(tQuantile975(1000)).toBeCloseTo(1.962, 2);
    expect(tQuantile975(40)).toBeCloseTo(2.021, 2);
  });
});
