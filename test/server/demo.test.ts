/**
 * The demo keeper: trains while watched, stops after idleMs without watchers,
 * resumes for the next one, leaves a user's stop alone; and the demo yields
 * its slots to users' runs (a real server, the demo on).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import type { RunListener } from "../../experiments/events.ts";
import { YIELDED_REASON, type RunManager } from "../../experiments/manager.ts";
import { DemoKeeper } from "../../server/demo.ts";
import { startServer } from "../../server/main.ts";

interface FakeRun {
  id: string;
  status: string;
  spec: { label?: string };
}

/** The slice of RunManager the keeper uses, over an in-memory list. */
function fakeManager(runs: FakeRun[]) {
  const listeners: RunListener[] = [];
  const calls: string[] = [];
  const live = new Set(runs.filter((r) => r.status === "running").map((r) => r.id));
  const setStatus = (id: string, status: string) => {
    runs.find((r) => r.id === id)!.status = status;
    for (const l of listeners) l({ type: "status", runId: id, status: status as "stopped" });
  };
  const manager = {
    store: {
      runIdsLabelled: (label: string) => runs.filter((r) => r.spec.label === label).map((r) => r.id),
      getRun: (id: string) => runs.find((r) => r.id === id) ?? null,
    },
    on: (l: RunListener) => listeners.push(l),
    liveState: (id: string) => (live.has(id) ? {} : null),
    canResume: () => true,
    resume: (id: string) => {
      calls.push(`resume ${id}`);
      live.add(id);
      setStatus(id, "running");
    },
    stop: (id: string) => {
      calls.push(`stop ${id}`);
      live.delete(id);
      setStatus(id, "stopped");
    },
  };
  return { manager: manager as unknown as RunManager, calls, userStop: (id: string) => (live.delete(id), setStatus(id, "stopped")) };
}

describe("DemoKeeper", () => {
  it("stops the demo after idleMs without watchers and resumes it for a watcher", () => {
    const runs = [
      { id: "a", status: "running", spec: { label: "demo" } },
      { id: "b", status: "running", spec: { label: "demo" } },
      { id: "c", status: "running", spec: {} },
    ];
    const { manager, calls } = fakeManager(runs);
    let watchers = 1;
    const keeper = new DemoKeeper(manager, (id) => (id === "a" ? watchers : 0), { idleMs: 1000, pollMs: 60_000 });
    const t0 = Date.now();
    keeper.tick(t0);
    expect(calls).toEqual([]);
    watchers = 0;
    keeper.tick(t0 + 500);
    expect(calls).toEqual([]);
    keeper.tick(t0 + 1200);
    // only the demo runs, never the user's run c
    expect(calls).toEqual(["stop a", "stop b"]);
    watchers = 1;
    keeper.tick(t0 + 5000);
    expect(calls).toEqual(["stop a", "stop b", "resume a", "resume b"]);
    keeper.close();
  });

  it("does not resume a demo run a user stopped", () => {
    const runs = [{ id: "a", status: "running", spec: { label: "demo" } }];
    const { manager, calls, userStop } = fakeManager(runs);
    const keeper = new DemoKeeper(manager, () => 1, { idleMs: 1000, pollMs: 60_000 });
    userStop("a");
    keeper.tick(Date.now());
    expect(calls).toEqual([]);
    keeper.close();
  });

  it("resumes an interrupted demo (a restart) when someone watches", () => {
    const runs = [{ id: "a", status: "interrupted", spec: { label: "demo" } }];
    const { manager, calls } = fakeManager(runs);
    const keeper = new DemoKeeper(manager, () => 1, { idleMs: 1000, pollMs: 60_000 });
    keeper.tick(Date.now());
    expect(calls).toEqual(["resume a"]);
    keeper.close();
  });
});

describe("the demo yields to users' runs", () => {
  // generous bounds: the suite runs this beside other forks on 2 cores; a wait is a bound, not a speed figure
  const until = async (what: string, ok: () => Promise<boolean>, ms = 60_000) => {
    const t0 = Date.now();
    while (!(await ok())) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it("pauses a demo run for a user's run at once, says why a queued run waits, and resumes the demo when a slot is free", async () => {
    const s = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "rl-demo-yield-")), backend: "cpu" });
    try {
      const runs = () => s.manager.store.listRuns();
      const demo = () => runs().filter((r) => r.spec.label === "demo");
      await until("the demo to train", async () => demo().length === 2 && demo().every((r) => r.status === "running" && r.episodes > 0));
      const body = { env: "BoatRace-v0", agent: "reinforce", seed: 1, config: { numEnvs: 2 } };
      const a = s.manager.create({ ...body, steps: 2_000_000 });
      const b = s.manager.create({ ...body, steps: 3_000 });
      // both slots went to the users' runs at once, though the demo held them: no queued reason, running as soon as loaded
      expect(s.manager.store.getRun(a.id)!.reason).toBeNull();
      expect(s.manager.store.getRun(b.id)!.reason).toBeNull();
      await until("the users' runs to start", async () => [a, b].every((r) => s.manager.store.getRun(r.id)!.episodes > 0));
      await until("the demo to yield", async () => demo().every((r) => r.status === "paused"));
      expect(demo().every((r) => r.reason === YIELDED_REASON)).toBe(true);
      // a third user run waits behind the two users' runs, and says so
      const c = s.manager.create({ ...body, steps: 2_000_000 });
      expect(s.manager.store.getRun(c.id)!.status).toBe("queued");
      expect(s.manager.store.getRun(c.id)!.reason).toMatch(
        /^place 1 of 1 in the queue: waiting for a training slot \(2 of 2 taken by runs [0-9a-f]{8}, [0-9a-f]{8}\)$/,
      );
      // b finishes: c takes its slot; the demo stays paused
      await until("b to finish and c to start", async () => s.manager.store.getRun(c.id)!.status === "running");
      expect(s.manager.store.getRun(b.id)!.status).toBe("completed");
      expect(demo().every((r) => r.status === "paused")).toBe(true);
      // both users' runs end: the demo trains again without anyone asking
      s.manager.stop(a.id);
      s.manager.stop(c.id);
      await until("the demo to resume", async () => demo().every((r) => r.status === "running"));
      // the demo counts against no user limit
      expect(s.manager.activeCount()).toBe(0);
    } finally {
      await s.close();
    }
  }, 300_000);
});
