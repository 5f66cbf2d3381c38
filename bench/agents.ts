/**
 * Model-free training throughput: end-to-end env steps per second of PPO and
 * REINFORCE (default configs) on BoatRace-v0, for each available backend,
 * with the time split between acting, the env, observe() and learn(); for
 * agents that time their update (PPO), learn() split into forward (networks
 * and loss), backward and optimiser, and the update's achieved GFLOP/s beside
 * a large (512^3) matrix multiply's on the same backend in the same run: the
 * distance to the machine's limit as one ratio.
 *
 *   npx tsx bench/agents.ts [--steps 30000] [--backend wasm] [--agent ppo]
 */
import { pathToFileURL } from "node:url";
import "../envs/index.ts";
import { availableBackends, createMatmul, initBackend, parseBackend, type BackendName } from "../agents/shared/backend.ts";
import { createAgent } from "../agents/registry.ts";
import "../agents/model-free/ppo.ts";
import "../agents/model-free/reinforce.ts";
import { resolveAgentConfig } from "../agents/registry.ts";
import { Stepper, agentEnvInfo, train } from "../experiments/loop.ts";

export interface ModelFreeBenchRow {
  agent: string;
  backend: BackendName;
  envId: string;
  envSteps: number;
  updates: number;
  stepsPerSecond: number;
  /** Share of wall time, in percent. */
  split: { act: number; env: number; observe: number; learn: number };
  /** Mean milliseconds per update. */
  msPerUpdate: number;
  /** Share of learn() time by phase, in percent (agents that time their update). */
  learnSplit?: { forward: number; backward: number; optimiser: number; other: number };
  /** FLOPs of the update's multiplies per second of learn() time. */
  updateGflops?: number;
  /** A 512 x 512 x 512 multiply's GFLOP/s on the same backend, same run. */
  peakGflops?: number;
}

interface UpdateTiming {
  forwardMs: number;
  backwardMs: number;
  optimiserMs: number;
  flops: number;
}

/** GFLOP/s of the backend's raw multiply on large square matrices (the same primitive the update uses). */
export function largeMatmulGflops(n = 512, reps = 8): number {
  const mm = createMatmul();
  const [a, b, c] = [mm.alloc(n * n), mm.alloc(n * n), mm.alloc(n * n)];
  a.view().forEach((_, i, v) => (v[i] = Math.sin(i)));
  b.view().forEach((_, i, v) => (v[i] = Math.cos(i)));
  b.touch();
  mm.matmul(a, b, c, n, n, n);
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) mm.matmul(a, b, c, n, n, n);
  const s = (performance.now() - t0) / 1000;
  for (const x of [a, b, c]) mm.free(x);
  return (2 * n * n * n * reps) / s / 1e9;
}

export interface ModelFreeBenchOptions {
  steps?: number;
  envId?: string;
  backends?: BackendName[];
  agents?: string[];
  /** Warm-up steps (JIT, wasm compile) excluded from the figures. */
  warmup?: number;
}

export async function benchModelFree(opts: ModelFreeBenchOptions = {}): Promise<ModelFreeBenchRow[]> {
  const envId = opts.envId ?? "BoatRace-v0";
  const steps = opts.steps ?? 30_000;
  const backends = opts.backends ?? (await availableBackends());
  const rows: ModelFreeBenchRow[] = [];
  for (const backend of backends) {
    await initBackend(backend);
    for (const name of opts.agents ?? ["ppo", "reinforce"]) {
      const config = resolveAgentConfig<{ numEnvs: number }>(name, name === "ppo" ? { totalSteps: steps } : {});
      const setup = { env: envId, config: {}, reward: "keep" as const, numEnvs: config.numEnvs, seed: 1 };
      const agent = createAgent(name, agentEnvInfo(setup), config, 1);
      const stepper = new Stepper(agent, setup, { timed: true });
      train(stepper, opts.warmup ?? 4096);
      const timing = (agent as { timing?: UpdateTiming }).timing;
      const before = timing ? { ...timing } : null;
      const t0 = performance.now();
      const r = train(stepper, steps);
      const wall = performance.now() - t0;
      const tm = r.timings!;
      const peak = timing ? largeMatmulGflops() : undefined;
      const envSteps = Math.ceil(steps / config.numEnvs) * config.numEnvs;
      const pct = (ms: number) => Math.round((1000 * ms) / wall) / 10;
      rows.push({
        agent: name,
        backend,
        envId,
        envSteps,
        updates: r.updates.length,
        stepsPerSecond: Math.round((envSteps / wall) * 1000),
        split: { act: pct(tm.actMs), env: pct(tm.envMs), observe: pct(tm.observeMs), learn: pct(tm.learnMs) },
        msPerUpdate: r.updates.length ? Math.round((tm.learnMs / r.updates.length) * 10) / 10 : 0,
      });
      if (timing && before) {
        const learn = tm.learnMs;
        const share = (ms: number) => Math.round((1000 * ms) / learn) / 10;
        const [f, b, o] = [
          timing.forwardMs - before.forwardMs,
          timing.backwardMs - before.backwardMs,
          timing.optimiserMs - before.optimiserMs,
        ];
        const row = rows.at(-1)!;
        row.learnSplit = { forward: share(f), backward: share(b), optimiser: share(o), other: share(learn - f - b - o) };
        row.updateGflops = Math.round(((timing.flops - before.flops) / (learn / 1000) / 1e9) * 100) / 100;
        row.peakGflops = Math.round(peak! * 100) / 100;
      }
      agent.dispose();
      stepper.close();
    }
  }
  return rows;
}

export function formatModelFree(rows: ModelFreeBenchRow[]): string {
  const head = "agent      backend     env steps/s   act%   env%   obs%  learn%   ms/update  updates";
  const lines = rows.map(
    (r) =>
      `${r.agent.padEnd(10)} ${r.backend.padEnd(10)} ${String(r.stepsPerSecond).padStart(12)} ${String(r.split.act).padStart(6)} ${String(r.split.env).padStart(6)} ` +
      `${String(r.split.observe).padStart(6)} ${String(r.split.learn).padStart(7)} ${String(r.msPerUpdate).padStart(11)} ${String(r.updates).padStart(8)}`,
  );
  const splits = rows
    .filter((r) => r.learnSplit)
    .map(
      (r) =>
        `${r.agent} ${r.backend} learn(): forward ${r.learnSplit!.forward}%, backward ${r.learnSplit!.backward}%, optimiser ${r.learnSplit!.optimiser}%, ` +
        `other ${r.learnSplit!.other}% (gather, GAE, ledger, weight copies); update ${r.updateGflops} GFLOP/s vs 512^3 multiply ${r.peakGflops} GFLOP/s ` +
        `(ratio ${(r.updateGflops! / r.peakGflops!).toFixed(2)})`,
    );
  return [head, ...lines, ...splits].join("\n");
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const backend = parseBackend(arg("backend"), "--backend");
  const rows = await benchModelFree({
    steps: Number(arg("steps") ?? 30_000),
    ...(backend ? { backends: [backend] } : {}),
    ...(arg("agent") ? { agents: [arg("agent")!] } : {}),
  });
  console.log(formatModelFree(rows));
}
