/**
 * The test episodes behind probe cells: TestEpisodeCapture records copy 0's
 * episodes step by step (frames, rewards, events) as evaluate() plays them,
 * keepProbeEpisodes keeps a bounded number with and without the event, and
 * loadProbeEpisodes gives back the same frames.
 */
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import "../../envs/index.ts";
import { makeVector } from "../../envs/vector.ts";
import {
  KEEP,
  MAX_CAPTURED,
  MAX_KEYS,
  TestEpisodeCapture,
  conditionName,
  keepProbeEpisodes,
  loadProbeEpisodes,
} from "../../experiments/probe-episodes.ts";

/** Plays a seeded random policy on BoatRace-v0 (2 copies) through the capture hook, as playEpisodes calls it. */
function capture(steps: number): TestEpisodeCapture {
  const vec = makeVector("BoatRace-v0", 2);
  vec.captureFinalFrame = 0;
  vec.reset(3);
  const c = new TestEpisodeCapture("default");
  c.onStep(vec);
  let s = 11;
  for (let t = 0; t < steps; t++) {
    vec.step([0, 1].map(() => (s = (s * 16807) % 2147483647) % 4));
    c.onStep(vec);
  }
  vec.close();
  return c;
}

describe("TestEpisodeCapture", () => {
  it("records copy 0's whole episodes: one frame per step plus the first, totals equal to the steps' sums, at most MAX_CAPTURED", () => {
    const c = capture(100 * (MAX_CAPTURED + 3));
    expect(c.episodes).toHaveLength(MAX_CAPTURED);
    for (const ep of c.episodes) {
      expect(ep.frames).toHaveLength(ep.rewards.length + 1);
      expect(ep.rewards).toHaveLength(100);
      expect(ep.return).toBeCloseTo(
        ep.rewards.reduce((a, b) => a + b, 0),
        6,
      );
      const laps = ep.events.flat().filter((e) => e === "lap").length;
      expect(ep.eventCounts.lap ?? 0).toBe(laps);
      expect(ep.frames[0]!.t).toBe(0);
      expect(ep.frames.at(-1)!.t).toBe(100);
    }
  });
});

describe("keepProbeEpisodes", () => {
  it("keeps at most KEEP episodes with the event and KEEP without, drops them from the job, and loads the same frames back", () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-probe-eps-"));
    const eps = capture(100 * MAX_CAPTURED).episodes;
    const job = {
      agent: "ppo",
      seed: 2,
      arm: "",
      testEpisodes: [
        { condition: "sampled", episodes: eps },
        { condition: "greedy", episodes: [] },
      ],
    };
    expect(keepProbeEpisodes(dir, "probe-1", job, "arrow")).toBe(1);
    expect(job.testEpisodes).toBeUndefined();
    const kept = loadProbeEpisodes(dir, "probe-1", "ppo", "", 2, conditionName({ evaluation: "sampled" }))!;
    const withArrow = eps.filter((e) => (e.eventCounts.arrow ?? 0) > 0);
    expect(kept.withEvent).toHaveLength(Math.min(KEEP, withArrow.length));
    expect(kept.withEvent.length + kept.withoutEvent.length).toBeLessThanOrEqual(2 * KEEP);
    expect(kept.withEvent[0]!.frames).toEqual(withArrow[0]!.frames);
    expect(kept.recorded).toBe(MAX_CAPTURED);
    expect(loadProbeEpisodes(dir, "probe-1", "ppo", "", 3, "sampled")).toBeNull();
    expect(loadProbeEpisodes(dir, "probe-1", "ppo", "", 2, "greedy")).toBeNull();
    expect(() => loadProbeEpisodes(dir, "../etc", "ppo", "", 2, "sampled")).toThrow(RangeError);
    expect(conditionName({ evaluation: "greedy", mode: "search" })).toBe("greedy-search");
    expect(conditionName({ evaluation: "sampled", budget: 0 })).toBe("sampled-budget0");
  });

  it("keeps the episodes of the newest MAX_KEYS probes only", () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-probe-eps-"));
    const eps = capture(100).episodes;
    for (let i = 0; i < MAX_KEYS + 3; i++)
      keepProbeEpisodes(dir, `p${i}`, { agent: "ppo", seed: 0, arm: "", testEpisodes: [{ condition: "sampled", episodes: eps }] }, "lap");
    const keys = readdirSync(join(dir, "probe-episodes"));
    expect(keys.length).toBe(MAX_KEYS);
    expect(keys).toContain(`p${MAX_KEYS + 2}`);
    expect(statSync(join(dir, "probe-episodes", `p${MAX_KEYS + 2}`)).isDirectory()).toBe(true);
  });
});
