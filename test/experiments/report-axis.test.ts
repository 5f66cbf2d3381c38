/** The HTML report's curve chart labels its x axis with round step counts. */
import { describe, expect, it } from "vitest";
import { curveChart } from "../../experiments/report.ts";

describe("curveChart x axis", () => {
  it("has tick labels at round env-step counts up to the last episode", () => {
    const svg = curveChart([
      { label: "ppo", colour: "#f00", envSteps: [1000, 120_000, 300_000], return: [0, 1, 2], performance: [0, 1, 1] },
    ]);
    const ticks = [...svg.matchAll(/class="x-tick"[^>]*>([^<]*)</g)].map((m) => m[1]);
    expect(ticks).toEqual(["0", "100k", "200k", "300k"]);
  });
});
