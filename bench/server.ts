/**
 * Server benchmarks: what watching costs (training steps/s of one run with
 * 0, 1 and 5 socket clients subscribed), and a soak: 4 runs for 10 minutes
 * (BENCH_SOAK_MINUTES to change) with 5 clients each, one reading very
 * slowly, reporting steps/s and server memory from start to end.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket as NetSocket } from "node:net";
import { io, type Socket } from "socket.io-client";
import "../envs/index.ts";
import "../agents/index.ts";
import { startServer } from "../server/main.ts";
import type { RunSummary } from "../server/protocol.ts";
import type { StreamStats } from "../server/sockets.ts";
import { serveChild } from "./serve.ts";

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

export async function benchServer(opts: { seconds?: number; soakMinutes?: number; backend?: "wasm" | "cpu" } = {}): Promise<void> {
  const seconds = opts.seconds ?? 15;
  const backend = opts.backend ?? "wasm";
  console.log(
    `\n## watching cost: PPO on BoatRace-v0, one run, backend ${backend}, ${seconds} s per measurement (steps counted from the store)`,
  );
  const base = await watchedThroughput(0, seconds, backend);
  console.log(`clients  steps/s   ratio to 0 clients`);
  console.log(`0        ${base.toFixed(0).padStart(7)}   1.00`);
  for (const n of [1, 5]) {
    const r = await watchedThroughput(n, seconds, backend);
    console.log(`${String(n).padEnd(8)} ${r.toFixed(0).padStart(7)}   ${(r / base).toFixed(2)}`);
  }

  await soak({ minutes: opts.soakMinutes ?? 10 });
}

interface Health {
  activeRuns: number;
  memory: { heapUsedMiB: number; rssMiB: number };
  stream: StreamStats;
}

/**
 * The soak: 4 PPO runs training for `minutes` in a server process, each
 * watched by 5 socket clients, one of which reads very slowly (its TCP socket
 * is paused, and resumed for one chunk every 5 s). Reports training steps/s and the
 * server's memory at the start and the end, and what the slow readers got.
 */
export async function soak(opts: { minutes: number }): Promise<void> {
  const { minutes } = opts;
  console.log(`\n## soak: 4 PPO runs (wasm) for ${minutes} min, 5 socket clients each, one reading very slowly; server in its own process`);
  const { child, url } = await serveChild({ data: mkdtempSync(join(tmpdir(), "rl-soak-")), maxRuns: 4, logLevel: "warn" });
  // memory is read after a full collection (the child runs with --expose-gc), so it shows what is kept, not what awaits collection
  const health = async () => (await (await fetch(`${url}/api/health?gc=1`)).json()) as Health;
  /** Steps and episodes so far, summed per environment (BoatRace episodes have a fixed length; GoalShift's shorten as the policy learns). */
  const totals = async () => {
    const t: Record<string, { steps: number; episodes: number }> = {};
    for (const r of (await (await fetch(`${url}/api/runs`)).json()) as RunSummary[]) {
      const e = (t[r.spec.env] ??= { steps: 0, episodes: 0 });
      e.steps += r.envSteps;
      e.episodes += r.episodes;
    }
    return t;
  };
  const sockets: Socket[] = [];
  const slowReaders: Socket[] = [];
  const received = { fast: 0, slow: 0 };
  let slowReconnects = 0;
  try {
    for (let i = 0; i < 4; i++) {
      const run = await post(`${url}/api/runs`, {
        env: i % 2 ? "GoalShift-v0" : "BoatRace-v0",
        agent: "ppo",
        steps: 50_000_000,
        seed: i,
        recordEveryMs: 200,
      });
      for (let c = 0; c < 5; c++) {
        const slow = c === 4;
        const s = io(url, { transports: ["websocket"], reconnectionDelay: 500 });
        let connects = 0;
        s.on("connect", () => {
          if (slow && connects++ > 0) slowReconnects++;
          s.emit("subscribe", { runId: run.id });
        });
        s.on("frame", () => (slow ? received.slow++ : received.fast++));
        s.on("episode", () => (slow ? received.slow++ : received.fast++));
        s.on("update", () => (slow ? received.slow++ : received.fast++));
        sockets.push(s);
        if (slow) slowReaders.push(s);
      }
    }
    const tcpOf = (s: Socket) =>
      (s.io.engine as unknown as { transport?: { ws?: { _socket?: NetSocket } } } | undefined)?.transport?.ws?._socket;
    // a slow reader takes one chunk off its TCP socket every 5 s (a chunk is at most 64 KiB)
    const reader = setInterval(() => {
      for (const s of slowReaders) {
        const tcp = tcpOf(s);
        if (!tcp) continue;
        tcp.once("data", () => tcp.pause());
        tcp.resume();
      }
    }, 5000);
    await sleep(1000);
    for (const s of slowReaders) tcpOf(s)?.pause();

    await sleep(10_000); // warm up: workers start, backends initialise
    const samples = Math.max(2, Math.round(minutes * 2));
    const interval = (minutes * 60_000) / samples;
    console.log(
      `t (s)   steps/s (BoatRace + GoalShift)   episodes/s (BoatRace + GoalShift)   heap MiB   rss MiB   frames dropped   slow cut   max backlog   msgs per fast/slow client`,
    );
    let c0 = await totals();
    let t0 = performance.now();
    const start = performance.now();
    const rows: { rate: number; heap: number; rss: number; perEnv: string }[] = [];
    const envs = ["BoatRace-v0", "GoalShift-v0"];
    for (let k = 0; k < samples; k++) {
      await sleep(interval);
      const [c1, h] = [await totals(), await health()];
      const now = performance.now();
      const per = (key: "steps" | "episodes") => envs.map((e) => ((c1[e]![key] - c0[e]![key]) / (now - t0)) * 1000);
      const steps = per("steps");
      const episodes = per("episodes");
      const rate = steps[0]! + steps[1]!;
      c0 = c1;
      t0 = now;
      const perEnv = `${steps.map((x) => x.toFixed(0)).join(" + ")}`;
      rows.push({ rate, heap: h.memory.heapUsedMiB, rss: h.memory.rssMiB, perEnv });
      console.log(
        `${((now - start) / 1000).toFixed(0).padEnd(7)} ${`${rate.toFixed(0)} (${perEnv})`.padEnd(31)} ${episodes
          .map((x) => x.toFixed(0))
          .join(" + ")
          .padEnd(
            35,
          )} ${h.memory.heapUsedMiB.toFixed(1).padStart(8)}   ${h.memory.rssMiB.toFixed(1).padStart(7)}   ${String(h.stream.framesDropped).padStart(14)}   ${String(h.stream.stalledCut).padStart(8)}   ${String(h.stream.maxBacklog).padStart(11)}   ${(received.fast / 16).toFixed(0)}/${(received.slow / 4).toFixed(0)}`,
      );
    }
    clearInterval(reader);
    const first = rows[0]!;
    const last = rows.at(-1)!;
    console.log(
      `start -> end: steps/s ${first.rate.toFixed(0)} (${first.perEnv}) -> ${last.rate.toFixed(0)} (${last.perEnv}) (ratio ${(last.rate / first.rate).toFixed(2)}), heap ${first.heap} -> ${last.heap} MiB, rss ${first.rss} -> ${last.rss} MiB; slow readers reconnected ${slowReconnects} times`,
    );
  } finally {
    for (const s of sockets) s.close();
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchServer({ soakMinutes: Number(process.env.BENCH_SOAK_MINUTES ?? 10) });
}
