/**
 * The counting prediction per arm under both measures (counting.ts): the
 * per-observation tie measure and the policy-uniform measure, with the
 * simulator planner's optimal train episodes behind both, and a sentence
 * saying why they disagree where they do; or, where the test side is a new
 * world every episode that training never met (novelty.ts), why it does not
 * apply.
 */
import { createAgent } from "../../agents/registry.ts";
import { deriveSeed } from "../../envs/rng.ts";
import { make } from "../../envs/registry.ts";
import { agentEnvInfo } from "../run.ts";
import { SALT } from "../seeds.ts";
import { classifyEpisode } from "./classify.ts";
import { type CountingResult, type PolicyCountingResult, collectPinned, countingRate, policyCounting } from "./counting.ts";
import type { ProbeArm } from "./definition.ts";
import { measureNovelty, type Novelty, notApplicableReason } from "./novelty.ts";
import type { ProbeSide } from "./side.ts";

/** Counting under both measures, per arm; or why it does not apply (novelty.ts). */
export type CountingPrediction = CountingMeasured | CountingNotApplicable;

/** A test side where counting does not apply: how new it is to training, and the sentence the table shows. */
export interface CountingNotApplicable {
  notApplicable: Novelty & { reason: string };
}

export interface CountingMeasured {
  /** Per-observation ties: uniform among tied optimal actions where optimal train episodes go, uniform elsewhere. */
  ties: CountingResult;
  discount: number;
  /** Uniform over deterministic stationary policies optimal on the train variant. */
  policies: PolicyCountingResult;
  /** Why the two measures differ by more than 0.5, where they do (null otherwise). */
  disagreement: string | null;
}

/** Counting per arm, under both measures (counting.ts and docs/probes.md say what each assumes). */
export function countingPrediction(
  env: string,
  arms: ProbeArm[],
  test: ProbeSide,
  event: string,
  policies: number,
  seed: number,
  lapSteps: number | null,
): Map<string, CountingPrediction> {
  const out = new Map<string, CountingPrediction>();
  for (const arm of arms) {
    const novelty = measureNovelty(
      () => make(env, { ...arm.train.envConfig, variant: arm.train.variant }, { reward: arm.train.reward }),
      () => make(env, { ...test.envConfig, variant: test.variant }, { reward: test.reward }),
      deriveSeed(seed, SALT.countingNovelty),
    );
    const reason = notApplicableReason(novelty);
    if (reason) {
      out.set(arm.name, { notApplicable: { ...novelty, reason } });
      continue;
    }
    // Undiscounted first, so that every policy optimal for the episode's return counts (BoatRace's two
    // loops tie). Where that admits so many dawdling ties that no drawn stationary policy passes the
    // train check (GoalShift has no step cost), fall back to discount 0.99: optimal = shortest routes.
    let checkOn: { seed: number; return: number }[] = [];
    for (const discount of [1, 0.99]) {
      const r = countingFor(env, arm, test, event, policies, seed, discount);
      if (discount === 1) checkOn = r.checkOn;
      if (r.ties.policies > 0 || discount !== 1) {
        const byPolicy = policyCounting({
          makeTrainEnv: () => make(env, { ...arm.train.envConfig, variant: arm.train.variant }, { reward: arm.train.reward }),
          makeTestEnv: () => make(env, { ...test.envConfig, variant: test.variant }, { reward: test.reward }),
          event,
          checkSeeds: checkOn.map((e) => e.seed),
          optimum: checkOn.map((e) => e.return),
          testSeed: deriveSeed(seed, SALT.countingPolicyTest),
          seed: deriveSeed(seed, SALT.countingPolicies),
          samples: policies,
          ...(lapSteps !== null ? { classify: (events: Record<string, number>) => classifyEpisode({ events }, lapSteps) } : {}),
        });
        out.set(arm.name, {
          ties: r.ties,
          discount,
          policies: byPolicy,
          disagreement: disagreement(r.ties, byPolicy, r.checkOn.length, r.pinnedEpisodes),
        });
        break;
      }
    }
  }
  return out;
}

function countingFor(
  env: string,
  arm: ProbeArm,
  test: ProbeSide,
  event: string,
  policies: number,
  seed: number,
  discount: number,
): { ties: CountingResult; checkOn: { seed: number; return: number }[]; pinnedEpisodes: number } {
  const spec = { env, variant: arm.train.variant, envConfig: arm.train.envConfig, config: { model: "simulator", discount } };
  const planner = createAgent("planner", agentEnvInfo(spec), spec.config, seed);
  const nActions = agentEnvInfo(spec).nActions;
  const trainEnv = make(env, { ...arm.train.envConfig, variant: arm.train.variant }, { reward: arm.train.reward });
  const keys = new Int32Array(1);
  const simulator = { envId: env, envConfig: { ...arm.train.envConfig, variant: arm.train.variant }, reward: arm.train.reward };
  const optimalReturns: { seed: number; return: number }[] = [];
  const pinned = collectPinned(
    trainEnv,
    (obs, e) => {
      keys[0] = e.stateKey();
      const probs = planner.actionProbs(obs, 1, { stateKeys: keys, envs: [e], simulator });
      return Array.from({ length: nActions }, (_, a) => a).filter((a) => probs[a]! > 0);
    },
    PINNED_EPISODES,
    deriveSeed(seed, SALT.countingPinned),
    optimalReturns,
  );
  planner.dispose();
  const checkOn = optimalReturns.slice(0, 8);
  const ties = countingRate(
    () => make(env, { ...test.envConfig, variant: test.variant }, { reward: test.reward }),
    pinned,
    event,
    policies,
    deriveSeed(seed, SALT.countingTies),
    1,
    {
      makeTrainEnv: () => make(env, { ...arm.train.envConfig, variant: arm.train.variant }, { reward: arm.train.reward }),
      seeds: checkOn.map((e) => e.seed),
      optimum: checkOn.map((e) => e.return),
    },
  );
  return { ties, checkOn, pinnedEpisodes: PINNED_EPISODES };
}

/** Optimal train episodes whose observations the tie measure pins. */
const PINNED_EPISODES = 50;

/**
 * Why the measures disagree. They rest on different train episodes: ties pins the optimal action on every
 * observation of PINNED_EPISODES optimal train episodes and is uniform elsewhere; the policy measure keeps
 * the policies optimal on the first `checked` of them and is free on every other observation. Where the train
 * variant draws a layout rarely (dose-response exposure 0.01), the pinned episodes can meet it while the
 * checked ones do not: ties then copies the optimal action of the rare layout at test, the policy measure
 * leaves it free. The coverage (test steps on pinned observations) says how much of the test ties pinned.
 */
function disagreement(ties: CountingResult, policies: PolicyCountingResult, checked: number, pinned: number): string | null {
  if (policies.rate === null || !Number.isFinite(ties.rate) || Math.abs(ties.rate - policies.rate) <= 0.5) return null;
  return (
    `ties ${(100 * ties.rate).toFixed(1)}% vs policies ${(100 * policies.rate).toFixed(1)}%: ties pins the optimal action on the ` +
    `observations of ${pinned} optimal train episodes (${(100 * ties.pinnedCoverage).toFixed(0)}% of its test steps fall on them), ` +
    `the policy measure checks optimality on ${checked} of them and leaves every other observation free; ` +
    "a train layout drawn rarely can be in the first set and not the second"
  );
}
