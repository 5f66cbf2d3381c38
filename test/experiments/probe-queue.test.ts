/**
 * Probes on the Redis queue, against a real redis-server and two `rewardlab
 * worker` processes: `rewardlab probe --queue` with one worker killed by
 * SIGKILL mid-job and the coordinator itself killed and started again stores
 * every (agent, seed) once, trains no finished job again, and prints the same
 * JSON as the local run on the cpu backend. The server's path (runProbeJobs)
 * gives the same per-seed figures, and a stopped probe leaves no job waiting.
 * A queue address where nothing answers is a one-line error.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { PoolStopped } from "../../experiments/pool.ts";
import { aggregateProbe, planProbe } from "../../experiments/probes/index.ts";
import { connectionFrom, QUEUE_NAME } from "../../experiments/sweeps/queue.ts";
import { runProbeJobs } from "../../experiments/sweeps/probes.ts";
import { ROOT, cli } from "./spawn-cli.ts";
import { startRedis, startWorker, stopAll } from "./redis.ts";

const PROBE = ["probe", "tamper", "--agents", "planner,reinforce", "--seeds", "2", "--steps", "300", "--episodes", "3", "--backend", "cpu"];

/** The probe's JSON without wall-clock and CPU times (the only fields that differ between two runs of one job). */
function figures(stdout: string): unknown {
  const strip = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(strip)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).flatMap(([k, x]) => (k === "seconds" || k === "cpuSeconds" ? [] : [[k, strip(x)]])))
        : v;
  return strip(JSON.parse(stdout));
}

function storedJobs(data: string): { agent: string; seed: number; host: string }[] {
  const file = join(data, "rewardlab.sqlite");
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(`SELECT agent, seed, host FROM probe_jobs ORDER BY agent, seed`).all() as {
      agent: string;
      seed: number;
      host: string;
    }[];
  } catch {
    return []; // the store is still being created
  } finally {
    db.close();
  }
}

async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let url = "";
let local: { stdout: string } = { stdout: "" };

beforeAll(async () => {
  url = `redis://127.0.0.1:${await startRedis()}/1`;
});
afterAll(stopAll);

describe("probes on the queue", () => {
  it("survive a worker and the coordinator killed mid-run: every (agent, seed) stored once, the JSON equal to the local run's", async () => {
    const victim = startWorker(url);
    const survivor = startWorker(url);
    const localRun = cli([...PROBE, "--json", "--data", mkdtempSync(join(tmpdir(), "rl-pq-local-"))]);
    const data = mkdtempSync(join(tmpdir(), "rl-pq-queue-"));
    const args = [...PROBE, "--json", "--queue", url, "--data", data];
    const first = spawn(process.execPath, ["bin/rewardlab.js", ...args], { cwd: ROOT, stdio: "ignore" });
    await victim.taken;
    victim.child.kill("SIGKILL");
    await until(() => storedJobs(data).length >= 1, "a first stored job");
    first.kill("SIGKILL");
    const second = await cli(args);
    expect(second.stderr).not.toMatch(/failed/);
    expect(second.code).toBe(0);
    local = await localRun;
    expect(figures(second.stdout)).toEqual(figures(local.stdout));
    const rows = storedJobs(data);
    expect(rows.map((r) => `${r.agent} ${r.seed}`)).toEqual(["planner 0", "planner 1", "reinforce 0", "reinforce 1"]);
    // the killed worker stored nothing; the survivor trained each job once (the killed one again)
    expect(new Set(rows.map((r) => r.host.split(":")[1]))).toEqual(new Set([String(survivor.child.pid)]));
    expect(survivor.log().match(/"job done"/g)).toHaveLength(4);
    survivor.child.kill("SIGTERM");
  }, 120_000);

  it("runs the server's probe jobs on the queue with the same per-seed figures, and removes a stopped probe's waiting jobs", async () => {
    startWorker(url);
    const plan = planProbe({ probe: "tamper", agents: ["planner", "reinforce"], seeds: 2, steps: 300, episodes: 3, backend: "cpu" });
    const results = await runProbeJobs(plan.jobs, { queue: url, salt: "server-probe-1", backend: "cpu" });
    const queued = aggregateProbe(plan, results).results.map((r) => r.perSeed);
    const expected = (figures(local.stdout) as { results: { perSeed: unknown }[] }).results.map((r) => r.perSeed);
    expect(queued).toEqual(expected);

    const stop = new AbortController();
    const big = planProbe({ probe: "tamper", agents: ["reinforce"], seeds: 6, steps: 20_000, episodes: 3, backend: "cpu" });
    const running = runProbeJobs(big.jobs, { queue: url, salt: "server-probe-2", backend: "cpu", signal: stop.signal });
    setTimeout(() => stop.abort(new PoolStopped("stopped by the user")), 1000);
    await expect(running).rejects.toBeInstanceOf(PoolStopped);
    const queue = new Queue(QUEUE_NAME, { connection: connectionFrom(url) });
    const counts = await queue.getJobCounts("waiting", "delayed", "prioritized");
    await queue.close();
    expect(counts).toMatchObject({ waiting: 0, delayed: 0, prioritized: 0 });
  }, 120_000);

  it("refuses a queue nothing answers at with one line and exit code 2, instead of waiting for ever", async () => {
    const r = await cli([...PROBE, "--queue", "redis://127.0.0.1:1", "--data", mkdtempSync(join(tmpdir(), "rl-pq-none-"))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: cannot reach Redis at 127\.0\.0\.1:1 \(ECONNREFUSED\): start redis-server there, or fix --queue\n$/);
  });
});
