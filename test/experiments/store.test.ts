import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Store, type StoredProbe } from "../../experiments/store.ts";
import type { RunEvent, RunSpec } from "../../experiments/events.ts";

const spec: RunSpec = {
  env: "BoatRace-v0",
  variant: "default",
  envConfig: {},
  agent: "ppo",
  config: { numEnvs: 4 },
  seed: 3,
  steps: 1000,
  evalEpisodes: 10,
  evalGreedy: false,
  checkpointEvery: 10,
  recordEveryMs: 1000,
  reward: "keep",
};

/** Run r's episode i, `length` steps long, ending at (i + 1) x length env steps; its return is i. */
const episodeEvent = (i: number, length: number): RunEvent => ({
  type: "episode",
  runId: "r",
  episode: { index: i, envSteps: (i + 1) * length, return: i, performance: 0, length, terminated: true, events: {}, variant: "default" },
});

describe("the store", () => {
  it("gives an overview of a long run: evenly spread over all of it, with the first and the last", () => {
    const s = new Store(mkdtempSync(join(tmpdir(), "rl-store-")));
    s.createRun("r", spec);
    for (let i = 0; i < 12; i++) {
      s.record(episodeEvent(i, 10));
      s.record({ type: "update", runId: "r", update: i + 1, envSteps: (i + 1) * 10, stepsPerSecond: 1, metrics: { x: i } });
    }
    s.flush();
    expect(s.episodesOverview("r", 5).map((e) => e.index)).toEqual([0, 3, 6, 9, 11]);
    expect(s.updatesOverview("r", 5).map((u) => u.update)).toEqual([1, 3, 6, 9, 12]);
    expect(s.episodesOverview("r", 100)).toHaveLength(12);
    expect(s.episodesOverview("none", 5)).toEqual([]);
    s.close();
  });

  it("rewinds a run to a checkpoint: later episodes, updates and trajectories go, the ledger takes the checkpoint's total", () => {
    const s = new Store(mkdtempSync(join(tmpdir(), "rl-store-")));
    s.createRun("r", spec);
    for (let i = 0; i < 10; i++) {
      s.record(episodeEvent(i, 100));
      s.record({
        type: "trajectory",
        runId: "r",
        trajectory: {
          episode: i,
          envSteps: (i + 1) * 100,
          variant: "default",
          frames: [],
          actions: [0],
          rewards: [0],
          performance: [0],
          events: [[]],
        },
      });
    }
    for (let u = 1; u <= 4; u++) {
      s.record({
        type: "update",
        runId: "r",
        update: u,
        envSteps: u * 256,
        stepsPerSecond: 1,
        metrics: {},
        ledger: { entries: { "3": [u, 0] }, total: u, totalAbs: u },
        visits: { "3": 10 },
      });
    }
    // the checkpoint was taken after update 2, at 512 steps, when the ledger's total was 1 + 2
    const r = s.rewindTo("r", 512, { "3": [3, 0] });
    expect(r).toEqual({ episodes: 5, updates: 2, discardedEpisodes: 5, discardedUpdates: 2 });
    expect(s.episodes("r").map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
    expect(s.updates("r")).toHaveLength(2);
    expect(s.trajectories("r").map((t) => t.episode)).toEqual([0, 1, 2, 3, 4]);
    expect(s.ledger("r")).toEqual({ entries: { "3": [3, 0] }, visits: { "3": 40 } });
    expect(s.getRun("r")).toMatchObject({ envSteps: 512, episodes: 5, updates: 2 });
    // the resumed run's episodes continue the numbering
    s.record({
      type: "episode",
      runId: "r",
      episode: { index: 5, envSteps: 600, return: 9, performance: 0, length: 88, terminated: true, events: {}, variant: "default" },
    });
    s.flush();
    expect(s.getRun("r")).toMatchObject({ envSteps: 600, episodes: 6 });
    s.close();
  });

  it("keeps runs, episodes, updates, ledger totals and trajectories across reopen", () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-store-"));
    const s = new Store(dir);
    s.createRun("r1", spec);
    s.record({ type: "status", runId: "r1", status: "running" });
    for (let i = 0; i < 5; i++) {
      s.record({
        type: "episode",
        runId: "r1",
        episode: {
          index: i,
          envSteps: (i + 1) * 100,
          return: i,
          performance: -i,
          length: 100,
          terminated: false,
          events: { lap: i },
          variant: "default",
        },
      });
    }
    s.record({
      type: "update",
      runId: "r1",
      update: 1,
      envSteps: 512,
      stepsPerSecond: 1000,
      metrics: { "losses/policy_loss": 0.5 },
      ledger: { entries: { "7": [1, 0, 0, -1] }, total: 0, totalAbs: 2 },
      visits: { "7": 3 },
    });
    s.record({
      type: "update",
      runId: "r1",
      update: 2,
      envSteps: 1024,
      stepsPerSecond: 1000,
      metrics: { "losses/policy_loss": 0.25 },
      ledger: { entries: { "7": [0.5, 0, 0, 0] }, total: 0.5, totalAbs: 0.5 },
      visits: { "7": 2, "8": 1 },
    });
    s.record({
      type: "trajectory",
      runId: "r1",
      trajectory: {
        episode: 0,
        envSteps: 100,
        variant: "default",
        frames: [],
        actions: [1, 2],
        rewards: [1, -1],
        performance: [1, 1],
        events: [[], ["lap"]],
      },
    });
    s.close();

    const t = new Store(dir);
    const run = t.getRun("r1")!;
    expect(run.status).toBe("running");
    expect(run.episodes).toBe(5);
    expect(run.envSteps).toBe(1024);
    expect(run.updates).toBe(2);
    expect(t.episodes("r1").map((e) => e.return)).toEqual([0, 1, 2, 3, 4]);
    expect(t.recent("r1", 2)).toMatchObject({ return: 3.5, performance: -3.5 });
    expect(t.updates("r1").map((u) => u.metrics["losses/policy_loss"])).toEqual([0.5, 0.25]);
    expect(t.ledger("r1")).toEqual({ entries: { "7": [1.5, 0, 0, -1], "8": [] }, visits: { "7": 5, "8": 1 } });
    expect(t.trajectories("r1")).toEqual([{ episode: 0, envSteps: 100, variant: "default", length: 2, return: 0, performance: 2 }]);
    // a run that was running when the process died is marked interrupted, with its data intact
    expect(t.markInterrupted()).toEqual(["r1"]);
    expect(t.getRun("r1")!.status).toBe("interrupted");
    expect(t.episodes("r1")).toHaveLength(5);
    expect(t.deleteRun("r1")).toBe(true);
    expect(t.episodes("r1")).toHaveLength(0);
    t.close();
  });

  it("keeps a probe's chance row, ranges and routes across reopen (the table beside its rows)", () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-store-"));
    const chance = [
      {
        evaluation: "sampled" as const,
        seeds: 2,
        episodes: 20,
        rate: 0.5,
        ci: [0.1, 0.9] as [number, number],
        perSeed: [{ seed: 0, rate: 0.5, return: 1, performance: 0 }],
        return: { mean: 1, ci: [0, 2] as [number, number] },
        performance: { mean: 0, ci: [0, 1] as [number, number] },
        entropy: Math.log(4),
      },
    ];
    const probe: StoredProbe = {
      id: "p1",
      probe: "tamper",
      env: "TamperGrid-v0",
      status: "completed",
      reason: null,
      createdAt: 1,
      request: { probe: "tamper" },
      results: [],
      chance,
      ranges: { return: [-1, 96], performance: [0, 1], source: "exact" },
      routes: { event: ["down"], reinforced: ["right"] },
    };
    const s = new Store(dir);
    s.saveProbe(probe);
    s.close();
    const t = new Store(dir);
    const back = t.getProbe("p1")!;
    expect(back.chance).toEqual(chance);
    expect(back.ranges).toEqual(probe.ranges);
    expect(back.routes).toEqual(probe.routes);
    expect(t.listProbes()[0]!.chance).toEqual(chance);
    t.close();
  });

  it("shares its folder with another process's store: a write that reads first is not refused when the other wrote in between", () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-store-"));
    const a = new Store(dir);
    const b = new Store(dir);
    a.createSweep("sw", "compare", {}, [{ key: "k1", kind: "probe" }], "local");
    const other: StoredProbe = {
      id: "q",
      probe: "tamper",
      env: "TamperGrid-v0",
      status: "running",
      reason: null,
      createdAt: 2,
      request: {},
      results: [],
    };
    // the other process writes between this one's read (is the job stored?) and its write
    const read = a.doneKeys.bind(a);
    let otherRefused = false;
    a.doneKeys = (keys) => {
      const done = read(keys);
      b.db.pragma("busy_timeout = 20");
      try {
        b.saveProbe(other);
      } catch (e) {
        // the transaction holds the write lock from its start: the other waits (here, in one thread, it gives up)
        otherRefused = /locked/.test(String(e));
      }
      return done;
    };
    const outcome = {
      kind: "probe" as const,
      key: "k1",
      probe: "tamper",
      status: "failed" as const,
      reason: "x",
      result: null,
      seconds: 0,
      host: "h",
    };
    expect(a.writeOutcome("sw", outcome, null)).toBe(true);
    expect(otherRefused).toBe(true);
    // and once the lock is free the other's write goes through
    b.saveProbe(other);
    expect(a.getProbe("q")?.status).toBe("running");
    a.close();
    b.close();
  });

  it("refuses a store written by a newer schema", () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-store-"));
    const s = new Store(dir);
    s.db.pragma("user_version = 99");
    s.close();
    expect(() => new Store(dir)).toThrow(/schema version 99/);
  });
});
