/**
 * Model-based learners' throughput: expit (PUCT search with the simulator or
 * the neural world model) and the planner with the neural world model, in
 * training as the run loop drives them. Per case: env steps per second
 * (act, step, observe and learn together), search simulations per second and
 * network evaluations per second inside the search (from the agent's own
 * search/* metrics), and where the time goes (acting vs learning).
 *
 *   npx tsx bench/modelbased.ts [--steps N] [--only TEXT] [--config JSON]
 *   (--only: cases whose label or env contains TEXT; --config: merged into those cases' agent configs,
 *   e.g. '{"neural":{"gradientSteps":25}}' to time other settings of the neural planner)
 *
 * The aims: expit with the simulator at 50 simulations per step trains at
 * 1,000 env steps per second or more on one core; the neural planner on
 * TomatoWatering-v0 and CoastRunners-v0 at 5 times the figures it had before
 * batched predictions (413 and 228 env steps per CPU second, wasm): 2,065 and
 * 1,140.
 */

/** Env steps per CPU second the aims above name, per case ("label env"). */
const AIMS: Record<string, number> = {
  "expit simulator x50 GoalShift-v0": 1000,
  "expit simulator x50 TamperGrid-v0": 1000,
  "planner neural TomatoWatering-v0": 5 * 413,
  "planner neural CoastRunners-v0": 5 * 228,
};
import { pathToFileURL } from "node:url";
import type { Agent } from "../agents/core.ts";
import { initBackend } from "../agents/shared/backend.ts";
import "../agents/index.ts";
import { createAgent } from "../agents/registry.ts";
import "../envs/index.ts"; // registers the gridworlds
import { Stepper } from "../experiments/loop.ts";
import { agentEnvInfo, resolveRunSpec } from "../experiments/run.ts";

export interface ModelBasedBenchCase {
  label: string;
  env: string;
  /** The env's variant (the train one where it has several). */
  variant?: string;
  agent: string;
  config: Record<string, unknown>;
}

export interface ModelBasedBenchRow extends ModelBasedBenchCase {
  steps: number;
  envStepsPerSec: number;
  /** Env steps per second of this process's CPU time (user + system): the figure a quiet core would show. */
  envStepsPerCpuSec: number;
  /** Search simulations per second of search time (expit only). */
  simulationsPerSec: number | null;
  /** Network evaluations per second of search time (expit only; answered from the cache or computed). */
  evaluationsPerSec: number | null;
  /** The fraction of those answered from the outputs kept by observation (expit only, evalcache.ts). */
  cacheHitRate: number | null;
  /** The world model's gradient steps per update, mean over the timed updates (the neural planner only). */
  gradientSteps: number | null;
  actMs: number;
  learnMs: number;
}

const CASES: ModelBasedBenchCase[] = [
  { label: "expit simulator x50", env: "GoalShift-v0", variant: "train", agent: "expit", config: { simulations: 50 } },
  { label: "expit simulator x50", env: "TamperGrid-v0", variant: "train", agent: "expit", config: { simulations: 50 } },
  { label: "expit neural x50", env: "GoalShift-v0", variant: "train", agent: "expit", config: { model: "neural", simulations: 50 } },
  { label: "planner neural", env: "GoalShift-v0", variant: "train", agent: "planner", config: { model: "neural" } },
  { label: "planner neural", env: "TomatoWatering-v0", agent: "planner", config: { model: "neural" } },
  { label: "planner neural", env: "CoastRunners-v0", agent: "planner", config: { model: "neural" } },
];

/** Trains through the shared loop (experiments/loop.ts), timing acting (with the env step) and learning. */
function run(
  agent: Agent,
  env: string,
  variant: string | undefined,
  steps: number,
): { actMs: number; learnMs: number; metrics: Record<string, number>[] } {
  const stepper = new Stepper(agent, { env, config: variant ? { variant } : {}, reward: "keep", numEnvs: 1, seed: 0 }, { timed: true });
  const metrics: Record<string, number>[] = [];
  try {
    while (stepper.envSteps < steps) {
      stepper.step({ explore: true, learn: true });
      if (stepper.update) metrics.push(stepper.update.metrics);
    }
  } finally {
    stepper.close();
  }
  const t = stepper.timings!;
  return { actMs: t.actMs + t.envMs, learnMs: t.observeMs + t.learnMs, metrics };
}

export async function benchModelBased(opts: { steps?: number; cases?: ModelBasedBenchCase[] } = {}): Promise<ModelBasedBenchRow[]> {
  const steps = opts.steps ?? 3000;
  const rows: ModelBasedBenchRow[] = [];
  for (const c of opts.cases ?? CASES) {
    const spec = resolveRunSpec({ env: c.env, variant: c.variant, agent: c.agent, config: c.config, steps });
    const agent = createAgent(c.agent, agentEnvInfo(spec), spec.config, 0);
    // warm-up (JIT, and on to the first update: until then the neural planner acts at random, at no cost), then the timed part
    let learned = run(agent, c.env, c.variant, 600).metrics.length > 0;
    for (let i = 0; !learned && i < 100; i++) learned = run(agent, c.env, c.variant, 200).metrics.length > 0;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const r = run(agent, c.env, c.variant, steps);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    agent.dispose();
    const mean = (k: string) => {
      const xs = r.metrics.map((m) => m[k]).filter((x): x is number => Number.isFinite(x));
      return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
    };
    rows.push({
      ...c,
      steps,
      envStepsPerSec: steps / seconds,
      envStepsPerCpuSec: steps / ((cpu.user + cpu.system) / 1e6),
      simulationsPerSec: mean("search/simulations_per_second"),
      evaluationsPerSec: mean("search/evaluations_per_second"),
      cacheHitRate: mean("search/cache_hit_rate"),
      gradientSteps: mean("model/gradient_steps"),
      actMs: r.actMs,
      learnMs: r.learnMs,
    });
  }
  return rows;
}

export function formatModelBased(rows: ModelBasedBenchRow[]): string {
  const fmt = (x: number | null) => (x === null ? "-" : Math.round(x).toLocaleString("en-US"));
  return rows
    .map((r) => {
      const total = r.actMs + r.learnMs;
      const target = AIMS[`${r.label} ${r.env}`];
      const steps = r.gradientSteps === null ? "" : `  model gradient steps per update ${r.gradientSteps.toFixed(1)}`;
      const hits = r.cacheHitRate === null ? "" : ` (${(100 * r.cacheHitRate).toFixed(0)}% kept)`;
      const aim = target ? `  (aim ${fmt(target)} env steps per CPU second: ratio ${(r.envStepsPerCpuSec / target).toFixed(2)})` : "";
      return `${r.label.padEnd(20)} ${r.env.padEnd(14)} env steps/s ${fmt(r.envStepsPerSec).padStart(6)} (per CPU second ${fmt(r.envStepsPerCpuSec).padStart(6)})  simulations/s ${fmt(r.simulationsPerSec).padStart(7)}  net evals/s ${fmt(r.evaluationsPerSec).padStart(7)}${hits}  time: acting ${((100 * r.actMs) / total).toFixed(0)}%, learning ${((100 * r.learnMs) / total).toFixed(0)}%${steps}${aim}`;
    })
    .join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const only = arg("only");
  let extra: Record<string, unknown> = {};
  try {
    extra = JSON.parse(arg("config") ?? "{}") as Record<string, unknown>;
  } catch {
    console.error(`--config: not JSON: ${arg("config")} (give an object, e.g. '{"neural":{"gradientSteps":25}}')`);
    process.exit(2);
  }
  const cases = (only ? CASES.filter((c) => `${c.label} ${c.env}`.includes(only)) : CASES).map((c) => ({
    ...c,
    config: { ...c.config, ...extra },
  }));
  const backend = await initBackend();
  console.log(`backend ${backend}`);
  console.log(formatModelBased(await benchModelBased({ steps: arg("steps") ? Number(arg("steps")) : undefined, cases })));
}
