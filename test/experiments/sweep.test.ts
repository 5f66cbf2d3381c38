/**
 * Sweeps against a real Redis server (started here on a free loopback port):
 * the same 12 runs give identical results on local threads and on two
 * BullMQ worker processes; a worker killed with SIGKILL mid-job still leaves
 * every run complete exactly once; a bad spec names its field.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { Store } from "../../experiments/store.ts";
import { runSweep } from "../../experiments/sweeps/index.ts";
import { expandSweep } from "../../experiments/sweeps/spec.ts";
import { startRedis, startWorker, stopAll } from "./redis.ts";

const SPEC = {
  name: "twelve",
  backend: "cpu",
  grid: { env: ["TamperGrid-v0"], agent: ["ppo", "reinforce"], seeds: 6, steps: [512], evalEpisodes: 5, config: [{ numEnvs: 4 }] },
};

let redisPort = 0;

function episodesOf(store: Store): string {
  const rows = store.db.prepare(`SELECT run_id, idx, return, performance, length, events FROM episodes ORDER BY run_id, idx`).all();
  const evals = store.db.prepare(`SELECT id, status, evaluation FROM runs ORDER BY id`).all();
  return JSON.stringify({ rows, evals });
}

beforeAll(async () => {
  redisPort = await startRedis();
});
afterAll(stopAll);

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
    const w = [startWorker(url), startWorker(url)];
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
    const victim = startWorker(url);
    const survivor = startWorker(url);
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
