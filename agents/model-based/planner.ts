/**
 * The model-based planner: a textbook reward maximiser, the contrast case for
 * the model-free learners. It searches for the actions that maximise the
 * predicted reward (or, as config, the hidden performance), with one of two
 * models:
 *
 * - `simulator` (agents/model-based/planner/simulator.ts, search in planner/search.ts):
 *   the true environment. A private copy, made by the live env's own clone()
 *   (so the variant and reward wrapper in play), without a time limit, is
 *   restored from a live env's snapshot and stepped.
 *   - exhaustive: BFS over stateKey() through snapshot/restore from the live
 *     state, then finite-horizon value iteration over (state, steps left):
 *     V_0 = 0, V_h(s) = max_a E[r + discount * V_{h-1}(s')]. Steps left come
 *     from the live env's stepsLeft() (the time limit's count), so the time
 *     limit is part of the problem: truncation is no terminal value, just
 *     nothing left to earn. This is the exact optimum of the discounted
 *     return to the episode's end (discount 1: of the return itself; on
 *     BoatRace-v0 the default 0.99 also earns the optimal 50). The solved
 *     table is cached per (env, config, reward wrapper, planner settings) and
 *     shared, so acting is a lookup; a live state missing from it (a new
 *     layout or supervisor drawn at reset) extends it. Each planner counts
 *     its own simulated steps and planning time on the shared tables.
 *   - mcts: UCT from the live snapshot to a depth of min(horizon, steps
 *     left), random rollouts, values min-max normalised within the tree; the
 *     decision is seeded by (seed, state key, elapsed) so it is reproducible.
 *   - auto: exhaustive while at most maxStates states are reachable (and the
 *     value table fits in memory), else MCTS (also when the env has no keys).
 * - `learned` (agents/model-based/planner/tabular.ts): a tabular model of its own
 *   experience (agents/model-based/models.ts): counts N(s,a,s'), mean rewards, terminal
 *   outcomes, keyed by state key, planned by discounted value iteration with
 *   R-max optimism, so it explores.
 *
 * Each model is its own agent class behind the Agent contract; what they
 * share (acting on tied optima, epsilon, step counting, save) is
 * planner/base.ts, the config (one TypeBox definition) planner/config.ts.
 * `plannerModels` below maps config.model to the class: a new model is one
 * entry there and one value in the config's `model` enum.
 *
 * Ties. Where several actions are optimal, act() draws one uniformly with
 * the planner's own seeded RNG, so it samples the distribution actionProbs()
 * reports (1/k on each of k tied actions), not the first in action order.
 *
 * Stochastic environments. A snapshot holds the env's RNG, so a restored copy
 * replays the live env's own future draws: stepping one snapshot is
 * deterministic. The exhaustive table keys states by stateKey() (which leaves
 * the RNG out) and keeps, per state, up to `samples` snapshots that reached it
 * after different numbers of steps (so, in an env that draws every step, with
 * different RNG states). BFS steps one snapshot per state; then the other
 * snapshots of states are stepped (about one more BFS worth): any outcome
 * unlike the first's marks the env stochastic, and every state is expanded
 * from all its snapshots. The model is the empirical distribution of these
 * sampled successors, and value iteration takes the expectation over it. (An
 * env whose RNG advances only on some actions yields fewer distinct samples.)
 * MCTS from the live snapshot is a determinised search: it plans as if it knew
 * the env's next random draws (an optimistic bound on a planner that doesn't).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { validate } from "../../envs/schema.ts";
import type { Agent, AgentEnvInfo } from "../core.ts";
import { NeuralPlanner, loadNeuralPlanner } from "./neuralplanner.ts";
import type { PlannerBase, PlannerSave, PlannerState } from "./planner/base.ts";
import { type PlannerConfig, PlannerError, plannerConfigSchema } from "./planner/config.ts";
import { SimulatorPlanner } from "./planner/simulator.ts";
import { TabularPlanner } from "./planner/tabular.ts";
import { registerAgent } from "../registry.ts";

export type { PlannerSave, PlannerState } from "./planner/base.ts";
export { PlannerBase } from "./planner/base.ts";
export { type PlannerConfig, PlannerError, plannerConfigSchema } from "./planner/config.ts";
export { REBUILD_STATES, SimulatorModel, clearPlanCache } from "./planner/search.ts";
export { SimulatorPlanner } from "./planner/simulator.ts";
export { TabularPlanner } from "./planner/tabular.ts";

/** How a planner with one model is made and loaded. */
interface PlannerModel {
  create(env: AgentEnvInfo, config: PlannerConfig, seed: number): Agent;
  load(dir: string, env: AgentEnvInfo, config: PlannerConfig, saved: PlannerSave): Promise<Agent> | Agent;
}

/** A model whose planner shares planner/base.ts (tabular or simulator search). */
function sharedBase(
  Planner: new (env: AgentEnvInfo, config: PlannerConfig, seed: number, saved?: PlannerState) => PlannerBase,
): PlannerModel {
  return {
    create: (env, config, seed) => new Planner(env, config, seed),
    load: (_dir, env, config, saved) => new Planner(env, config, saved.seed, saved),
  };
}

/** config.model -> the planner that plans with that model. */
export const plannerModels: { readonly [M in PlannerConfig["model"]]: PlannerModel } = {
  simulator: sharedBase(SimulatorPlanner),
  learned: sharedBase(TabularPlanner),
  neural: {
    create: (env, config, seed) => new NeuralPlanner(env, config, seed),
    load: (dir, env, config) => loadNeuralPlanner(dir, env, config),
  },
};

/** Any planner, whatever its model. */
export type PlannerAgent = Agent;

function resolve(config: unknown): PlannerConfig {
  return validate<PlannerConfig>(plannerConfigSchema, structuredClone(config), "config for agent planner");
}

/** A planner with the model its config names. */
export function createPlanner(env: AgentEnvInfo, config: unknown, seed: number): PlannerAgent {
  const resolved = resolve(config);
  return plannerModels[resolved.model].create(env, resolved, seed);
}

export async function loadPlanner(dir: string, env: AgentEnvInfo): Promise<PlannerAgent> {
  const saved = JSON.parse(await readFile(join(dir, "agent.json"), "utf8")) as PlannerSave;
  if (saved.agent !== "planner") throw new PlannerError(`${dir}/agent.json holds agent "${saved.agent}", not "planner"`);
  const config = resolve(saved.config);
  return plannerModels[config.model].load(dir, env, config, saved);
}

registerAgent<PlannerConfig>({
  name: "planner",
  kind: "model-based",
  description:
    "Model-based reward maximiser: value iteration or MCTS with the true simulator, R-max value iteration on a learned tabular model, or search over a learned neural world model",
  configSchema: plannerConfigSchema,
  create: (env, config, seed) => createPlanner(env, config, seed),
  load: loadPlanner,
});
