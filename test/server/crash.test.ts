/**
 * kill -9 of the server during two training runs: after a restart both runs
 * are listed with their episodes, marked interrupted, and one resumes from its
 * last checkpoint to completion.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { RunSummary } from "../../server/protocol.ts";

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

function serve(dataDir: string, demo = false): Promise<{ child: ChildProcess; url: string }> {
  const args = ["bin/rewardlab.js", "serve", "--port", "0", "--data", dataDir, ...(demo ? [] : ["--no-demo"])];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, REWARDLAB_LOG_LEVEL: "warn" },
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.once("exit", (code) => reject(new Error(`server exited early with ${code}`)));
  });
}

const json = async <T>(res: Response | Promise<Response>) => (await (await res).json()) as T;
const post = (url: string, body?: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("crash recovery", () => {
  it("with the demo on (the defaults), a run created over the API streams frames within 15 s and keeps its episodes after kill -9", async () => {
    const data = mkdtempSync(join(tmpdir(), "rl-crash-demo-"));
    const first = await serve(data, true);
    // the demo takes both training slots on a first start
    for (let i = 0; i < 300; i++) {
      const runs = await json<RunSummary[]>(fetch(`${first.url}/api/runs`));
      if (runs.length === 2 && runs.every((r) => r.status === "running")) break;
      await sleep(100);
    }
    const { io } = await import("socket.io-client");
    const watcher = io(first.url, { transports: ["websocket"], reconnection: false });
    const t0 = Date.now();
    const run = await json<RunSummary>(post(`${first.url}/api/runs`, { env: "BoatRace-v0", agent: "ppo", steps: 1_000_000, seed: 4 }));
    let frameAt = 0;
    watcher.on("frame", (e) => {
      if (e.runId === run.id && !frameAt) frameAt = Date.now();
    });
    watcher.emit("subscribe", { runId: run.id });
    let stored: RunSummary | null = null;
    for (let i = 0; i < 150; i++) {
      stored = await json<RunSummary>(fetch(`${first.url}/api/runs/${run.id}`));
      if (frameAt && stored.episodes >= 5) break;
      await sleep(100);
    }
    expect(frameAt, "a frame within 15 s").toBeGreaterThan(0);
    expect(frameAt - t0).toBeLessThan(15_000);
    expect(stored!.episodes).toBeGreaterThanOrEqual(5);
    watcher.close();
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    const second = await serve(data, true);
    const after = await json<RunSummary>(fetch(`${second.url}/api/runs/${run.id}`));
    expect(after.status).toBe("interrupted");
    expect(after.episodes).toBeGreaterThanOrEqual(5);
    const eps = await json<unknown[]>(fetch(`${second.url}/api/runs/${run.id}/episodes`));
    expect(eps.length).toBe(after.episodes);
    second.child.kill("SIGKILL");
  }, 90_000);

  it("keeps both runs' episodes after kill -9, and resumes one to completion", async () => {
    const data = mkdtempSync(join(tmpdir(), "rl-crash-"));
    const first = await serve(data);
    const body = { env: "BoatRace-v0", agent: "ppo", steps: 12_000, evalEpisodes: 5, checkpointEvery: 2, config: { numSteps: 64 } };
    const a = await json<RunSummary>(post(`${first.url}/api/runs`, { ...body, seed: 1 }));
    const b = await json<RunSummary>(post(`${first.url}/api/runs`, { ...body, seed: 2 }));
    // wait until both have episodes and a checkpoint
    for (let i = 0; i < 900; i++) {
      const runs = await json<RunSummary[]>(fetch(`${first.url}/api/runs`));
      if (runs.every((r) => r.episodes >= 10 && r.updates >= 3)) break;
      await sleep(100);
    }
    const before = await json<RunSummary[]>(fetch(`${first.url}/api/runs`));
    expect(before.every((r) => r.status === "running")).toBe(true);
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));

    const second = await serve(data);
    const after = await json<RunSummary[]>(fetch(`${second.url}/api/runs`));
    expect(after.map((r) => r.id).sort()).toEqual([a.id, b.id].sort());
    for (const r of after) {
      expect(r.status).toBe("interrupted");
      const prior = before.find((x) => x.id === r.id)!;
      // everything flushed before the kill is there, and the episode rows match the run's count
      expect(r.episodes).toBeGreaterThanOrEqual(Math.min(prior.episodes, 10));
      const eps = await json<unknown[]>(fetch(`${second.url}/api/runs/${r.id}/episodes`));
      expect(eps.length).toBe(r.episodes);
    }
    // a watcher gets a fresh snapshot when the resume rewinds the history to the checkpoint
    const { io } = await import("socket.io-client");
    const watcher = io(second.url, { transports: ["websocket"], reconnection: false });
    const snapshots: { run: RunSummary; episodes: { index: number }[] }[] = [];
    watcher.on("snapshot", (e) => snapshots.push(e));
    watcher.emit("subscribe", { runId: a.id });
    for (let i = 0; i < 100 && snapshots.length < 1; i++) await sleep(50);
    const resumed = await post(`${second.url}/api/runs/${a.id}/resume`);
    expect(resumed.status).toBe(200);
    for (let i = 0; i < 100 && snapshots.length < 2; i++) await sleep(50);
    expect(snapshots).toHaveLength(2);
    const rewound = snapshots[1]!;
    expect(rewound.run.episodes).toBeLessThanOrEqual(snapshots[0]!.run.episodes);
    expect(rewound.episodes.at(-1)!.index + 1).toBe(rewound.run.episodes);
    watcher.close();
    let final: RunSummary | null = null;
    for (let i = 0; i < 1200; i++) {
      final = await json<RunSummary>(fetch(`${second.url}/api/runs/${a.id}`));
      if (final.status === "completed" || final.status === "failed") break;
      await sleep(100);
    }
    expect(final!.status, final!.reason ?? "").toBe("completed");
    expect(final!.envSteps).toBeGreaterThanOrEqual(12_000);
    expect(final!.evaluation?.episodes).toBe(5);
    // the history was rewound to the checkpoint and continued: one episode per index, in step order, from the start
    const eps = await json<{ index: number; envSteps: number }[]>(fetch(`${second.url}/api/runs/${a.id}/episodes?limit=100000`));
    expect(eps.length).toBe(final!.episodes);
    expect(eps.map((e) => e.index)).toEqual(eps.map((_, i) => i));
    for (let i = 1; i < eps.length; i++) expect(eps[i]!.envSteps).toBeGreaterThanOrEqual(eps[i - 1]!.envSteps);
    expect(eps[0]!.envSteps).toBeLessThan(before.find((x) => x.id === a.id)!.envSteps);
    second.child.kill("SIGTERM");
    await new Promise((r) => second.child.once("exit", r));
  }, 180_000);

  it("on SIGTERM checkpoints the runs, tells the clients, and leaves them resumable", async () => {
    const data = mkdtempSync(join(tmpdir(), "rl-term-"));
    const first = await serve(data);
    const run = await json<RunSummary>(
      post(`${first.url}/api/runs`, { env: "GoalShift-v0", agent: "reinforce", steps: 5_000_000, seed: 3 }),
    );
    const { io } = await import("socket.io-client");
    const socket = io(first.url, { transports: ["websocket"], reconnection: false });
    const told = new Promise<{ reason: string }>((r) => socket.once("shutdown", r));
    socket.emit("subscribe", { runId: run.id });
    for (let i = 0; i < 300; i++) {
      const r = await json<RunSummary>(fetch(`${first.url}/api/runs/${run.id}`));
      if (r.episodes >= 5) break;
      await sleep(100);
    }
    first.child.kill("SIGTERM");
    const code = await new Promise((r) => first.child.once("exit", r));
    expect(code).toBe(0);
    expect((await told).reason).toMatch(/SIGTERM/);
    socket.close();
    const second = await serve(data);
    const after = await json<RunSummary>(fetch(`${second.url}/api/runs/${run.id}`));
    expect(after.status).toBe("interrupted");
    expect(after.reason).toMatch(/resume/);
    expect((await post(`${second.url}/api/runs/${run.id}/resume`)).status).toBe(200);
    for (let i = 0; i < 100; i++) {
      const r = await json<RunSummary>(fetch(`${second.url}/api/runs/${run.id}`));
      if (r.status === "running" && r.envSteps > after.envSteps) break;
      await sleep(100);
    }
    const resumed = await json<RunSummary>(fetch(`${second.url}/api/runs/${run.id}`));
    expect(resumed.status).toBe("running");
    expect(resumed.envSteps).toBeGreaterThan(after.envSteps);
    second.child.kill("SIGKILL");
  }, 120_000);
});
