/**
 * The learned-model planner (config model "learned"): a tabular model of its
 * own experience (agents/model-based/models.ts: counts N(s,a,s'), mean rewards, terminal
 * outcomes), planned by discounted value iteration with R-max optimism, so
 * it explores. It cannot generalise: a state it never visited is worth the
 * optimistic bound. States are keyed by stateKey() or by a hash of the
 * observation (config modelKey; agents/shared/obskey.ts).
 */
import type { ActContext, AgentEnvInfo, AgentNeeds, Transition } from "../../core.ts";
import { observationKey } from "../../shared/obskey.ts";
import { LearnedModel, type LearnedModelJson, argmaxAll } from "../models.ts";
import { PlannerBase, type PlannerState } from "./base.ts";
import { type PlannerConfig, PlannerError } from "./config.ts";

export class TabularPlanner extends PlannerBase {
  readonly needs: AgentNeeds;
  /** The model's counts (read by tests and reports; changed only through observe()). */
  readonly model: LearnedModel;
  /** The optimistic reward and the value of an under-visited state-action. */
  private readonly rmax: number;
  private readonly vMax: number;
  private readonly byObservation: boolean;
  /** Re-plans since the last learn() (learn() and, with replanOnKnown, acting). */
  private planStats = { replans: 0, sweeps: 0, residual: 0, ms: 0 };
  private readonly qBuf: Float64Array;

  constructor(env: AgentEnvInfo, config: PlannerConfig, seed: number, saved?: PlannerState) {
    super(env, config, seed, saved);
    if (config.objective !== "reward") {
      throw new PlannerError(`planner: objective "${config.objective}" needs model "simulator" (the learned model only sees rewards)`);
    }
    if (config.discount >= 1) {
      throw new PlannerError("planner: the learned model needs discount < 1 (its optimistic value is rmaxReward / (1 - discount))");
    }
    this.byObservation = config.modelKey === "observation";
    this.needs = { stateKeys: !this.byObservation, simulator: false };
    this.rmax = config.rmaxReward ?? env.rewardRange?.[1] ?? 1;
    this.vMax = this.rmax / (1 - config.discount);
    this.qBuf = new Float64Array(env.nActions);
    this.model = saved?.model ? LearnedModel.fromJSON(saved.model) : new LearnedModel(env.nActions);
  }

  private qValues(key: number): Float64Array {
    return this.model.qValues(key, this.config.discount, this.vMax, this.config.optimismVisits, this.qBuf);
  }

  protected greedy(i: number, obs: Float32Array, ctx: Omit<ActContext, "explore"> | undefined): number[] {
    if (this.config.replanOnKnown && this.state.newlyKnown) this.replan();
    let key: number;
    if (this.byObservation) {
      key = observationKey(obs, i * this.env.obsSize, this.env.obsSize);
    } else {
      const keys = ctx?.stateKeys;
      if (!keys) throw new PlannerError('planner (model "learned") needs ctx.stateKeys (needs.stateKeys)');
      key = keys[i]!;
    }
    return argmaxAll(this.qValues(key));
  }

  protected override keyOf(t: Transition, i: number): number {
    const size = this.env.obsSize;
    return this.byObservation ? observationKey(t.obs, i * size, size) : t.stateKeys[i]!;
  }

  protected override record(t: Transition, i: number, ended: boolean): void {
    const size = this.env.obsSize;
    const key = this.keyOf(t, i);
    // where the episode ended, the successor is the final observation (nextObs is already the next episode's first)
    const next = this.byObservation ? observationKey(ended ? t.finalObs : t.nextObs, i * size, size) : t.nextStateKeys[i]!;
    const terminated = t.terminated[i] === 1;
    if (key === -1) throw new PlannerError(`planner: the learned model needs state keys; ${this.env.envId} has no stateKey()`);
    // a truncated step whose successor key the loop couldn't give is skipped (its successor is unknown)
    if (next === -1 && !terminated) return;
    const n = this.model.observe(key, t.act.actions[i]!, t.rewards[i]!, next, terminated);
    if (n === this.config.optimismVisits) this.state.newlyKnown = true;
  }

  /** Value iteration on the learned model with R-max optimism (warm-started from the last plan). */
  private replan(): void {
    const t0 = performance.now();
    const r = this.model.plan(this.config.discount, this.rmax, this.config.optimismVisits);
    this.planStats.replans++;
    this.planStats.sweeps += r.sweeps;
    this.planStats.residual = r.residual;
    this.planStats.ms += performance.now() - t0;
    this.state.newlyKnown = false;
  }

  protected report(): Record<string, number> {
    // plan: value iteration on the learned model with R-max optimism
    this.replan();
    const ps = this.planStats;
    const S = this.model.nStates;
    const metrics: Record<string, number> = {
      "model/states": S,
      "model/transitions": this.model.transitions,
      "model/known_fraction": S > 0 ? this.model.knownCount(this.config.optimismVisits) / (S * this.nActions) : 0,
      "planner/replans": ps.replans,
      "planner/sweeps": ps.sweeps,
      "planner/residual": ps.residual,
      "planner/plan_ms": ps.ms,
    };
    this.planStats = { replans: 0, sweeps: 0, residual: 0, ms: 0 };
    if (this.state.startKey !== -1) metrics["planner/value_start"] = Math.max(...this.qValues(this.state.startKey));
    return metrics;
  }

  protected override modelJSON(): LearnedModelJson {
    return this.model.toJSON();
  }
}
