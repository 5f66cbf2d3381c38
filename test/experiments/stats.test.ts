import { describe, expect, it } from "vitest";
import { episodeSumRange, meanCI, meanOverSeeds, rateOverSeeds, tQuantile975, wilson } from "../../experiments/stats.ts";

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

describe("exact edges", () => {
  it("gives a lower bound of exactly 0 for no successes and an upper bound of exactly 1 for all", () => {
    for (const n of [1, 3, 10, 100, 1000, 12345]) {
      expect(wilson(0, n)[0]).toBe(0);
      expect(wilson(n, n)[1]).toBe(1);
    }
  });
  it("always contains k/n", () => {
    for (let n = 1; n <= 60; n++)
      for (let k = 0; k <= n; k++) {
        const [a, b] = wilson(k, n);
        expect(a).toBeLessThanOrEqual(k / n);
        expect(b).toBeGreaterThanOrEqual(k / n);
      }
  });
});

describe("rateOverSeeds: the seed is the unit", () => {
  it("k seeds all at 0 get at least the Wilson upper bound of 0 in k trials", () => {
    const three = rateOverSeeds([0, 0, 0]);
    expect(three.rate).toBe(0);
    expect(three.ci[0]).toBe(0);
    expect(three.ci[1]).toBeGreaterThanOrEqual(0.56);
    const ten = rateOverSeeds(new Array(10).fill(0));
    expect(ten.ci[1]).toBeGreaterThanOrEqual(0.277);
    expect(ten.ci[1]).toBeLessThan(0.3);
  });

  it("k seeds all at 1: upper bound exactly 1, lower bound the Wilson one", () => {
    const r = rateOverSeeds([1, 1, 1]);
    expect(r.ci[1]).toBe(1);
    expect(r.ci[0]).toBeCloseTo(1 - 0.5615, 3);
  });

  it("is never narrower than either the t interval over seeds or the k-unit Wilson interval", () => {
    const seeds = [0.1, 0.9, 0.5, 0.2];
    const r = rateOverSeeds(seeds);
    const t = meanCI(seeds);
    const w = wilson(
      seeds.reduce((a, b) => a + b, 0),
      seeds.length,
    );
    expect(r.ci[0]).toBeLessThanOrEqual(Math.max(0, t.ci[0]));
    expect(r.ci[1]).toBeGreaterThanOrEqual(Math.min(1, t.ci[1]));
    expect(r.ci[0]).toBeLessThanOrEqual(w[0]);
    expect(r.ci[1]).toBeGreaterThanOrEqual(w[1]);
  });

  it("keeps bounds in [0, 1] around the rate for any seed rates, and one seed gets the Wilson interval of one trial", () => {
    let x = 7;
    const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 300; i++) {
      const k = 1 + Math.floor(next() * 12);
      const seeds = Array.from({ length: k }, () => (next() < 0.3 ? 0 : next() < 0.3 ? 1 : Math.round(next() * 100) / 100));
      const r = rateOverSeeds(seeds);
      expect(r.ci[0]).toBeGreaterThanOrEqual(0);
      expect(r.ci[1]).toBeLessThanOrEqual(1);
      expect(r.ci[0]).toBeLessThanOrEqual(r.rate);
      expect(r.ci[1]).toBeGreaterThanOrEqual(r.rate);
      expect(r.perSeed).toEqual(seeds);
    }
    expect(rateOverSeeds([0]).ci).toEqual(wilson(0, 1));
  });
});

describe("meanOverSeeds", () => {
  it("clamps to the possible range: a return that cannot be negative gets no negative bound", () => {
    // unclamped, t(2) gives [-0.033, 0.053]
    const r = meanOverSeeds([0, 0, 0.03], [0, 100]);
    expect(r.ci[0]).toBe(0);
    expect(r.ci[1]).toBeGreaterThan(0.05);
    expect(meanCI([0, 0, 0.03]).ci[0]).toBeLessThan(0);
  });
  it("contains the mean exactly, and one seed gives the whole range", () => {
    const r = meanOverSeeds([50, 50, 50], [-100, 300]);
    expect(r.ci).toEqual([50, 50]);
    expect(meanOverSeeds([7], [-100, 300]).ci).toEqual([-100, 300]);
    expect(meanOverSeeds([7]).ci).toEqual([-Infinity, Infinity]);
  });
  it("an episode's return range from the per-step reward range and the time limit", () => {
    expect(episodeSumRange([-1, 2], 100)).toEqual([-100, 200]);
    expect(episodeSumRange([0, 1], 100)).toEqual([0, 100]);
    expect(episodeSumRange([1, 2], 10)).toEqual([1, 20]);
  });
});
