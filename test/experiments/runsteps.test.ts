/**
 * The named steps of a run's training loop (experiments/runsteps.ts), each
 * alone: interventions, copy 0's recording, the heatmap counts, the episode
 * record and the step rate. test/experiments/run.test.ts runs them together
 * (with pausing and checkpoints) through a Run.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { RunEvent } from "../../experiments/events.ts";
import { openEnvs, type Stepper } from "../../experiments/loop.ts";
import { applyIntervention, EpisodeRecorder, episodeStats, StepRate, VisitTally } from "../../experiments/runsteps.ts";
import { registerTestEnvs } from "../agents/testing.ts";

beforeAll(() => registerTestEnvs());
afterEach(() => vi.restoreAllMocks());

describe("applyIntervention", () => {
  const now = { variant: "train", learning: true, reward: "keep" as const };
  it("changes learning alone without remaking the envs", () => {
    expect(applyIntervention(now, { learning: false })).toEqual({ settings: { ...now, learning: false }, remakeEnvs: false });
  });
  it("remakes the envs whenever the change names the variant or the reward wrapper, even to the same value", () => {
    expect(applyIntervention(now, { variant: "test" })).toEqual({ settings: { ...now, variant: "test" }, remakeEnvs: true });
    expect(applyIntervention(now, { reward: "negated", learning: false })).toEqual({
      settings: { variant: "train", learning: false, reward: "negated" },
      remakeEnvs: true,
    });
    expect(applyIntervention(now, { variant: "train" }).remakeEnvs).toBe(true);
  });
});

describe("episodeStats", () => {
  it("reports a loop episode with the run's index, env steps and variant", () => {
    const e = { copy: 2, return: 1.5, performance: -1, length: 7, terminated: false, events: { goal: 1 }, envSteps: 40 };
    expect(episodeStats(e, 9, 1040, "test")).toEqual({
      index: 9,
      envSteps: 1040,
      return: 1.5,
      performance: -1,
      length: 7,
      terminated: false,
      events: { goal: 1 },
      variant: "test",
    });
  });
});

describe("EpisodeRecorder", () => {
  /** TestChain-v0 with two copies (copy 0 walks right to the goal in 5 steps), and a recorder on it; the clock moves 10 ms a reading. */
  function chain(everyMs = 1) {
    let clock = 0;
    vi.spyOn(Date, "now").mockImplementation(() => (clock += 10));
    const vec = openEnvs({ env: "TestChain-v0", config: {}, reward: "keep", numEnvs: 2, seed: 0 });
    vec.captureFinalFrame = 0;
    const events: RunEvent[] = [];
    return { vec, events, rec: new EpisodeRecorder("r", everyMs, (e: RunEvent) => events.push(e)) };
  }
  const at = (episode: number) => ({ episode, envSteps: episode * 10, variant: "train" });

  it("records copy 0's episode frame by frame and emits it whole when it ends", () => {
    const { vec, events, rec } = chain();
    rec.start(vec, at(0));
    for (let t = 0; t < 5; t++) {
      vec.step(Int32Array.of(1, 0));
      rec.step(vec, 1);
    }
    expect(vec.terminated[0]).toBe(1);
    rec.episodeEnded(vec, at(1));
    const frames = events.filter((e) => e.type === "frame");
    expect(frames.map((f) => f.t)).toEqual([0, 1, 2, 3, 4, 5, 0]);
    // the last frame of the episode is the goal reached, not the reset that followed
    expect(frames[5]!.frame.agent).toEqual({ x: 5, y: 0 });
    expect(frames[5]!.events).toEqual(["goal"]);
    const trajectory = events.find((e) => e.type === "trajectory")!.trajectory;
    expect(trajectory).toMatchObject({ episode: 0, envSteps: 0, variant: "train", actions: [1, 1, 1, 1, 1], rewards: [0, 0, 0, 0, 1] });
    expect(trajectory.frames).toHaveLength(6);
    expect(trajectory.events.at(-1)).toEqual(["goal"]);
    // the next episode started recording at once (more than `everyMs` passed)
    expect(frames[6]!.episode).toBe(1);
    vec.close();
  });

  it("starts no more than one recording per `everyMs`, and none at 0", () => {
    const { vec, events, rec } = chain(1000);
    let clock = 0;
    vi.spyOn(Date, "now").mockImplementation(() => clock);
    rec.start(vec, at(0));
    rec.episodeEnded(vec, at(1));
    clock = 999;
    rec.episodeEnded(vec, at(2));
    expect(events.map((e) => e.type)).toEqual(["frame", "trajectory"]);
    clock = 1000;
    rec.episodeEnded(vec, at(3));
    expect(events.map((e) => e.type)).toEqual(["frame", "trajectory", "frame"]);
    const never = chain(0);
    never.rec.start(never.vec, at(0));
    never.rec.step(never.vec, 1);
    never.rec.episodeEnded(never.vec, at(1));
    expect(never.events).toEqual([]);
    vec.close();
    never.vec.close();
  });

  it("drops the episode in progress when the envs are made again", () => {
    const { vec, events, rec } = chain();
    rec.start(vec, at(0));
    vec.step(Int32Array.of(1, 1));
    rec.step(vec, 1);
    rec.restart(vec, at(4));
    rec.episodeEnded(vec, at(5));
    const trajectories = events.filter((e) => e.type === "trajectory");
    expect(trajectories.map((e) => e.trajectory.episode)).toEqual([4]);
    expect(trajectories[0]!.trajectory.actions).toEqual([]);
    vec.close();
  });
});

describe("VisitTally", () => {
  const step = (keys: number[], searchVisits?: number[]) =>
    ({
      stateKeys: Int32Array.from(keys),
      lastAct: { actions: new Int32Array(keys.length), ...(searchVisits ? { searchVisits: Float32Array.from(searchVisits) } : {}) },
    }) as unknown as Stepper;

  it("counts visits per state key, skipping copies without one, and sums a search's root visits per key", () => {
    const tally = new VisitTally(0);
    tally.count(step([3, -1, 3], [1, 2, 9, 9, 0, 4]));
    tally.count(step([5, 3, -1]));
    expect(tally.takeForUpdate(6)).toEqual({ visits: { 3: 3, 5: 1 }, search: { 3: [1, 6] } });
    // counting starts afresh; no search sent when the agent did not search
    tally.count(step([1, 1, 1]));
    expect(tally.takeForUpdate(9)).toEqual({ visits: { 1: 3 } });
  });

  it("sends visits on their own only after `idleEvery` env steps without an update", () => {
    const tally = new VisitTally(100, 50);
    tally.count(step([2]));
    expect(tally.takeIfIdle(149)).toBeNull();
    expect(tally.takeIfIdle(150)).toEqual({ 2: 1 });
    expect(tally.takeIfIdle(250)).toBeNull(); // nothing counted since
    tally.count(step([4]));
    tally.takeForUpdate(260);
    tally.count(step([4]));
    expect(tally.takeIfIdle(300)).toBeNull();
    expect(tally.takeIfIdle(310)).toEqual({ 4: 1 });
  });
});

describe("StepRate", () => {
  it("gives env steps per second since the last tick", () => {
    let ms = 1000;
    vi.spyOn(performance, "now").mockImplementation(() => ms);
    const rate = new StepRate(500);
    ms = 1500;
    expect(rate.tick(1500)).toBe(2000);
    ms = 3500;
    expect(rate.tick(2500)).toBe(500);
  });
});
