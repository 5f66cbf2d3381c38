/**
 * When the counting prediction does not apply: a test side that draws a new
 * world at every reset (Maze-v0: a new maze each episode) and whose states
 * training never met. There every train-optimal policy is free on almost
 * every test state, so a count over train-optimal policies is a uniform
 * random function on unseen mazes, and drawing such functions one maze at a
 * time is expensive (a planner-only maze probe spent most of its time there).
 * Measured cheaply before any counting: the share of test resets that start
 * in a distinct observation, and the share of the test side's observations
 * (uniform random play) that uniform random play on the train side never met.
 */
import type { Env } from "../../envs/core.ts";
import { Rng, deriveSeed } from "../../envs/rng.ts";
import { obsKey } from "./counting.ts";

/** Test resets looked at, and the share of them that must start in distinct observations (a new world per episode). */
export const NOVELTY_RESETS = 100;
export const NEW_WORLDS_MIN = 0.9;
/** The share of test observations unseen in training from which counting is declared not applicable. */
export const UNSEEN_MIN = 0.95;
/** Uniform random episodes played on each side to collect observations. */
const TRAIN_EPISODES = 200;
const TEST_EPISODES = 20;

export interface Novelty {
  /** Of NOVELTY_RESETS test resets, how many start in an observation no other reset gave. */
  distinctStarts: number;
  resets: number;
  /** Share of the distinct observations of TEST_EPISODES uniform test episodes absent from TRAIN_EPISODES uniform train episodes (null: not measured, the test side repeats its worlds). */
  unseen: number | null;
  testStates: number;
  trainStates: number;
}

/** Distinct observations of `episodes` uniform random episodes (reset seeds derived from `seed`). */
function observationsOf(env: Env, episodes: number, seed: number): Set<string> {
  const seen = new Set<string>();
  const rng = new Rng(seed);
  const n = env.actionSpace.n;
  for (let e = 0; e < episodes; e++) {
    let { obs } = env.reset({ seed: deriveSeed(seed, e) });
    for (;;) {
      seen.add(obsKey(obs));
      const r = env.step(rng.int(n));
      if (r.terminated || r.truncated) break;
      obs = r.obs;
    }
  }
  return seen;
}

/** How new the test side is to training (see the top of the file). */
export function measureNovelty(makeTrain: () => Env, makeTest: () => Env, seed: number): Novelty {
  const test = makeTest();
  const starts = new Map<string, number>();
  for (let i = 0; i < NOVELTY_RESETS; i++) {
    const k = obsKey(test.reset({ seed: deriveSeed(seed, 1000 + i) }).obs);
    starts.set(k, (starts.get(k) ?? 0) + 1);
  }
  const distinctStarts = [...starts.values()].filter((c) => c === 1).length;
  const out: Novelty = { distinctStarts, resets: NOVELTY_RESETS, unseen: null, testStates: 0, trainStates: 0 };
  if (distinctStarts < NEW_WORLDS_MIN * NOVELTY_RESETS) {
    test.close?.();
    return out;
  }
  const train = makeTrain();
  const seen = observationsOf(train, TRAIN_EPISODES, deriveSeed(seed, 1));
  const met = observationsOf(test, TEST_EPISODES, deriveSeed(seed, 2));
  train.close?.();
  test.close?.();
  let unseen = 0;
  for (const k of met) if (!seen.has(k)) unseen++;
  return { ...out, unseen: met.size ? unseen / met.size : 0, testStates: met.size, trainStates: seen.size };
}

/** The sentence the table shows where counting does not apply, or null where it does. */
export function notApplicableReason(n: Novelty): string | null {
  if (n.unseen === null || n.unseen < UNSEEN_MIN) return null;
  return (
    `n/a: ${(100 * n.unseen).toFixed(1)}% of test states unseen in training (${n.testStates} observations of ${TEST_EPISODES} uniform test episodes ` +
    `against ${n.trainStates} of ${TRAIN_EPISODES} train episodes; ${n.distinctStarts} of ${n.resets} test resets start in a new world): ` +
    "every train-optimal policy is free there, so a count over them is a uniform random function on unseen worlds"
  );
}
