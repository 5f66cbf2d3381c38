/**
 * What a run's evaluation and report say about the conditions in force:
 * after an intervention the evaluation states the variant, reward wrapper and
 * learning flag the run ended with, and the report marks the intervention on
 * the learning curve.
 */
import { beforeAll, describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { initBackend } from "../../agents/shared/backend.ts";
import { make } from "../../envs/registry.ts";
import type { EpisodeStats, RunEvent } from "../../experiments/events.ts";
import { runReport } from "../../experiments/report.ts";
import { Run, resolveRunSpec } from "../../experiments/run.ts";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("a run switched to its test variant", () => {
  it("evaluates on the test variant with the wrapper and learning flag in force, and its report marks the switch", async () => {
    const spec = resolveRunSpec({ env: "TamperGrid-v0", agent: "planner", steps: 400, seed: 3, evalEpisodes: 4, recordEveryMs: 0 });
    const run = new Run("switched", spec);
    const events: RunEvent[] = [];
    run.on((e) => events.push(e));
    // queued before the first step: from then on the test variant, frozen, reward negated
    run.intervene({ variant: "test", learning: false, reward: "negated" });
    expect(await run.execute()).toBe("completed");
    const ev = run.evaluation!;
    expect(ev.variant).toBe("test");
    expect(ev.reward).toBe("negated");
    expect(ev.learning).toBe(false);
    const marks = events.filter((e) => e.type === "intervention");
    expect(marks.length).toBe(1);

    const env = make("TamperGrid-v0", { variant: "train" });
    env.reset({ seed: 3 });
    const html = runReport({
      id: "switched",
      spec,
      status: "completed",
      reason: null,
      envSteps: run.envSteps,
      evaluation: ev,
      episodes: events.filter((e) => e.type === "episode").map((e) => (e as { episode: EpisodeStats }).episode),
      interventions: marks.map(
        (m) => m as { envSteps: number; variant: string; learning: boolean; reward: "keep" | "removed" | "negated" },
      ),
      frame: env.render(),
      ledgerCells: null,
      visitCells: null,
    });
    expect(html).toContain("episodes on variant test, reward negated");
    expect(html).toContain("frozen when training ended");
    expect(html).toContain("1 intervention during training");
    // the marker on the curve: a dashed line and its label
    expect(html).toMatch(/stroke="#7c3aed" stroke-dasharray="3 3"/);
    expect(html).toContain("test, frozen, reward negated");
  });
});
