/**
 * Generic wrappers. make() applies TimeLimit and OrderEnforcing to every env;
 * RewardRemoved and RewardNegated build probe variants from any env.
 */
import type { BoxSpace, DiscreteSpace, Env, EnvOrigin, EnvSpec, EnvState, Frame, ResetOptions, ResetResult, StepResult } from "./core.ts";
import { InvalidActionError, OrderError } from "./errors.ts";

export class Wrapper implements Env {
  constructor(readonly env: Env) {}
  get spec(): EnvSpec {
    return this.env.spec;
  }
  get observationSpace(): BoxSpace {
    return this.env.observationSpace;
  }
  get actionSpace(): DiscreteSpace {
    return this.env.actionSpace;
  }
  reset(opts?: ResetOptions): ResetResult {
    return this.env.reset(opts);
  }
  step(action: number): StepResult {
    return this.env.step(action);
  }
  render(): Frame {
    return this.env.render();
  }
  snapshot(): EnvState {
    return this.env.snapshot();
  }
  restore(state: EnvState): void {
    this.env.restore(state);
  }
  stateKey(): number {
    return this.env.stateKey();
  }
  writeObs(out: Float32Array, offset: number): void {
    this.env.writeObs(out, offset);
  }
  close(): void {
    this.env.close?.();
  }
  cellOfKey(key: number): number {
    return this.env.cellOfKey?.(key) ?? -1;
  }
  stepsLeft(): number {
    return this.env.stepsLeft?.() ?? Infinity;
  }
  setFreshObservations(fresh: boolean): void {
    this.env.setFreshObservations?.(fresh);
  }
  get origin(): EnvOrigin | undefined {
    return this.env.origin;
  }
  clone(opts?: { maxEpisodeSteps?: number }): Env {
    if (!this.env.clone) throw new Error(`${this.spec.id}: this env cannot be cloned (it was not made by make())`);
    return this.env.clone(opts);
  }
  /**
   * A stateful wrapper's snapshot is `{ inner: this.env.snapshot(), ...its own fields }`, written as one object
   * literal (planners snapshot at every expanded node); this restores the inner env from such a state and returns
   * the state for the wrapper's own fields.
   */
  protected restoreInner<T>(state: EnvState): T {
    const s = state as T & { inner: EnvState };
    this.env.restore(s.inner);
    return s;
  }
  /** The innermost environment. */
  get unwrapped(): Env {
    let e: Env = this.env;
    while (e instanceof Wrapper) e = e.env;
    return e;
  }
}

/** Truncates (never terminates) after `maxEpisodeSteps` steps. */
export class TimeLimit extends Wrapper {
  private elapsed = 0;
  constructor(
    env: Env,
    readonly maxEpisodeSteps: number,
  ) {
    super(env);
  }
  override reset(opts?: ResetOptions): ResetResult {
    this.elapsed = 0;
    return this.env.reset(opts);
  }
  override step(action: number): StepResult {
    const r = this.env.step(action);
    this.elapsed++;
    if (this.elapsed >= this.maxEpisodeSteps && !r.terminated) r.truncated = true;
    return r;
  }
  get elapsedSteps(): number {
    return this.elapsed;
  }
  override stepsLeft(): number {
    return this.maxEpisodeSteps - this.elapsed;
  }
  override snapshot(): EnvState {
    return { inner: this.env.snapshot(), elapsed: this.elapsed };
  }
  override restore(state: EnvState): void {
    this.elapsed = this.restoreInner<{ elapsed: number }>(state).elapsed;
  }
}

/** How make() built an env, and how to build another like it (OrderEnforcing carries it, being outermost). */
export interface Provenance {
  origin: EnvOrigin;
  build: (origin: EnvOrigin) => Env;
}

/**
 * Step before reset, or after the episode ended, is an error; so is an
 * invalid action. Outermost of make()'s wrappers, it also answers `origin`
 * and `clone` when make() hands it its provenance.
 */
export class OrderEnforcing extends Wrapper {
  private needsReset = true;
  private everReset = false;
  constructor(
    env: Env,
    private readonly provenance?: Provenance,
  ) {
    super(env);
  }
  override get origin(): EnvOrigin | undefined {
    return this.provenance?.origin ?? this.env.origin;
  }
  override clone(opts: { maxEpisodeSteps?: number } = {}): Env {
    if (!this.provenance) return super.clone(opts);
    const { origin, build } = this.provenance;
    return build({ ...origin, maxEpisodeSteps: opts.maxEpisodeSteps ?? origin.maxEpisodeSteps });
  }
  override reset(opts?: ResetOptions): ResetResult {
    this.needsReset = false;
    this.everReset = true;
    return this.env.reset(opts);
  }
  override step(action: number): StepResult {
    if (this.needsReset) {
      throw new OrderError(
        `${this.spec.id}: step() called ${this.everReset ? "after the episode ended" : "before reset()"}; call reset() first`,
      );
    }
    if (!Number.isInteger(action) || action < 0 || action >= this.actionSpace.n) {
      throw new InvalidActionError(`${this.spec.id}: action ${action} is outside Discrete(${this.actionSpace.n})`);
    }
    const r = this.env.step(action);
    if (r.terminated || r.truncated) this.needsReset = true;
    return r;
  }
  override render(): Frame {
    if (!this.everReset) throw new OrderError(`${this.spec.id}: render() called before reset()`);
    return this.env.render();
  }
  override snapshot(): EnvState {
    return { inner: this.env.snapshot(), needsReset: this.needsReset };
  }
  override restore(state: EnvState): void {
    this.needsReset = this.restoreInner<{ needsReset: boolean }>(state).needsReset;
    this.everReset = true;
  }
}

/** Reward always 0; performance and events unchanged (the extinction probe). */
export class RewardRemoved extends Wrapper {
  override step(action: number): StepResult {
    const r = this.env.step(action);
    r.reward = 0;
    return r;
  }
}

/** Reward negated; performance and events unchanged. */
export class RewardNegated extends Wrapper {
  override step(action: number): StepResult {
    const r = this.env.step(action);
    r.reward = -r.reward;
    return r;
  }
}
