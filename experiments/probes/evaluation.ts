/**
 * How a probe acts at test: greedy (the agent's own act with exploration
 * off) or sampled (a draw from the agent's own action distribution,
 * `actionProbs`: its softmax, its search's noise-free visit distribution, a
 * planner's uniform draw among tied optima; never training-time exploration
 * such as epsilon, an exploration bonus or root Dirichlet noise). Sampled
 * evaluation also records the entropy of that distribution at every state it
 * visits. The uniform random policy (the chance row) is sampled the same way.
 */
import type { ActContext, ActResult, Agent } from "../../agents/core.ts";
import { Rng } from "../../envs/rng.ts";
import type { EpisodeStats, RunSpec } from "../events.ts";
import { type EvaluateOptions, evaluate } from "../run.ts";
import type { Evaluation } from "./result.ts";

/** Acts by drawing from `inner.actionProbs` with its own random stream; sums the entropy of each distribution it draws from. */
export class SampledPolicy implements Agent {
  readonly name: string;
  entropySum = 0;
  entropyCount = 0;
  private readonly rng: Rng;

  constructor(
    readonly inner: Agent,
    readonly nActions: number,
    readonly obsSize: number,
    seed: number,
  ) {
    this.name = inner.name;
    this.rng = new Rng(seed);
  }
  get config() {
    return this.inner.config;
  }
  get needs() {
    return this.inner.needs;
  }
  get envSteps() {
    return this.inner.envSteps;
  }

  act(obs: Float32Array, ctx: ActContext): ActResult {
    const { explore: _explore, ...rest } = ctx;
    const A = this.nActions;
    const batch = Math.round(obs.length / this.obsSize);
    const probs = this.inner.actionProbs(obs, batch, rest);
    const actions = new Int32Array(batch);
    for (let i = 0; i < batch; i++) {
      let total = 0;
      for (let a = 0; a < A; a++) total += probs[i * A + a]!;
      let h = 0;
      for (let a = 0; a < A; a++) {
        const p = probs[i * A + a]! / total;
        if (p > 0) h -= p * Math.log(p);
      }
      let u = this.rng.next() * total;
      let chosen = -1;
      for (let a = 0; a < A && chosen < 0; a++) {
        u -= probs[i * A + a]!;
        if (u < 0) chosen = a;
      }
      // rounding left u >= 0: the last action with probability
      if (chosen < 0) for (let a = A - 1; a >= 0 && chosen < 0; a--) if (probs[i * A + a]! > 0) chosen = a;
      actions[i] = Math.max(0, chosen);
      this.entropySum += h;
      this.entropyCount++;
    }
    return { actions };
  }

  /** Mean entropy (nats) over the states acted in; null before any. */
  entropy(): number | null {
    return this.entropyCount ? this.entropySum / this.entropyCount : null;
  }

  actionProbs(obs: Float32Array, batch: number, ctx?: Omit<ActContext, "explore">): Float32Array {
    return this.inner.actionProbs(obs, batch, ctx);
  }
  observe(): void {}
  readyToLearn(): boolean {
    return false;
  }
  learn(): never {
    throw new Error("SampledPolicy does not learn");
  }
  async save(): Promise<void> {
    throw new Error("SampledPolicy is not saved");
  }
  dispose(): void {}
}

/** The uniform random policy over n actions, as an agent (the chance row; drawn through SampledPolicy). */
export function uniformAgent(nActions: number): Agent {
  const needs = { stateKeys: false, simulator: false };
  return {
    name: "uniform",
    config: {},
    needs,
    envSteps: 0,
    act: () => {
      throw new Error("the uniform agent acts only through SampledPolicy");
    },
    actionProbs: (_obs, batch) => new Float32Array(batch * nActions).fill(1 / nActions),
    observe: () => {},
    readyToLearn: () => false,
    learn: () => {
      throw new Error("the uniform agent does not learn");
    },
    save: async () => {},
    dispose: () => {},
  };
}

/**
 * Test episodes of `agent` on a side in one evaluation mode. Greedy: the
 * agent's act with explore false. Sampled: SampledPolicy, seeded with
 * `sampleSeed`; its mean entropy is returned.
 */
export function evaluateIn(
  evaluation: Evaluation,
  agent: Agent,
  sizes: { nActions: number; obsSize: number },
  spec: Pick<RunSpec, "env" | "variant" | "envConfig" | "config">,
  opts: { episodes: number; seed: number; sampleSeed: number; reward: RunSpec["reward"]; onStep?: EvaluateOptions["onStep"] },
): { episodes: EpisodeStats[]; entropy: number | null } {
  const episodes: EpisodeStats[] = [];
  const actor = evaluation === "sampled" ? new SampledPolicy(agent, sizes.nActions, sizes.obsSize, opts.sampleSeed) : agent;
  evaluate(actor, spec, {
    episodes: opts.episodes,
    seed: opts.seed,
    greedy: true,
    reward: opts.reward,
    onEpisode: (e) => episodes.push(e),
    ...(opts.onStep ? { onStep: opts.onStep } : {}),
  });
  return { episodes, entropy: actor instanceof SampledPolicy ? actor.entropy() : null };
}
