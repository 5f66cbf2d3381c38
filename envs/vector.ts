/**
 * N copies of an environment stepped together, with auto-reset in the same
 * step: when copy i ends, `finalObs` holds its last observation (for
 * bootstrapping at truncation) and `obs` already holds the next episode's
 * first observation. All observations live in one batched Float32Array.
 */
import type { Env, Frame, Info } from "./core.ts";
import { spaceSize } from "./core.ts";
import { deriveSeed } from "./rng.ts";
import { make, type EnvConfig, type MakeOptions } from "./registry.ts";

export class VectorEnv {
  readonly num: number;
  readonly obsSize: number;
  /** Current observations, num x obsSize, row-major. */
  readonly obs: Float32Array;
  /** Last observation of the episode that just ended, where terminated or truncated. */
  readonly finalObs: Float32Array;
  /** State key of the ended episode's last state (before the auto-reset), where terminated or truncated. */
  readonly finalStateKeys: Int32Array;
  readonly rewards: Float32Array;
  readonly terminated: Uint8Array;
  readonly truncated: Uint8Array;
  /** Info of each copy's last step (the ended episode's, where it ended). */
  infos: Info[];
  /** Copy whose last frame is rendered before its auto-reset (-1: none), into `finalFrame`. */
  captureFinalFrame = -1;
  finalFrame: Frame | null = null;

  constructor(readonly envs: Env[]) {
    if (envs.length === 0) throw new RangeError("a vector env needs at least one copy");
    this.num = envs.length;
    this.obsSize = spaceSize(envs[0]!.observationSpace);
    this.obs = new Float32Array(this.num * this.obsSize);
    this.finalObs = new Float32Array(this.num * this.obsSize);
    this.rewards = new Float32Array(this.num);
    this.finalStateKeys = new Int32Array(this.num).fill(-1);
    this.terminated = new Uint8Array(this.num);
    this.truncated = new Uint8Array(this.num);
    this.infos = envs.map(() => ({ performance: 0, events: [] }));
  }

  get actionCount(): number {
    return this.envs[0]!.actionSpace.n;
  }

  /** Seeds copy i with deriveSeed(seed, i); later auto-resets continue each copy's own RNG. */
  reset(seed?: number): Float32Array {
    for (let i = 0; i < this.num; i++) {
      const { info } = this.envs[i]!.reset(seed === undefined ? {} : { seed: deriveSeed(seed, i) });
      this.envs[i]!.writeObs(this.obs, i * this.obsSize);
      this.infos[i] = info;
    }
    this.terminated.fill(0);
    this.truncated.fill(0);
    this.rewards.fill(0);
    return this.obs;
  }

  step(actions: ArrayLike<number>): void {
    const n = this.obsSize;
    for (let i = 0; i < this.num; i++) {
      const env = this.envs[i]!;
      const r = env.step(actions[i]!);
      this.rewards[i] = r.reward;
      this.terminated[i] = r.terminated ? 1 : 0;
      this.truncated[i] = r.truncated ? 1 : 0;
      this.infos[i] = r.info;
      if (r.terminated || r.truncated) {
        this.finalObs.set(r.obs, i * n);
        this.finalStateKeys[i] = env.stateKey();
        if (i === this.captureFinalFrame) this.finalFrame = env.render();
        env.reset();
      }
      env.writeObs(this.obs, i * n);
    }
  }

  close(): void {
    for (const e of this.envs) e.close?.();
  }
}

export function makeVector(id: string, num: number, config: EnvConfig = {}, opts: MakeOptions = {}): VectorEnv {
  return new VectorEnv(Array.from({ length: num }, () => make(id, config, opts)));
}
