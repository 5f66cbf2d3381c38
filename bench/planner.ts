/**
 * Planner throughput: simulated env steps per second (every step of the
 * private copy: BFS, the stochasticity check, MCTS selection and rollouts)
 * and end-to-end acting steps per second through the shared step loop
 * (experiments/loop.ts).
 *
 *   npx tsx bench/planner.ts
 */
import { pathToFileURL } from "node:url";
import type { AgentEnvInfo } from "../agents/core.ts";
import {
  type PlannerConfig,
  SimulatorModel,
  type SimulatorPlanner,
  clearPlanCache,
  createPlanner,
  plannerConfigSchema,
} from "../agents/model-based/planner.ts";
import { Stepper, agentEnvInfo } from "../experiments/loop.ts";
import { validate } from "../envs/schema.ts";
import { make, registered, registration } from "../envs/registry.ts";
import { makeVector, type VectorEnv } from "../envs/vector.ts";
import "../envs/index.ts"; // registers the gridworlds

export interface PlannerBenchCase {
  id: string;
  config?: Record<string, unknown>;
}

export interface PlannerBenchRow {
  env: string;
  search: "exhaustive" | "mcts";
  /** States in the solved table (0 for MCTS). */
  states: number;
  /** Simulated steps of one table build (BFS + stochasticity check), or of all timed MCTS decisions. */
  simSteps: number;
  /** Wall time of the first (cold) table build, or of the timed MCTS decisions. */
  planMs: number;
  /** Warm rate: table search (value iteration excluded) repeated for 300 ms; MCTS over the timed decisions. */
  simStepsPerSec: number;
  /** Env steps per second of act + step + observe (the table is cached: lookups only); MCTS: decisions per second. */
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
  // the large, stochastic case: more than maxStates states, so auto plans with MCTS
  { id: "TomatoWatering-v0" },
];

function envInfo(id: string, config: Record<string, unknown>): AgentEnvInfo {
  return agentEnvInfo({ env: id, config, numEnvs: 1 });
}

/** Runs the planner for `steps` steps through the shared loop (learning as a run does); returns finished episodes' returns. */
function drive(agent: SimulatorPlanner, vec: VectorEnv, steps: number, envId: string, envConfig: Record<string, unknown>): number[] {
  const stepper = new Stepper(agent, { env: envId, config: envConfig, reward: "keep", numEnvs: vec.num, seed: 0 }, { vec });
  const returns: number[] = [];
  for (let s = 0; s < steps; s++) {
    stepper.step({ explore: false, learn: true });
    for (const e of stepper.finished) if (e.copy === 0) returns.push(e.return);
  }
  return returns;
}

function planner(info: AgentEnvInfo, config: Partial<PlannerConfig>): SimulatorPlanner {
  return createPlanner(info, config, 0) as SimulatorPlanner;
}

/**
 * Builds the table from the env's first state again and again for about `ms`
 * of search; warm sim steps per second while searching (BFS and the
 * stochasticity check: restore, step, stateKey, snapshot of new states).
 */
function tableThroughput(
  id: string,
  config: Record<string, unknown>,
  ms: number,
): { states: number; simSteps: number; planMs: number; stepsPerSec: number; fits: boolean } {
  const live = make(id, config);
  live.reset({ seed: 0 });
  const snap = live.snapshot();
  const key = live.stateKey();
  const defaults = validate<PlannerConfig>(plannerConfigSchema, {}, "planner bench config");
  let steps = 0;
  let spent = 0;
  let first = { states: 0, simSteps: 0, planMs: 0, fits: false };
  for (let build = 0; build < 2 || spent < ms; build++) {
    const model = new SimulatorModel(live, {
      objective: "reward",
      discount: defaults.discount,
      horizon: registration(id).maxEpisodeSteps,
      maxStates: defaults.maxStates,
      samples: defaults.samples,
    });
    const fits = model.ensureTable(snap, key);
    if (build === 0) {
      first = { states: model.nStates, simSteps: model.simSteps, planMs: model.planMs, fits }; // cold: JIT warm-up
    } else {
      steps += model.simSteps;
      spent += model.searchMs;
    }
    model.sim.close?.();
  }
  live.close?.();
  return { ...first, stepsPerSec: (steps / spent) * 1000 };
}

export async function benchPlanner(opts: PlannerBenchOptions = {}): Promise<PlannerBenchRow[]> {
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

    // exhaustive: BFS through snapshot/restore + value iteration, rebuilt for a warm rate
    const table = tableThroughput(c.id, config, 300);
    if (table.fits) {
      clearPlanCache();
      const exact = planner(info, { search: "exhaustive" });
      const vec = makeVector(c.id, 1, config);
      vec.reset(0);
      drive(exact, vec, 1, c.id, config); // builds the table
      vec.reset(0);
      const t0 = performance.now();
      const returns = drive(exact, vec, actSteps, c.id, config);
      const actMs = performance.now() - t0;
      vec.close();
      rows.push({
        env: label,
        search: "exhaustive",
        states: table.states,
        simSteps: table.simSteps,
        planMs: table.planMs,
        simStepsPerSec: table.stepsPerSec,
        actStepsPerSec: (actSteps / actMs) * 1000,
        firstReturn: returns[0] ?? NaN,
      });
    }

    // MCTS: every decision searches from the live snapshot
    clearPlanCache();
    const mcts = planner(info, { search: "mcts", simulations });
    const vec = makeVector(c.id, 1, config);
    vec.reset(0);
    drive(mcts, vec, 2, c.id, config); // warm-up
    const before = mcts.simSteps;
    const t0 = performance.now();
    drive(mcts, vec, decisions, c.id, config);
    const mctsMs = performance.now() - t0;
    vec.close();
    rows.push({
      env: label,
      search: "mcts",
      states: 0,
      simSteps: mcts.simSteps - before,
      planMs: mctsMs,
      simStepsPerSec: ((mcts.simSteps - before) / mctsMs) * 1000,
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
