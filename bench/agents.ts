/**
 * Model-free training throughput: end-to-end env steps per second of PPO and
 * REINFORCE (default configs) on BoatRace-v0, for each available backend,
 * with the time split between acting, the env, observe() and learn().
 *
 *   npx tsx bench/agents.ts [--steps 30000] [--backend wasm]
 */
import { pathToFileURL } from "node:url";
import "../envs/index.ts";
import { makeVector } from "../envs/vector.ts";
import { availableBackends, initBackend, type BackendName } from "../agents/backend.ts";
import { createAgent } from "../agents/registry.ts";
import "../agents/ppo.ts";
import "../agents/reinforce.ts";
import { resolveAgentConfig } from "../agents/registry.ts";
import { envInfo, runLoop } from "../test/agents/testing.ts";

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
      const info = envInfo(envId, config.numEnvs);
      const agent = createAgent(name, info, config, 1);
      const vec = makeVector(envId, config.numEnvs);
      vec.reset(1);
      runLoop(agent, vec, opts.warmup ?? 4096);
      const t0 = performance.now();
      const r = runLoop(agent, vec, steps);
      const wall = performance.now() - t0;
      const envSteps = Math.ceil(steps / config.numEnvs) * config.numEnvs;
      const pct = (ms: number) => Math.round((1000 * ms) / wall) / 10;
      rows.push({
        agent: name,
        backend,
        envId,
        envSteps,
        updates: r.updates.length,
        stepsPerSecond: Math.round((envSteps / wall) * 1000),
        split: { act: pct(r.timings.actMs), env: pct(r.timings.envMs), observe: pct(r.timings.observeMs), learn: pct(r.timings.learnMs) },
        msPerUpdate: r.updates.length ? Math.round((r.timings.learnMs / r.updates.length) * 10) / 10 : 0,
      });
      agent.dispose();
      vec.close();
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
  return [head, ...lines].join("\n");
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const backend = arg("backend") as BackendName | undefined;
  const rows = await benchModelFree({
    steps: Number(arg("steps") ?? 30_000),
    ...(backend ? { backends: [backend] } : {}),
    ...(arg("agent") ? { agents: [arg("agent")!] } : {}),
  });
  console.log(formatModelFree(rows));
}
