/**
 * The named salts from which every experiment-level seed is derived
 * (`deriveSeed(seed, SALT.x)`): one table, so that no two random streams
 * share a salt by accident and a reader can find where each seed comes from.
 * The values are the ones used before they were named; changing one changes
 * results. (Agents derive their own streams from their seed: init 1, acting
 * 2, learning 3, in each agent file.)
 */
export const SALT = {
  /** A run's final evaluation episodes. */
  evaluation: 0x5eed,
  /** Probe: the reward-pursuit prediction's simulator-planner episodes on the test variant. */
  pursuit: 7,
  /** Probe: train-side evaluation episodes of each trained agent. */
  probeTrainSide: 101,
  /** Probe: test-side evaluation episodes (every test variant). */
  probeTestSide: 202,
  /** Probe: the draws of sampled evaluation (the agent's own policy; sides salted further). */
  probeSampling: 505,
  /** Probe: the reset of the scripted routes the knowledge columns rate. */
  probeRoutes: 606,
  /** Probe: the chance row's uniform draws. */
  probeChance: 707,
  /** Probe: the reset states whose reachable states bound an episode's return and performance. */
  probeRanges: 808,
  /** Probe: KL(train || test) of the policy's action distributions. */
  probeKL: 303,
  /** Probe: the extinction loop's env copies. */
  extinction: 404,
  /** Counting: optimal train episodes that pin observations to optimal actions. */
  countingPinned: 11,
  /** Counting, tie measure: the drawn policies. */
  countingTies: 13,
  /** Counting, policy measure: each policy's test episodes. */
  countingPolicyTest: 17,
  /** Counting, policy measure: the policies sampled when enumerating is too big. */
  countingPolicies: 19,
  /** Counting: the resets and uniform episodes that measure how new the test side is (probes/novelty.ts). */
  countingNovelty: 23,
  /** collectPinned: choosing among tied optimal actions. */
  pinnedTies: 0xc0,
  /** countingRate: test episode resets (xor-ed into the seed). */
  countingResets: 0x7e57,
  /** policyCounting: sampling once enumeration gives up. */
  policySampling: 0x9011c7,
} as const;
