/**
 * Sweeps against a real Redis server (started here on a free loopback port):
 * the same 12 runs give identical results on local threads and on two
 * BullMQ worker processes; a worker killed with SIGKILL mid-job still leaves
 * every run complete exactly once; a bad spec names its field.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { Store } from "../../experiments/store.ts";
import { runSweep } from "../../experiments/sweeps/index.ts";
import { expandSweep } from "../../experiments/sweeps/spec.ts";

const SPEC = {
  name: "twelve",
  backend: "cpu",
  grid: { env: ["TamperGrid-v0"], agent: ["ppo", "reinforce"], seeds: 6, steps: [512], evalEpisodes: 5, config: [{ numEnvs: 4 }] },
};

const children: ChildProcess[] = [];
let redisPort = 0;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function worker(url: string): { child: ChildProcess; taken: Promise<void> } {
  const child = spawn(process.execPath, ["bin/rewardlab.js", "worker", "--queue", url, "--lock-ms", "3000"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, REWARDLAB_LOG_LEVEL: "info" },
  });
  children.push(child);
  const taken = new Promise<void>((resolve) => {
    let log = "";
    child.stderr!.on("data", (d: Buffer) => {
      log += d.toString();
      if (log.includes("job taken")) resolve();
    });
  });
  return { child, taken };
}

function episodesOf(store: Store): string {
  const rows = store.db.prepare(`SELECT run_id, idx, return, performance, length, events FROM episodes ORDER BY run_id, idx`).all();
  const evals = store.db.prepare(`SELECT id, status, evaluation FROM runs ORDER BY id`).all();
  return JSON.stringify({ rows, evals });
}

beforeAll(async () => {
  redisPort = await freePort();
  const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  children.push(redis);
  await new Promise((r) => setTimeout(r, 500));
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

describe("sweep specs", () => {
  it("expand into stable keys and reject bad fields by name", () => {
    const a = expandSweep(SPEC);
    const b = expandSweep(structuredClone(SPEC));
    expect(a.jobs).toHaveLength(12);
    expect(a.jobs.map((j) => j.key)).toEqual(b.jobs.map((j) => j.key));
    expect(new Set(a.jobs.map((j) => j.key)).size).toBe(12);
    expect(() => expandSweep({ ...SPEC, grid: { ...SPEC.grid, steps: ["many"] } })).toThrow(/\/grid\/steps\/0 must be integer/);
    expect(() => expandSweep({ ...SPEC, grid: { ...SPEC.grid, agent: ["ppoo"] } })).toThrow(/ppo/);
    expect(() => expandSweep({ name: "x" })).toThrow(/grid|runs|probes/);
    expect(() => expandSweep({ ...SPEC, colour: "red" })).toThrow(/colour/);
  });

  it("carry probe agent configs into the jobs and their keys, and name a bad one", () => {
    const probe = { probe: "tamper", agents: ["planner"], seeds: 2, steps: 100 };
    const plain = expandSweep({ name: "p", probes: [probe] });
    const learned = expandSweep({ name: "p", probes: [{ ...probe, configs: { planner: { model: "learned" } } }] });
    expect(learned.jobs.map((j) => (j.kind === "probe" ? j.job.config : null))).toEqual([{ model: "learned" }, { model: "learned" }]);
    expect(learned.jobs.map((j) => j.key)).not.toEqual(plain.jobs.map((j) => j.key));
    expect(() => expandSweep({ name: "p", probes: [{ ...probe, configs: { planner: { model: "psychic" } } }] })).toThrow(
      /\/probes\/0.*model/,
    );
  });
});

describe("sweeps on Redis", () => {
  let local = "";

  it("gives the same results locally and on two worker processes, and skips what is stored", async () => {
    const storeA = new Store(mkdtempSync(join(tmpdir(), "rl-sweep-a-")));
    const a = await runSweep(SPEC, { store: storeA, workers: 2 });
    expect(a).toMatchObject({ total: 12, completed: 12, failed: 0, skipped: 0 });
    local = episodesOf(storeA);
    const again = await runSweep(SPEC, { store: storeA, workers: 2 });
    expect(again).toMatchObject({ skipped: 12, completed: 12 });
    storeA.close();

    const url = `redis://127.0.0.1:${redisPort}/1`;
    const w = [worker(url), worker(url)];
    const storeB = new Store(mkdtempSync(join(tmpdir(), "rl-sweep-b-")));
    const b = await runSweep(SPEC, { store: storeB, queue: url });
    expect(b).toMatchObject({ total: 12, completed: 12, failed: 0, mode: "queue" });
    expect(episodesOf(storeB)).toBe(local);
    const hosts = storeB.db.prepare(`SELECT DISTINCT host FROM runs`).all() as { host: string }[];
    expect(hosts.length).toBe(2); // both workers took jobs
    storeB.close();
    for (const x of w) x.child.kill("SIGTERM");
  }, 240_000);

  it("completes every run exactly once when a worker is killed mid-job", async () => {
    const url = `redis://127.0.0.1:${redisPort}/2`;
    const victim = worker(url);
    const survivor = worker(url);
    const storeC = new Store(mkdtempSync(join(tmpdir(), "rl-sweep-c-")));
    const writes: string[] = [];
    const original = storeC.writeOutcome.bind(storeC);
    storeC.writeOutcome = (sweepId, o, dir) => {
      const wrote = original(sweepId, o, dir);
      if (wrote) writes.push(o.key);
      return wrote;
    };
    const sweep = runSweep(SPEC, { store: storeC, queue: url });
    await victim.taken;
    victim.child.kill("SIGKILL");
    const c = await sweep;
    expect(c).toMatchObject({ total: 12, completed: 12, failed: 0 });
    expect(writes).toHaveLength(12);
    expect(new Set(writes).size).toBe(12);
    expect(episodesOf(storeC)).toBe(local);
    storeC.close();
    survivor.child.kill("SIGTERM");
  }, 240_000);
});
