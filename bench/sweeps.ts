/**
 * Sweep throughput on this machine: jobs per minute with local worker threads
 * (1 and 2) and with BullMQ worker processes (1 and 2) on a loopback Redis,
 * and the coordinator's own cost per job (writing an outcome into the store,
 * and queue bookkeeping measured with jobs that train for a single step).
 *
 *   npx tsx bench/sweeps.ts      (needs redis-server on the PATH)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import "../envs/index.ts";
import "../agents/index.ts";
import { Store } from "../experiments/store.ts";
import { runSweep } from "../experiments/sweeps/index.ts";

const spec = (name: string, steps: number, seeds: number) => ({
  name,
  backend: "cpu",
  grid: { env: ["TamperGrid-v0"], agent: ["reinforce"], seeds, steps: [steps], evalEpisodes: 5 },
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A loopback redis-server for a bench section, and `rewardlab worker` processes on it; `stop` ends every process started. */
export async function benchRedis(): Promise<{
  port: number;
  workers: (n: number, db: number) => Promise<ChildProcess[]>;
  stop: () => void;
}> {
  const port = await freePort();
  const children: ChildProcess[] = [];
  const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  children.push(redis);
  await new Promise((r) => setTimeout(r, 400));
  // resolves once every worker says it is taking jobs (its start-up is not the queue's cost)
  const workers = async (n: number, db: number) => {
    const started = Array.from({ length: n }, () => {
      const c = spawn(process.execPath, ["bin/rewardlab.js", "worker", "--queue", `redis://127.0.0.1:${port}/${db}`], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      children.push(c);
      return c;
    });
    await Promise.all(
      started.map(
        (c) =>
          new Promise<void>((resolve, reject) => {
            let out = "";
            c.stdout!.on("data", (d: Buffer) => {
              out += d.toString();
              if (out.includes("taking jobs")) resolve();
            });
            c.on("exit", (code) => reject(new Error(`rewardlab worker exited with code ${code}`)));
          }),
      ),
    );
    return started;
  };
  const stop = () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  };
  return { port, workers, stop };
}

async function timed(
  label: string,
  input: unknown,
  opts: { workers?: number; queue?: string },
): Promise<{ label: string; jobs: number; seconds: number; perMinute: number; writeMs: number }> {
  const store = new Store(mkdtempSync(join(tmpdir(), "rl-bench-sweep-")));
  let writeMs = 0;
  const original = store.writeOutcome.bind(store);
  store.writeOutcome = (id, o, dir) => {
    const t = performance.now();
    const r = original(id, o, dir);
    writeMs += performance.now() - t;
    return r;
  };
  const t0 = performance.now();
  const s = await runSweep(input, { store, ...opts });
  const seconds = (performance.now() - t0) / 1000;
  store.close();
  return { label, jobs: s.completed, seconds, perMinute: (s.completed / seconds) * 60, writeMs: writeMs / Math.max(1, s.completed) };
}

export async function benchSweeps(opts: { jobs?: number; steps?: number } = {}): Promise<void> {
  const jobs = opts.jobs ?? 16;
  const steps = opts.steps ?? 4096;
  const { port, workers, stop } = await benchRedis();
  try {
    console.log(`\n## sweeps: ${jobs} REINFORCE runs of ${steps} steps on TamperGrid-v0 (cpu backend), 2 cores`);
    const rows = [];
    rows.push(await timed("local, 1 thread", spec("b-l1", steps, jobs), { workers: 1 }));
    rows.push(await timed("local, 2 threads", spec("b-l2", steps, jobs), { workers: 2 }));
    let w = await workers(1, 1);
    rows.push(await timed("queue, 1 worker process", spec("b-q1", steps, jobs), { queue: `redis://127.0.0.1:${port}/1` }));
    for (const c of w) c.kill("SIGTERM");
    w = await workers(2, 2);
    rows.push(await timed("queue, 2 worker processes", spec("b-q2", steps, jobs), { queue: `redis://127.0.0.1:${port}/2` }));
    // coordinator overhead: jobs that do almost nothing, so what is left is spawn, queue and store
    rows.push(
      await timed(
        "queue, 2 workers, 1-step jobs",
        { ...spec("b-q3", 1, jobs * 2), grid: { ...spec("b-q3", 1, jobs * 2).grid, evalEpisodes: 0 } },
        { queue: `redis://127.0.0.1:${port}/2` },
      ),
    );
    for (const c of w) c.kill("SIGTERM");
    const base = rows[0]!.perMinute;
    console.log(`mode                            jobs   seconds   jobs/min   ratio to local x1   store write ms/job`);
    for (const r of rows) {
      console.log(
        `${r.label.padEnd(31)} ${String(r.jobs).padStart(4)}  ${r.seconds.toFixed(1).padStart(8)}  ${r.perMinute.toFixed(1).padStart(9)}   ${(r.perMinute / base).toFixed(2).padStart(17)}   ${r.writeMs.toFixed(2).padStart(18)}`,
      );
    }
    const tiny = rows.at(-1)!;
    console.log(
      `coordinator + worker overhead per job (1-step jobs, 2 workers): ${((tiny.seconds / tiny.jobs) * 2 * 1000).toFixed(0)} ms of worker time, of which the coordinator's store write is ${tiny.writeMs.toFixed(2)} ms`,
    );
  } finally {
    stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchSweeps();
  process.exit(0);
}
