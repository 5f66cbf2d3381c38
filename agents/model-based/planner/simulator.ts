/**
 * The simulator planner (config model "simulator"): plans with the true
 * environment, the "reward pursuit" reference. Each live env it acts on
 * clones itself into a private copy (no time limit; steps left come from the
 * live env's stepsLeft()), and the search (search.ts) solves the reachable
 * states exactly or runs MCTS from the live snapshot.
 */
import type { Env, EnvOrigin } from "../../../envs/core.ts";
import { Rng, deriveSeed } from "../../../envs/rng.ts";
import type { ActContext, AgentEnvInfo, AgentNeeds } from "../../core.ts";
import { argmaxAll } from "../models.ts";
import { PlannerBase, type PlannerState } from "./base.ts";
import { type PlannerConfig, PlannerError } from "./config.ts";
import { type Counters, type SimulatorModel, counted, simulatorModel } from "./search.ts";

export class SimulatorPlanner extends PlannerBase {
  readonly needs: AgentNeeds = { stateKeys: false, simulator: true };
  private readonly horizonCap: number;
  /** The model last planned with (learn() reports it). */
  private model: SimulatorModel | null = null;
  /** The model for each origin of live envs seen (identity lookup: no hashing per step). */
  private readonly models = new WeakMap<EnvOrigin, SimulatorModel>();
  /** This planner's own share of the work on (shared) models. */
  private readonly counters: Counters = { simSteps: 0, planMs: 0 };
  private lastRootValue = Number.NaN;

  constructor(env: AgentEnvInfo, config: PlannerConfig, seed: number, saved?: PlannerState) {
    super(env, config, seed, saved);
    this.horizonCap = Math.min(config.horizon ?? env.maxEpisodeSteps, env.maxEpisodeSteps);
  }

  /** Simulated env steps this planner has taken (on its own or shared models). */
  get simSteps(): number {
    return this.counters.simSteps;
  }

  /** The model for envs made as `live` was (its variant, config and reward wrapper). */
  private modelFor(live: Env): SimulatorModel {
    const origin = live.origin;
    let model = origin ? this.models.get(origin) : undefined;
    if (!model) {
      model = simulatorModel(live, {
        objective: this.config.objective,
        discount: this.config.discount,
        horizon: this.horizonCap,
        maxStates: this.config.maxStates,
        samples: this.config.samples,
      });
      if (origin) this.models.set(origin, model);
    }
    return (this.model = model);
  }

  protected greedy(i: number, _obs: Float32Array, ctx: Omit<ActContext, "explore"> | undefined): number[] {
    const live = ctx?.envs?.[i];
    if (!live) throw new PlannerError('planner (model "simulator") needs ctx.envs, the live env copies (needs.simulator)');
    const model = this.modelFor(live);
    const snap = live.snapshot();
    const key = live.stateKey();
    const left = live.stepsLeft?.() ?? this.env.maxEpisodeSteps - (this.state.elapsed[i] ?? 0);
    const stepsLeft = Math.max(1, left);
    const search = this.config.search;
    if (search !== "mcts" && key !== -1 && counted(model, this.counters, () => model.ensureTable(snap, key))) {
      return argmaxAll(model.tableQ(key, stepsLeft)!);
    }
    if (search === "exhaustive") {
      throw new PlannerError(
        key === -1
          ? `planner: ${this.env.envId} has no stateKey(); use search "mcts" or "auto"`
          : `planner: more than maxStates=${this.config.maxStates} states are reachable in ${this.env.envId} (or the table is too big); raise maxStates or use search "mcts"`,
      );
    }
    // MCTS; the search is seeded by the state (key and steps taken), so it is reproducible
    const elapsed = this.env.maxEpisodeSteps - left;
    const rng = new Rng(deriveSeed(deriveSeed(this.seed, key >>> 0), elapsed));
    const depth = Math.min(this.config.horizon ?? stepsLeft, stepsLeft);
    const r = counted(model, this.counters, () => model.mcts(snap, depth, this.config.simulations, this.config.ucbC, rng));
    this.lastRootValue = r.rootValue;
    const most = argmaxAll(r.visits, 0);
    const q = most.map((a) => r.q[a]!);
    return argmaxAll(q).map((j) => most[j]!);
  }

  protected report(): Record<string, number> {
    // the simulator is exact: nothing to learn; report the plan
    const m = this.model;
    const mcts = this.config.search === "mcts" || (m?.tooLarge ?? false);
    const metrics: Record<string, number> = {
      "model/states": m?.nStates ?? 0,
      "model/transitions": m?.transitions ?? 0,
      "planner/mcts": mcts ? 1 : 0,
      "planner/stochastic": m?.stochastic ? 1 : 0,
      "planner/sim_steps": this.counters.simSteps,
      "planner/plan_ms": this.counters.planMs,
    };
    const v = mcts ? this.lastRootValue : (m?.tableValue(this.state.startKey, this.env.maxEpisodeSteps) ?? Number.NaN);
    if (Number.isFinite(v)) metrics["planner/value_start"] = v;
    return metrics;
  }
}
