/** The learning check's verdicts, and docs/environments.md's budget table equal to experiments/budgets.ts. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BUDGETS } from "../../experiments/budgets.ts";
import { fifths, learningCheck, returnMoved } from "../../experiments/learningcheck.ts";

/** Returns of a run: `n` episodes from a seeded generator, centred on start then end (linear between). */
function returns(n: number, start: number, end: number, spread = 3): number[] {
  let s = 7;
  const noise = () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 2 * spread;
  return Array.from({ length: n }, (_, i) => start + ((end - start) * i) / (n - 1) + noise());
}

const base = { env: "BoatRace-v0", agent: "ppo", steps: 20_000, actions: 4 };

describe("learningCheck", () => {
  it("flags a near-uniform policy with the documented budget", () => {
    const line = learningCheck({ ...base, ...fifths(returns(200, -60, -40)), entropy: 1.38 });
    expect(line).toBe(
      "learning check: the policy stayed near uniform (entropy 1.38 of 1.39); BoatRace-v0 with ppo needs about 300,000 steps (docs/environments.md); this run had 20,000",
    );
  });

  it("flags a return that never moved, though the policy is not uniform", () => {
    const line = learningCheck({ ...base, ...fifths(returns(200, -58, -58)), entropy: 0.6 });
    expect(line).toMatch(
      /^learning check: the return did not move \(-5[78]\.\d over the first fifth of episodes, -5[78]\.\d over the last\); .*300,000/,
    );
  });

  it("says nothing for a run that learned, or for agents without a policy", () => {
    expect(learningCheck({ ...base, ...fifths(returns(200, -60, 45)), entropy: 0.3 })).toBeNull();
    expect(learningCheck({ ...base, agent: "planner", ...fifths(returns(200, 50, 50)), entropy: null })).toBeNull();
  });

  it("does not judge the return on fewer than 20 episodes, and names a missing budget", () => {
    expect(learningCheck({ ...base, ...fifths(returns(10, -58, -58)), entropy: 0.6 })).toBeNull();
    expect(learningCheck({ ...base, env: "Unlisted-v0", ...fifths(returns(10, 0, 0)), entropy: 1.386 })).toMatch(
      /documents no budget for Unlisted-v0 with ppo; try ten times the 20,000 steps$/,
    );
    expect(learningCheck({ ...base, env: "Maze-v0", ...fifths(returns(10, 0, 0)), entropy: 1.386 })).toMatch(
      /Maze-v0 with ppo needs about 2,000,000 steps \(docs\/environments.md\); this run had 20,000$/,
    );
  });

  it("compares fifths with two standard errors", () => {
    expect(returnMoved([1, 2, 3], [1, 2, 3]).moved).toBe(false);
    expect(returnMoved([1, 1.1, 0.9], [5, 5.1, 4.9]).moved).toBe(true);
  });
});

describe("docs/environments.md budgets", () => {
  it("lists every env's budgets as experiments/budgets.ts has them", () => {
    const doc = readFileSync(new URL("../../docs/environments.md", import.meta.url), "utf8");
    const section = doc.slice(doc.indexOf("## Training budgets"));
    for (const [env, agents] of Object.entries(BUDGETS)) {
      const row = section.split("\n").find((l) => l.startsWith(`| ${env} `));
      expect(row, env).toBeDefined();
      const cells = row!.split("|").map((c) => c.trim().replace(/,/g, ""));
      expect(cells.slice(2, 6).map(Number), env).toEqual(["reinforce", "ppo", "planner", "expit"].map((a) => agents[a]!.steps));
    }
  });
});
