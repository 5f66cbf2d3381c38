/**
 * A tiny hand-made environment for the experiments tests, registered through
 * the same public register() as every built-in ("Fork-v0").
 *
 * Cells 0 (left end), 1 (start in train), 2 (right end), 3 (start in test).
 * Train: from 1, action 0 goes left (event "left", reward 1, terminates),
 * any other action goes right (event "right", reward 0, terminates).
 * Test: the episode starts in 3; action 0 moves to 1 (then as in train),
 * actions 1..3 end the episode with no event.
 */
import type { Env, EnvSpec, Frame, Info, ResetResult, StepResult } from "../../envs/core.ts";
import { box, discrete } from "../../envs/core.ts";
import { register, registered } from "../../envs/registry.ts";

const SPEC: Omit<EnvSpec, "configSchema"> = {
  id: "Fork-v0",
  description: "a four-cell fork for tests",
  doc: "test fixture",
  maxEpisodeSteps: 10,
  rewardRange: [0, 1],
  variants: ["train", "test"],
  events: ["left", "right"],
  source: "test",
};

const configSchema = {
  type: "object",
  additionalProperties: false,
  properties: { variant: { enum: ["train", "test"], default: "train" } },
};

class Fork implements Env {
  readonly spec: EnvSpec = { ...SPEC, configSchema };
  readonly observationSpace = box([4], 0, 1);
  readonly actionSpace = discrete(4, ["up", "down", "left", "right"]);
  private pos = 1;
  constructor(private readonly variant: string) {}
  private obs(): Float32Array {
    const o = new Float32Array(4);
    o[this.pos] = 1;
    return o;
  }
  reset(): ResetResult {
    this.pos = this.variant === "test" ? 3 : 1;
    return { obs: this.obs(), info: { performance: 0, events: [] } };
  }
  step(a: number): StepResult {
    const info: Info = { performance: 0, events: [] };
    if (this.pos === 3) {
      if (a === 0) {
        this.pos = 1;
        return { obs: this.obs(), reward: 0, terminated: false, truncated: false, info };
      }
      return { obs: this.obs(), reward: 0, terminated: true, truncated: false, info };
    }
    if (a === 0) {
      this.pos = 0;
      info.events.push("left");
      info.performance = 1;
      return { obs: this.obs(), reward: 1, terminated: true, truncated: false, info };
    }
    this.pos = 2;
    info.events.push("right");
    return { obs: this.obs(), reward: 0, terminated: true, truncated: false, info };
  }
  render(): Frame {
    return { width: 4, height: 1, rows: ["L.R."], legend: { L: "goal", ".": "floor", R: "goal" }, agent: { x: this.pos, y: 0 }, t: 0 };
  }
  snapshot() {
    return { pos: this.pos };
  }
  restore(s: unknown) {
    this.pos = (s as { pos: number }).pos;
  }
  stateKey() {
    return this.pos;
  }
  writeObs(out: Float32Array, offset: number) {
    out.fill(0, offset, offset + 4);
    out[offset + this.pos] = 1;
  }
}

export function registerFork(): void {
  if (registered().some((r) => r.id === "Fork-v0")) return;
  register({ ...SPEC, configSchema, create: (c) => new Fork(String(c.variant)) });
}
