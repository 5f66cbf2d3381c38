/** The demo keeper: trains while watched, stops after idleMs without watchers, resumes for the next one, leaves a user's stop alone. */
import { describe, expect, it } from "vitest";
import type { RunListener } from "../../experiments/events.ts";
import type { RunManager } from "../../experiments/manager.ts";
import { DemoKeeper } from "../../server/demo.ts";

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
    store: { listRuns: () => runs, getRun: (id: string) => runs.find((r) => r.id === id) ?? null },
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
