/**
 * Server benchmarks: what watching costs (training steps/s of one run with
 * 0, 1 and 5 socket clients subscribed) and server memory with 4 runs
 * streaming (sampled every few seconds; flat means no growth from buffering).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";
import "../envs/index.ts";
import "../agents/index.ts";
import { startServer } from "../server/main.ts";
import type { RunSummary } from "../server/protocol.ts";

async function post(url: string, body: unknown): Promise<RunSummary> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return (await res.json()) as RunSummary;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Steps/s of one PPO run on BoatRace-v0 measured over `seconds` while `clients` watch it. */
async function watchedThroughput(clients: number, seconds: number, backend: "wasm" | "cpu"): Promise<number> {
  const server = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "rl-bench-")), demo: false, backend });
  try {
    const run = await post(`${server.url}/api/runs`, { env: "BoatRace-v0", agent: "ppo", steps: 50_000_000, seed: 0, recordEveryMs: 200 });
    const sockets = Array.from({ length: clients }, () => {
      const s = io(server.url, { transports: ["websocket"] });
      s.emit("subscribe", { runId: run.id });
      return s;
    });
    await sleep(4000); // warm up: worker start, backend init, first updates
    const stepsAt = async () => ((await (await fetch(`${server.url}/api/runs/${run.id}`)).json()) as RunSummary).envSteps;
    const s0 = await stepsAt();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const s1 = await stepsAt();
    const rate = ((s1 - s0) / (performance.now() - t0)) * 1000;
    for (const s of sockets) s.close();
    return rate;
  } finally {
    await server.close();
  }
}

export async function benchServer(opts: { seconds?: number; memoryMinutes?: number; backend?: "wasm" | "cpu" } = {}): Promise<void> {
  const seconds = opts.seconds ?? 15;
  const backend = opts.backend ?? "wasm";
  console.log(`\n## watching cost: PPO on BoatRace-v0, one run, backend ${backend}, ${seconds} s per measurement (steps counted from the store)`);
  const base = await watchedThroughput(0, seconds, backend);
  console.log(`clients  steps/s   ratio to 0 clients`);
  console.log(`0        ${base.toFixed(0).padStart(7)}   1.00`);
  for (const n of [1, 5]) {
    const r = await watchedThroughput(n, seconds, backend);
    console.log(`${String(n).padEnd(8)} ${r.toFixed(0).padStart(7)}   ${(r / base).toFixed(2)}`);
  }

  const minutes = opts.memoryMinutes ?? 2;
  console.log(`\n## server memory with 4 runs streaming to 2 clients each, ${minutes} min (heap and RSS of the server process)`);
  const server = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "rl-bench-")), demo: false, backend, maxConcurrentRuns: 4 });
  try {
    const sockets = [];
    for (let i = 0; i < 4; i++) {
      const run = await post(`${server.url}/api/runs`, { env: i % 2 ? "GoalShift-v0" : "BoatRace-v0", agent: "ppo", steps: 50_000_000, seed: i, recordEveryMs: 200 });
      for (let c = 0; c < 2; c++) {
        const s = io(server.url, { transports: ["websocket"] });
        s.emit("subscribe", { runId: run.id });
        sockets.push(s);
      }
    }
    console.log(`t (s)   heap MiB   rss MiB`);
    const start = performance.now();
    while (performance.now() - start < minutes * 60_000) {
      await sleep(Math.min(30_000, (minutes * 60_000) / 8));
      global.gc?.();
      const m = process.memoryUsage();
      console.log(`${((performance.now() - start) / 1000).toFixed(0).padEnd(7)} ${(m.heapUsed / 2 ** 20).toFixed(1).padStart(8)}   ${(m.rss / 2 ** 20).toFixed(1).padStart(7)}`);
    }
    for (const s of sockets) s.close();
  } finally {
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const minutes = Number(process.env.BENCH_MEMORY_MINUTES ?? 2);
  await benchServer({ memoryMinutes: minutes });
}
