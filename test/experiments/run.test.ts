import { cpSync, mkdtempSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { initBackend } from "../../agents/shared/backend.ts";
import { register, registered } from "../../envs/registry.ts";
import { Run, resolveRunSpec, type ResumePoint } from "../../experiments/run.ts";
import type { RunEvent } from "../../experiments/events.ts";
import { readCheckpointPoint, resumableCheckpoint } from "../../experiments/checkpoint.ts";

beforeAll(async () => {
  await initBackend("cpu");
});

function collect(run: Run): RunEvent[] {
  const events: RunEvent[] = [];
  run.on((e) => events.push(e));
  return events;
}

describe("resolveRunSpec", () => {
  it("fills defaults from the run, env and agent schemas", () => {
    const spec = resolveRunSpec({ env: "TamperGrid-v0", agent: "ppo", steps: 1000 });
    expect(spec.variant).toBe("train");
    expect(spec.config.totalSteps).toBe(1000);
    expect(spec.config.numEnvs).toBe(4);
    expect(spec.evalEpisodes).toBe(100);
  });
  it("names the bad field", () => {
    expect(() => resolveRunSpec({ env: "TamperGrid-v0", agent: "ppo", config: { gamma: "x" } })).toThrow(/gamma/);
    expect(() => resolveRunSpec({ env: "TamperGrid-v0", agent: "pp0" })).toThrow(/ppo/);
    expect(() => resolveRunSpec({ env: "TamperGrid-v0", agent: "ppo", variant: "nope" })).toThrow(/variant/);
  });
});

describe("a run", () => {
  it("emits the event stream in order and is deterministic for a seed on cpu", async () => {
    const go = async () => {
      const spec = resolveRunSpec({
        env: "BoatRace-v0",
        agent: "ppo",
        steps: 1024,
        seed: 5,
        evalEpisodes: 4,
        recordEveryMs: 0,
        config: { numSteps: 64 },
      });
      const run = new Run("t", spec);
      const events = collect(run);
      expect(await run.execute()).toBe("completed");
      return events;
    };
    const a = await go();
    const types = a.map((e) => e.type);
    expect(types[0]).toBe("started");
    expect(types.at(-1)).toBe("status");
    expect(types).toContain("episode");
    expect(types.filter((t) => t === "update")).toHaveLength(4);
    expect(types).toContain("evaluation");
    const b = await go();
    const episodes = (es: RunEvent[]) =>
      es.filter((e) => e.type === "episode").map((e) => (e as Extract<RunEvent, { type: "episode" }>).episode);
    expect(episodes(b)).toEqual(episodes(a));
    const losses = (es: RunEvent[]) =>
      es.filter((e) => e.type === "update").map((e) => (e as Extract<RunEvent, { type: "update" }>).metrics["losses/policy_loss"]);
    expect(losses(b)).toEqual(losses(a));
  });

  it("streams the root visit counts of an agent that searches, per state, with its updates", async () => {
    const spec = resolveRunSpec({
      env: "TamperGrid-v0",
      agent: "expit",
      steps: 400,
      seed: 3,
      evalEpisodes: 1,
      recordEveryMs: 0,
      config: { simulations: 8, updateEvery: 200 },
    });
    const run = new Run("s", spec);
    const events = collect(run);
    expect(await run.execute()).toBe("completed");
    const updates = events.filter((e) => e.type === "update");
    expect(updates).toHaveLength(2);
    for (const u of updates) {
      const search = u.search!;
      // every training step was one search at the state it started from: 8 root visits each
      expect(Object.keys(search).sort()).toEqual(Object.keys(u.visits!).sort());
      for (const [key, row] of Object.entries(search)) {
        expect(row).toHaveLength(4);
        expect(row.reduce((a, b) => a + b, 0)).toBe(8 * u.visits![key]!);
      }
    }
    // agents that do not search send none
    const ppo = new Run(
      "p",
      resolveRunSpec({ env: "TamperGrid-v0", agent: "ppo", steps: 512, seed: 3, evalEpisodes: 1, recordEveryMs: 0 }),
    );
    const ppoEvents = collect(ppo);
    expect(await ppo.execute()).toBe("completed");
    expect(ppoEvents.some((e) => e.type === "update" && e.search)).toBe(false);
  });

  it("pauses, resumes and stops, checkpointing on the way out", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-run-"));
    const spec = resolveRunSpec({ env: "GoalShift-v0", agent: "reinforce", steps: 10_000_000, seed: 1, recordEveryMs: 0 });
    const run = new Run("p", spec, { dir, yieldEvery: 8 });
    const events = collect(run);
    const done = run.execute();
    while (run.envSteps < 500) await new Promise((r) => setTimeout(r, 5));
    run.pause();
    while (run.status !== "paused") await new Promise((r) => setTimeout(r, 5));
    const at = run.envSteps;
    await new Promise((r) => setTimeout(r, 100));
    expect(run.envSteps).toBe(at);
    run.resume();
    while (run.envSteps <= at) await new Promise((r) => setTimeout(r, 5));
    run.stop();
    expect(await done).toBe("stopped");
    const statuses = events.filter((e) => e.type === "status").map((e) => (e as { status: string }).status);
    expect(statuses).toEqual(["running", "paused", "running", "stopped"]);
    expect(existsSync(join(dir, "checkpoint", "agent.json"))).toBe(true);
  });

  it("switches variant and learning on an intervention, and records it", async () => {
    const spec = resolveRunSpec({ env: "TamperGrid-v0", agent: "ppo", steps: 100_000, seed: 2, recordEveryMs: 0, evalEpisodes: 0 });
    const run = new Run("i", spec, { yieldEvery: 4 });
    const events = collect(run);
    const done = run.execute();
    while (run.envSteps < 300) await new Promise((r) => setTimeout(r, 5));
    run.intervene({ variant: "test", learning: false });
    expect(() => run.intervene({ variant: "nope" })).toThrow(/train, test, exposed/);
    while (!events.some((e) => e.type === "episode" && e.episode.variant === "test")) await new Promise((r) => setTimeout(r, 5));
    const updatesBefore = events.filter((e) => e.type === "update").length;
    await new Promise((r) => setTimeout(r, 200));
    run.stop();
    await done;
    expect(events.filter((e) => e.type === "update").length).toBe(updatesBefore);
    const iv = events.find((e) => e.type === "intervention") as Extract<RunEvent, { type: "intervention" }>;
    expect(iv).toMatchObject({ variant: "test", learning: false });
  });

  it("resumes from a checkpoint in the state it was taken: the run's step count, variant, learning and reward", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-resume-"));
    const spec = resolveRunSpec({
      env: "TamperGrid-v0",
      agent: "reinforce",
      steps: 10_000_000,
      seed: 4,
      recordEveryMs: 0,
      evalEpisodes: 0,
    });
    const first = new Run("r", spec, { dir, yieldEvery: 4 });
    const done = first.execute();
    while (first.updates < 1) await new Promise((r) => setTimeout(r, 5));
    first.intervene({ variant: "test", learning: false, reward: "negated" });
    const at = first.envSteps;
    while (first.envSteps < at + 300) await new Promise((r) => setTimeout(r, 5));
    first.stop();
    expect(await done).toBe("stopped");
    const point = readCheckpointPoint(resumableCheckpoint(dir)!);
    // steps with learning off count for the run, not for the agent
    expect(point.state).toEqual({ envSteps: first.envSteps, variant: "test", learning: false, reward: "negated" });
    expect(first.agent!.envSteps).toBeLessThan(first.envSteps);

    // keep a copy: the resumed run checkpoints over the original when it stops
    const copy = join(dir, "copy");
    cpSync(resumableCheckpoint(dir)!, copy, { recursive: true });
    const resumeAndCollect = async (from: ResumePoint, runDir?: string, updates = 0) => {
      const run = new Run("r", spec, { ...(runDir ? { dir: runDir } : {}), yieldEvery: 4, resumeFrom: from });
      const events = collect(run);
      const resumed = run.execute();
      const count = (type: RunEvent["type"]) => events.filter((e) => e.type === type).length;
      while (count("episode") < 3 || count("update") < updates) await new Promise((r) => setTimeout(r, 5));
      run.stop();
      await resumed;
      return {
        run,
        events,
        episodes: events.filter((e) => e.type === "episode").map((e) => (e as Extract<RunEvent, { type: "episode" }>).episode),
      };
    };
    const state = point.state as Required<typeof point.state>;
    const { events, episodes } = await resumeAndCollect({ dir: resumableCheckpoint(dir)!, episodes: first.episodes, ...state }, dir);
    // resuming is deterministic on cpu: the same checkpoint continues the same way, learning included
    const learningOn = { dir: copy, episodes: first.episodes, ...state, learning: true };
    const a = await resumeAndCollect(learningOn, undefined, 2);
    const b = await resumeAndCollect(learningOn, undefined, 2);
    const n = Math.min(a.episodes.length, b.episodes.length);
    expect(b.episodes.slice(0, n)).toEqual(a.episodes.slice(0, n));
    const updates = (r: typeof a) =>
      r.events
        .filter((e) => e.type === "update")
        .slice(0, 2)
        .map((e) => (e as Extract<RunEvent, { type: "update" }>).metrics);
    expect(updates(b)).toEqual(updates(a));
    expect(episodes[0]!.index).toBe(first.episodes);
    expect(episodes[0]!.envSteps).toBeGreaterThan(first.envSteps);
    expect(new Set(episodes.map((e) => e.variant))).toEqual(new Set(["test"]));
    expect(events.some((e) => e.type === "update")).toBe(false);
  });

  it("fails alone with its reason when the environment throws", async () => {
    if (!registered().some((r) => r.id === "Broken-v0")) {
      const base = registered().find((r) => r.id === "BoatRace-v0")!;
      register({
        ...base,
        id: "Broken-v0",
        source: "test",
        create: (config, ctx) => {
          const env = base.create({ ...config, variant: "default" }, ctx);
          let n = 0;
          const step = env.step.bind(env);
          env.step = (a: number) => {
            if (++n > 150) throw new Error("plugin bug: the boat sank");
            return step(a);
          };
          return env;
        },
      });
    }
    const spec = resolveRunSpec({ env: "Broken-v0", agent: "ppo", steps: 5000, recordEveryMs: 0 });
    const run = new Run("f", spec);
    const events = collect(run);
    expect(await run.execute()).toBe("failed");
    const last = events.at(-1) as Extract<RunEvent, { type: "status" }>;
    expect(last.status).toBe("failed");
    expect(last.reason).toMatch(/the boat sank/);
    expect(events.some((e) => e.type === "episode")).toBe(true);
  });
});
