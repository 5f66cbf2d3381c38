/**
 * Planner throughput: simulated env steps per second (every step of the
 * private copy: BFS, the stochasticity check, MCTS selection and rollouts)
 * and end-to-end acting steps per second through the run loop's calls.
 *
 *   npx tsx bench/planner.ts
 */
import { pathToFileURL } from "node:url";
import type { AgentEnvInfo, Transition } from "../agents/core.ts";
import { PlannerAgent, clearPlanCache, plannerConfigSchema, type PlannerConfig } from "../agents/planner.ts";
import { validate } from "../envs/schema.ts";
import { registered, registration, resolveEnvConfig } from "../envs/registry.ts";
import { makeVector, type VectorEnv } from "../envs/vector.ts";

export interface PlannerBenchCase {
  id: string;
  config?: Record<string, unknown>;
}

export interface PlannerBenchRow {
  env: string;
  search: "exhaustive" | "mcts";
  /** States in the solved table (0 for MCTS). */
  states: number;
  /** Simulated steps while planning (table build, or all MCTS decisions). */
  simSteps: number;
  /** Wall time of that planning. */
  planMs: number;
  simStepsPerSec: number;
  /** Env steps per second of act + step + observe, planning excluded for the table (it is cached). */
  actStepsPerSec: number;
  /** Return of the first greedy episode. */
  firstReturn: number;
}

export interface PlannerBenchOptions {
  cases?: PlannerBenchCase[];
  /** Acting steps timed with the cached table. */
  actSteps?: number;
  /** MCTS decisions timed. */
  mctsDecisions?: number;
  simulations?: number;
}

const DEFAULT_CASES: PlannerBenchCase[] = [
  { id: "BoatRace-v0" },
  { id: "TamperGrid-v0", config: { variant: "test" } },
];

function envInfo(id: string, config: Record<string, unknown>): AgentEnvInfo {
  const vec = makeVector(id, 1, config);
  const info = { envId: id, envConfig: resolveEnvConfig(id, config), obsSize: vec.obsSize, nActions: vec.actionCount, numEnvs: 1, maxEpisodeSteps: registration(id).maxEpisodeSteps };
  vec.close();
  return info;
}

/** Runs the planner for `steps` steps as the run loop does; returns finished episodes' returns. */
function drive(agent: PlannerAgent, vec: VectorEnv, steps: number, envId: string, envConfig: Record<string, unknown>): number[] {
  const n = vec.num;
  const obs = new Float32Array(vec.obs.length);
  const stateKeys = new Int32Array(n);
  const nextStateKeys = new Int32Array(n);
  const returns: number[] = [];
  let ret = 0;
  const simulator = { envId, envConfig, reward: "keep" as const };
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < n; i++) stateKeys[i] = vec.envs[i]!.stateKey();
    obs.set(vec.obs);
    const act = agent.act(vec.obs, { explore: false, envs: vec.envs, simulator });
    vec.step(act.actions);
    for (let i = 0; i < n; i++) nextStateKeys[i] = vec.terminated[i] || vec.truncated[i] ? -1 : vec.envs[i]!.stateKey();
    const t: Transition = { obs, act, rewards: vec.rewards, terminated: vec.terminated, truncated: vec.truncated, nextObs: vec.obs, finalObs: vec.finalObs, stateKeys, nextStateKeys };
    agent.observe(t);
    if (agent.readyToLearn()) agent.learn();
    ret += vec.rewards[0]!;
    if (vec.terminated[0] || vec.truncated[0]) {
      returns.push(ret);
      ret = 0;
    }
  }
  return returns;
}

function planner(info: AgentEnvInfo, config: Partial<PlannerConfig>): PlannerAgent {
  return new PlannerAgent(info, validate<PlannerConfig>(plannerConfigSchema, structuredClone(config), "planner bench config"), 0);
}

export async function benchPlanner(opts: PlannerBenchOptions = {}): Promise<PlannerBenchRow[]> {
  await import("../envs/index.ts" as string).catch(() => undefined); // registers the gridworlds
  const have = new Set(registered().map((r) => r.id));
  const cases = (opts.cases ?? DEFAULT_CASES).filter((c) => have.has(c.id));
  const actSteps = opts.actSteps ?? 20_000;
  const decisions = opts.mctsDecisions ?? 50;
  const simulations = opts.simulations ?? 200;
  const rows: PlannerBenchRow[] = [];
  for (const c of cases) {
    const config = c.config ?? {};
    const info = envInfo(c.id, config);
    const label = c.id + (config.variant ? ` ${String(config.variant)}` : "");

    // exhaustive: the first act builds and solves the table; later acts look it up
    clearPlanCache();
    const exact = planner(info, { search: "exhaustive" });
    let vec = makeVector(c.id, 1, config);
    vec.reset(0);
    let t0 = performance.now();
    drive(exact, vec, 1, c.id, config);
    const planMs = performance.now() - t0;
    const simSteps = exact.simSteps;
    const stats = exact.learn().metrics;
    vec.reset(0);
    t0 = performance.now();
    const returns = drive(exact, vec, actSteps, c.id, config);
    const actMs = performance.now() - t0;
    vec.close();
    rows.push({
      env: label,
      search: "exhaustive",
      states: stats["model/states"] ?? 0,
      simSteps,
      planMs,
      simStepsPerSec: (simSteps / planMs) * 1000,
      actStepsPerSec: (actSteps / actMs) * 1000,
      firstReturn: returns[0] ?? NaN,
    });

    // MCTS: every decision searches from the live snapshot
    clearPlanCache();
    const mcts = planner(info, { search: "mcts", simulations });
    vec = makeVector(c.id, 1, config);
    vec.reset(0);
    t0 = performance.now();
    drive(mcts, vec, decisions, c.id, config);
    const mctsMs = performance.now() - t0;
    vec.close();
    rows.push({
      env: label,
      search: "mcts",
      states: 0,
      simSteps: mcts.simSteps,
      planMs: mctsMs,
      simStepsPerSec: (mcts.simSteps / mctsMs) * 1000,
      actStepsPerSec: (decisions / mctsMs) * 1000,
      firstReturn: NaN,
    });
  }
  clearPlanCache();
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchPlanner();
  if (rows.length === 0) console.log("no gridworlds registered (envs/index.ts): nothing to bench");
  const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
  console.table(
    rows.map((r) => ({
      env: r.env,
      search: r.search,
      states: r.states,
      "sim steps": fmt(r.simSteps),
      "plan ms": r.planMs.toFixed(1),
      "sim steps/s": fmt(r.simStepsPerSec),
      "act steps/s": fmt(r.actStepsPerSec),
      "first return": Number.isFinite(r.firstReturn) ? r.firstReturn : "-",
    })),
  );
}
