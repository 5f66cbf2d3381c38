/**
 * Model-free training throughput: end-to-end env steps per second of PPO and
 * REINFORCE (default configs) on BoatRace-v0, for each available backend,
 * with the time split between acting, the env, observe() and learn(); for
 * agents that time their update (PPO), learn() split into forward (networks
 * and loss), backward and optimiser, and the update's achieved GFLOP/s beside
 * a large (512^3) matrix multiply's on the same backend in the same run: the
 * distance to the machine's limit as one ratio.
 *
 * The cnn section: PPO with the convolutional policy (config network "cnn":
 * the default sizes, Maze-v0's training config (MAZE_PPO_CONFIG, the one its
 * documented budget was measured with) and the 131k-parameter IMPALA network
 * of the procgen maze papers) beside PPO with the MLP, on Maze-v0 (default
 * mazes: 9 x 9 x 3 observations), on wasm; env steps per second of wall time
 * and per second of this process's CPU time (the figure that survives a
 * shared machine).
 *
 *   npx tsx bench/agents.ts [--steps 30000] [--backend wasm] [--agent ppo]
 *   npx tsx bench/agents.ts --cnn [--steps 8192]
 */
import { pathToFileURL } from "node:url";
import "../envs/index.ts";
import { MAZE_PPO_CONFIG } from "../envs/maze.ts";
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
  /** Env steps per second of this process's CPU time (user + system). */
  cpuStepsPerSecond: number;
  /** The config fields set beside the defaults (the cnn section's networks). */
  label?: string;
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
  /** Config fields set beside the defaults, with a label for the table. */
  configs?: { label: string; config: Record<string, unknown> }[];
}

/** One agent and config on one backend: warm-up, then `steps` timed env steps through the shared loop. */
function benchOne(
  name: string,
  variant: { label: string; config: Record<string, unknown> },
  backend: BackendName,
  envId: string,
  steps: number,
  warmup: number,
): ModelFreeBenchRow {
  const config = resolveAgentConfig<{ numEnvs: number }>(name, { ...(name === "ppo" ? { totalSteps: steps } : {}), ...variant.config });
  const setup = { env: envId, config: {}, reward: "keep" as const, numEnvs: config.numEnvs, seed: 1 };
  const agent = createAgent(name, agentEnvInfo(setup), config, 1);
  const stepper = new Stepper(agent, setup, { timed: true });
  train(stepper, warmup);
  const timing = (agent as { timing?: UpdateTiming }).timing;
  const before = timing ? { ...timing } : null;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const r = train(stepper, steps);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const tm = r.timings!;
  const peak = timing ? largeMatmulGflops() : undefined;
  const envSteps = Math.ceil(steps / config.numEnvs) * config.numEnvs;
  const pct = (ms: number) => Math.round((1000 * ms) / wall) / 10;
  const row: ModelFreeBenchRow = {
    agent: name,
    backend,
    envId,
    envSteps,
    updates: r.updates.length,
    stepsPerSecond: Math.round((envSteps / wall) * 1000),
    cpuStepsPerSecond: Math.round(envSteps / ((cpu.user + cpu.system) / 1e6)),
    ...(variant.label ? { label: variant.label } : {}),
    split: { act: pct(tm.actMs), env: pct(tm.envMs), observe: pct(tm.observeMs), learn: pct(tm.learnMs) },
    msPerUpdate: r.updates.length ? Math.round((tm.learnMs / r.updates.length) * 10) / 10 : 0,
  };
  if (timing && before) {
    const learn = tm.learnMs;
    const share = (ms: number) => Math.round((1000 * ms) / learn) / 10;
    const [f, b, o] = [timing.forwardMs - before.forwardMs, timing.backwardMs - before.backwardMs, timing.optimiserMs - before.optimiserMs];
    row.learnSplit = { forward: share(f), backward: share(b), optimiser: share(o), other: share(learn - f - b - o) };
    row.updateGflops = Math.round(((timing.flops - before.flops) / (learn / 1000) / 1e9) * 100) / 100;
    row.peakGflops = Math.round(peak! * 100) / 100;
  }
  agent.dispose();
  stepper.close();
  return row;
}

export async function benchModelFree(opts: ModelFreeBenchOptions = {}): Promise<ModelFreeBenchRow[]> {
  const envId = opts.envId ?? "BoatRace-v0";
  const steps = opts.steps ?? 30_000;
  const backends = opts.backends ?? (await availableBackends());
  const rows: ModelFreeBenchRow[] = [];
  for (const backend of backends) {
    await initBackend(backend);
    for (const name of opts.agents ?? ["ppo", "reinforce"]) {
      for (const variant of opts.configs ?? [{ label: "", config: {} }])
        rows.push(benchOne(name, variant, backend, envId, steps, opts.warmup ?? 4096));
    }
  }
  return rows;
}

export function formatModelFree(rows: ModelFreeBenchRow[]): string {
  const head = "agent      backend     env steps/s  steps/cpu-s   act%   env%   obs%  learn%   ms/update  updates";
  const lines = rows.map(
    (r) =>
      `${r.agent.padEnd(10)} ${r.backend.padEnd(10)} ${String(r.stepsPerSecond).padStart(12)} ${String(r.cpuStepsPerSecond).padStart(12)} ${String(r.split.act).padStart(6)} ${String(r.split.env).padStart(6)} ` +
      `${String(r.split.observe).padStart(6)} ${String(r.split.learn).padStart(7)} ${String(r.msPerUpdate).padStart(11)} ${String(r.updates).padStart(8)}${r.label ? `  ${r.label}` : ""}`,
  );
  const splits = rows
    .filter((r) => r.learnSplit)
    .map(
      (r) =>
        `${r.agent} ${r.backend}${r.label ? ` ${r.label}` : ""} learn(): forward ${r.learnSplit!.forward}%, backward ${r.learnSplit!.backward}%, optimiser ${r.learnSplit!.optimiser}%, ` +
        `other ${r.learnSplit!.other}% (gather, GAE, ledger, weight copies); update ${r.updateGflops} GFLOP/s vs 512^3 multiply ${r.peakGflops} GFLOP/s ` +
        `(ratio ${(r.updateGflops! / r.peakGflops!).toFixed(2)})`,
    );
  return [head, ...lines, ...splits].join("\n");
}

/** PPO on Maze-v0 (wasm): 16 env copies x 64 steps per rollout with the MLP, the default CNN and the 131k-parameter IMPALA CNN; and Maze-v0's training config. */
export async function benchCnn(
  opts: { steps?: number; backend?: BackendName } = {},
): Promise<{ envId: string; rows: ModelFreeBenchRow[] }> {
  const envId = "Maze-v0";
  const rollout = { numEnvs: 16, numSteps: 64 };
  const rows = await benchModelFree({
    envId,
    steps: opts.steps ?? 8192,
    warmup: 2048,
    backends: [opts.backend ?? "wasm"],
    agents: ["ppo"],
    configs: [
      { label: "mlp 64x64", config: { ...rollout, network: "mlp" } },
      { label: "cnn default [8,16,16] x1 res, dense 128", config: { ...rollout, network: "cnn" } },
      { label: "Maze-v0 training config: cnn [16,16] x1 res, dense 128, 16 x 128, 8 minibatches, 3 epochs", config: MAZE_PPO_CONFIG },
      {
        label: "cnn [16,32,32] x2 res, dense 256",
        config: { ...rollout, network: "cnn", cnn: { channels: [16, 32, 32], resBlocks: 2, dense: 256 } },
      },
    ],
  });
  return { envId, rows };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const backend = parseBackend(arg("backend"), "--backend");
  if (process.argv.includes("--cnn")) {
    const { envId, rows } = await benchCnn({ steps: Number(arg("steps") ?? 8192), ...(backend ? { backend } : {}) });
    console.log(`PPO on ${envId}\n${formatModelFree(rows)}`);
    process.exit(0);
  }
  const rows = await benchModelFree({
    steps: Number(arg("steps") ?? 30_000),
    ...(backend ? { backends: [backend] } : {}),
    ...(arg("agent") ? { agents: [arg("agent")!] } : {}),
  });
  console.log(formatModelFree(rows));
}
