/**
 * What every planner does the same way, whatever its model: act greedily on
 * its model's action values (ties broken uniformly with the planner's own
 * seeded RNG, so `act` samples exactly the distribution `actionProbs`
 * reports), explore with epsilon, count steps and episodes, call learn()
 * every replanEvery steps, save and load. A planner model only says which
 * actions are best in a state (`greedy`), what it learns from a transition
 * (`record`) and what it reports (`report`).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Rng } from "../../../envs/rng.ts";
import type { ActContext, ActResult, Agent, AgentEnvInfo, AgentNeeds, Transition, UpdateStats } from "../../core.ts";
import type { LearnedModelJson } from "../models.ts";
import type { PlannerConfig } from "./config.ts";

/** The planner's own state, saved in agent.json. */
export interface PlannerState {
  envSteps: number;
  updates: number;
  rng: number[];
  /** Steps taken in each copy's current episode. */
  elapsed: number[];
  /** Key of copy 0's last first state (reported as planner/value_start). */
  startKey: number;
  stepsSinceLearn: number;
  newlyKnown: boolean;
  /** The learned model's counts (learned-model planners); null otherwise. */
  model: LearnedModelJson | null;
}

export interface PlannerSave extends PlannerState {
  agent: "planner";
  config: PlannerConfig;
  seed: number;
  env: AgentEnvInfo;
}

export abstract class PlannerBase implements Agent {
  readonly name = "planner";
  abstract readonly needs: AgentNeeds;
  protected readonly rng: Rng;
  protected readonly nActions: number;
  protected readonly state: Omit<PlannerState, "model" | "rng">;

  constructor(
    readonly env: AgentEnvInfo,
    readonly config: PlannerConfig,
    readonly seed: number,
    saved?: PlannerState,
  ) {
    this.nActions = env.nActions;
    this.rng = new Rng(seed);
    if (saved) this.rng.setState(saved.rng);
    this.state = saved
      ? {
          envSteps: saved.envSteps,
          updates: saved.updates,
          elapsed: [...saved.elapsed],
          startKey: saved.startKey,
          stepsSinceLearn: saved.stepsSinceLearn,
          newlyKnown: saved.newlyKnown,
        }
      : { envSteps: 0, updates: 0, elapsed: [], startKey: -1, stepsSinceLearn: 0, newlyKnown: false };
  }

  get envSteps(): number {
    return this.state.envSteps;
  }

  /** The greedy actions (all of them where several tie) for copy i. */
  protected abstract greedy(i: number, obs: Float32Array, ctx: Omit<ActContext, "explore"> | undefined): number[];

  /** The key the model knows copy i's state before the step by (state key unless the model says otherwise). */
  protected keyOf(t: Transition, i: number): number {
    return t.stateKeys[i]!;
  }

  /** Learns from copy i's step (learned models); `ended` where the episode ended in it. */
  protected record(_t: Transition, _i: number, _ended: boolean): void {}

  /** Metrics of an update (model size, plan figures). */
  protected abstract report(): Record<string, number>;

  /** What save() writes as `model` (the learned model's counts). */
  protected modelJSON(): LearnedModelJson | null {
    return null;
  }

  act(obs: Float32Array, ctx: ActContext): ActResult {
    const batch = Math.max(1, Math.round(obs.length / Math.max(1, this.env.obsSize)));
    const actions = new Int32Array(batch);
    for (let i = 0; i < batch; i++) {
      const best = this.greedy(i, obs, ctx);
      // a uniform draw among tied optima: the policy actionProbs describes
      actions[i] = best.length === 1 ? best[0]! : best[this.rng.int(best.length)]!;
      if (ctx.explore && this.config.epsilon > 0 && this.rng.next() < this.config.epsilon) actions[i] = this.rng.int(this.nActions);
    }
    return { actions };
  }

  actionProbs(obs: Float32Array, batch: number, ctx?: Omit<ActContext, "explore">): Float32Array {
    const probs = new Float32Array(batch * this.nActions);
    for (let i = 0; i < batch; i++) {
      const best = this.greedy(i, obs, ctx);
      for (const a of best) probs[i * this.nActions + a] = 1 / best.length;
    }
    return probs;
  }

  observe(t: Transition): void {
    const batch = t.rewards.length;
    const st = this.state;
    for (let i = 0; i < batch; i++) {
      const ended = t.terminated[i] === 1 || t.truncated[i] === 1;
      if ((st.elapsed[i] ?? 0) === 0 && i === 0) st.startKey = this.keyOf(t, 0);
      st.elapsed[i] = ended ? 0 : (st.elapsed[i] ?? 0) + 1;
      this.record(t, i, ended);
    }
    st.envSteps += batch;
    st.stepsSinceLearn += batch;
  }

  readyToLearn(): boolean {
    return this.state.stepsSinceLearn >= this.config.replanEvery;
  }

  learn(): UpdateStats {
    const st = this.state;
    const metrics = this.report();
    st.stepsSinceLearn = 0;
    st.newlyKnown = false;
    return { update: ++st.updates, envSteps: st.envSteps, metrics };
  }

  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const out: PlannerSave = {
      agent: "planner",
      config: this.config,
      seed: this.seed,
      env: this.env,
      ...this.state,
      elapsed: [...this.state.elapsed],
      rng: this.rng.getState(),
      model: this.modelJSON(),
    };
    await writeFile(join(dir, "agent.json"), JSON.stringify(out));
  }

  dispose(): void {
    // no tensors; simulator models are cached and shared
  }
}
