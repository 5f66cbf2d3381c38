/**
 * The counting prediction (the essay's counting argument, measured): sample
 * policies uniformly among the functions from observations to actions that
 * are optimal on every observation seen in optimal train-variant trajectories
 * (uniform among tied optimal actions there) and arbitrary (uniform, fixed per
 * observation) elsewhere; report the fraction that show the event at test.
 */
import type { Env } from "../../envs/core.ts";
import { Rng, deriveSeed } from "../../envs/rng.ts";
import { SALT } from "../seeds.ts";
import { observationKey } from "../../agents/shared/obskey.ts";

/** A stable key for an observation (agents/shared/obskey.ts, as a string for the maps below). */
export const obsKey = (obs: Float32Array): string => String(observationKey(obs));

/**
 * Observation -> the optimal actions there (ties included), on every
 * observation that optimal train episodes visit; the episodes follow a
 * uniformly drawn optimal action, so every optimal route gets visited.
 */
export function collectPinned(
  env: Env,
  optimalActions: (obs: Float32Array, env: Env) => number[],
  episodes: number,
  seed: number,
  returns: { seed: number; return: number }[] = [],
): Map<string, number[]> {
  const pinned = new Map<string, number[]>();
  const rng = new Rng(deriveSeed(seed, SALT.pinnedTies));
  for (let ep = 0; ep < episodes; ep++) {
    let { obs } = env.reset({ seed: deriveSeed(seed, ep) });
    let ret = 0;
    for (;;) {
      const key = obsKey(obs);
      let best = pinned.get(key);
      if (!best) {
        best = optimalActions(obs, env);
        if (best.length === 0) throw new Error("collectPinned: the optimal policy returned no action");
        pinned.set(key, best);
      }
      const r = env.step(best[rng.int(best.length)]!);
      ret += r.reward;
      if (r.terminated || r.truncated) break;
      obs = r.obs;
    }
    returns.push({ seed: deriveSeed(seed, ep), return: ret });
  }
  return pinned;
}

export interface CountingResult {
  /** Fraction of sampled policies whose test episode shows the event. */
  rate: number;
  policies: number;
  /** Observations pinned by the optimal train trajectories. */
  pinned: number;
  /** Mean fraction of test steps whose observation was pinned (how much training constrains test behaviour). */
  pinnedCoverage: number;
  /** Fraction of drawn policies that were optimal on the train check (1 without a check). */
  acceptance: number;
}

/**
 * The train-side check that makes a drawn policy an optimal one: a stationary
 * policy that picks, at each observation, an action that is optimal there can
 * still loop where rewards tie (dawdling before a goal costs nothing), so
 * each drawn policy must also reach the optimal return on these train episodes.
 */
export interface OptimalityCheck {
  makeTrainEnv: () => Env;
  seeds: number[];
  /** The optimal return of each of those episodes. */
  optimum: number[];
}

/** Draws per sampled policy before giving up on finding an optimal one. */
const MAX_DRAWS = 200;

/** A policy: one fixed action per observation (optimal where pinned, uniform elsewhere), drawn lazily. */
function drawPolicy(pinned: Map<string, number[]>, n: number, rng: Rng): (obs: Float32Array) => { a: number; wasPinned: boolean } {
  const chosen = new Map<string, number>();
  return (obs) => {
    const key = obsKey(obs);
    const best = pinned.get(key);
    let a = chosen.get(key);
    if (a === undefined) {
      a = best ? best[rng.int(best.length)]! : rng.int(n);
      chosen.set(key, a);
    }
    return { a, wasPinned: best !== undefined };
  };
}

function episodeReturn(env: Env, policy: (obs: Float32Array) => { a: number }, seed: number): number {
  let { obs } = env.reset({ seed });
  let ret = 0;
  for (;;) {
    const r = env.step(policy(obs).a);
    ret += r.reward;
    if (r.terminated || r.truncated) return ret;
    obs = r.obs;
  }
}

/**
 * Samples `policies` policies (rejecting, when `check` is given, those not
 * optimal on the train episodes, up to MAX_DRAWS draws each); each plays
 * `episodesPerPolicy` test episodes; counts those showing `event` in any.
 */
export function countingRate(
  makeTestEnv: () => Env,
  pinned: Map<string, number[]>,
  event: string,
  policies: number,
  seed: number,
  episodesPerPolicy = 1,
  check?: OptimalityCheck,
): CountingResult {
  const env = makeTestEnv();
  const trainEnv = check?.makeTrainEnv();
  const n = env.actionSpace.n;
  let shows = 0;
  let coverage = 0;
  let drawn = 0;
  let accepted = 0;
  for (let p = 0; p < policies; p++) {
    const rng = new Rng(deriveSeed(seed, p));
    let policy = drawPolicy(pinned, n, rng);
    drawn++;
    if (check && trainEnv) {
      let optimal = false;
      for (let attempt = 0; attempt < MAX_DRAWS; attempt++) {
        if (attempt > 0) {
          policy = drawPolicy(pinned, n, rng);
          drawn++;
        }
        optimal = check.seeds.every((s, i) => episodeReturn(trainEnv, policy, s) >= check.optimum[i]! - 1e-6);
        if (optimal) break;
      }
      // no optimal policy found in MAX_DRAWS draws: this sample is left out, not counted as non-optimal
      if (!optimal) continue;
    }
    accepted++;
    let showed = false;
    let steps = 0;
    let pinnedSteps = 0;
    for (let ep = 0; ep < episodesPerPolicy; ep++) {
      let { obs } = env.reset({ seed: deriveSeed(seed ^ SALT.countingResets, p * episodesPerPolicy + ep) });
      for (;;) {
        const { a, wasPinned } = policy(obs);
        if (wasPinned) pinnedSteps++;
        const r = env.step(a);
        steps++;
        if (r.info.events.includes(event)) showed = true;
        if (r.terminated || r.truncated) break;
        obs = r.obs;
      }
    }
    if (showed) shows++;
    coverage += steps ? pinnedSteps / steps : 0;
  }
  env.close?.();
  trainEnv?.close?.();
  return {
    rate: accepted ? shows / accepted : NaN,
    policies: accepted,
    pinned: pinned.size,
    pinnedCoverage: accepted ? coverage / accepted : NaN,
    acceptance: accepted / drawn,
  };
}

// ---------------------------------------------------------------- the policy-uniform measure

/**
 * The counting argument's own measure: uniform over deterministic stationary
 * policies (functions from observations to actions) that are optimal on the
 * train variant, i.e. reach the optimal return on every check episode.
 * Exhaustive when the policies are few enough to enumerate (every function on
 * the observations reachable in the train and test variants); otherwise
 * sampled uniformly over all functions and kept when optimal, with the
 * acceptance (kept / drawn) stated.
 */
export interface PolicyCountingResult {
  mode: "exhaustive" | "sampled";
  /** Observations the policies are functions of (reachable in either variant); null when sampled without enumerating them. */
  observations: number | null;
  /** Policies enumerated or drawn. */
  drawn: number;
  /** Of those, optimal on every train check episode. */
  optimal: number;
  /** Of the optimal, how many show the event at test. */
  showing: number;
  /** showing / optimal; null when no drawn policy was optimal. */
  rate: number | null;
  acceptance: number;
  /** Behaviour classes of the optimal policies' test episodes, when a classifier is given. */
  behaviours?: Record<string, number>;
  /** Test-episode performance of the optimal policies: value -> number of policies. */
  performance: Record<string, number>;
}

export interface PolicyCountingOptions {
  makeTrainEnv: () => Env;
  makeTestEnv: () => Env;
  event: string;
  /** Train check episodes (reset seeds) and the optimal return of each. */
  checkSeeds: number[];
  optimum: number[];
  /** Test episode seed of the policies (one episode each). */
  testSeed: number;
  seed: number;
  /** Enumerate with at most this many branches (each replays the episodes), and at most `exhaustiveSteps` env steps. */
  exhaustiveMax?: number;
  exhaustiveSteps?: number;
  /** Sampled mode: stop after this many optimal policies, or this many draws. */
  samples?: number;
  maxDraws?: number;
  /** States explored per variant when enumerating observations; more means sampled mode. */
  maxStates?: number;
  classify?: (events: Record<string, number>) => string;
}

/**
 * Reachable observations, as a map from state key to observation index (plus
 * the observation keys), by breadth-first search over states with
 * snapshot/restore from each reset seed. Null when the states exceed
 * `maxStates` or the observation is not a function of the state key (an
 * observed clock), where enumerating is not possible.
 */
function reachableObservations(
  makeEnvs: (() => Env)[],
  seeds: number[],
  maxStates: number,
): { byState: Map<number, number>[]; count: number } | null {
  const obsIndex = new Map<string, number>();
  const byState: Map<number, number>[] = [];
  for (const mk of makeEnvs) {
    const mine = new Map<number, number>();
    byState.push(mine);
    const env = mk();
    const n = env.actionSpace.n;
    const seen = new Map<number, string>();
    let clash = false;
    const queue: unknown[] = [];
    const visit = (obs: Float32Array): boolean => {
      const sk = env.stateKey();
      const ok = obsKey(obs);
      const prev = seen.get(sk);
      if (prev !== undefined) {
        if (prev !== ok) clash = true;
        return false;
      }
      seen.set(sk, ok);
      if (!obsIndex.has(ok)) obsIndex.set(ok, obsIndex.size);
      mine.set(sk, obsIndex.get(ok)!);
      return true;
    };
    for (const s of seeds) {
      const { obs } = env.reset({ seed: s });
      if (visit(obs)) queue.push(env.snapshot());
    }
    while (queue.length) {
      if (seen.size > maxStates || clash) {
        env.close?.();
        return null;
      }
      const state = queue.shift()!;
      for (let a = 0; a < n; a++) {
        env.restore(state);
        const r = env.step(a);
        if (r.terminated) continue;
        if (visit(r.obs)) queue.push(env.snapshot());
      }
    }
    env.close?.();
    if (clash) return null;
  }
  return { byState, count: obsIndex.size };
}

/** Env steps played by policyCounting's episodes (its enumeration budget reads it). */
let stepsTaken = 0;

/** One episode of a policy given as an action per observation index (or drawn lazily per observation key). */
function playEpisode(
  env: Env,
  variant: number,
  seed: number,
  actionOf: (obs: Float32Array, variant: number, stateKey: number) => number,
): { ret: number; perf: number; events: Record<string, number> } {
  let { obs } = env.reset({ seed });
  let ret = 0;
  let perf = 0;
  const events: Record<string, number> = {};
  for (;;) {
    stepsTaken++;
    const r = env.step(actionOf(obs, variant, env.stateKey()));
    ret += r.reward;
    perf += r.info.performance;
    for (const e of r.info.events) events[e] = (events[e] ?? 0) + 1;
    if (r.terminated || r.truncated) return { ret, perf, events };
    obs = r.obs;
  }
}

/** Thrown inside the enumeration when it outgrows its budget. */
class TooManyNodes extends Error {}

/** Records a policy's outcome into a result, with a weight (the number of policies it stands for). */
type Record_ = (weight: number, optimal: boolean, t?: { perf: number; events: Record<string, number> }) => void;
type Reach = NonNullable<ReturnType<typeof reachableObservations>>;

function blankResult(o: PolicyCountingOptions, mode: PolicyCountingResult["mode"], reach: Reach | null): PolicyCountingResult {
  return {
    mode,
    observations: reach ? reach.count : null,
    drawn: 0,
    optimal: 0,
    showing: 0,
    rate: null,
    acceptance: 0,
    performance: {},
    ...(o.classify ? { behaviours: {} } : {}),
  };
}

/** A recorder that adds weighted policy outcomes into `out`. */
function recorder(o: PolicyCountingOptions, out: PolicyCountingResult): Record_ {
  return (weight, optimal, t) => {
    out.drawn += weight;
    if (!optimal || !t) return;
    out.optimal += weight;
    if ((t.events[o.event] ?? 0) > 0) out.showing += weight;
    const p = String(Math.round(t.perf * 1e6) / 1e6);
    out.performance[p] = (out.performance[p] ?? 0) + weight;
    if (o.classify && out.behaviours) {
      const b = o.classify(t.events);
      out.behaviours[b] = (out.behaviours[b] ?? 0) + weight;
    }
  };
}

/**
 * Exact count over all n^observations functions without visiting each: plays the check and test episodes
 * with actions assigned only where an episode first needs one, branches there over every action, and lets
 * each finished branch stand for the n^(unassigned) policies that differ only where no episode looked.
 * Throws TooManyNodes when it outgrows its budget.
 */
function countExactly(o: PolicyCountingOptions, reach: Reach, train: Env, test: Env, record: Record_): void {
  const n = train.actionSpace.n;
  const assign = new Int32Array(reach.count).fill(-1);
  const maxNodes = o.exhaustiveMax ?? 1 << 17;
  // env steps the enumeration may spend (each node replays its episodes) before it gives way to sampling
  const maxSteps = o.exhaustiveSteps ?? 2_000_000;
  let nodes = 0;
  let missing = -1;
  const actionOf = (_obs: Float32Array, v: number, sk: number) => {
    const i = reach.byState[v]!.get(sk);
    if (i === undefined) throw new Error("policyCounting: an episode reached an observation the search did not");
    if (assign[i]! < 0) {
      missing = i;
      throw missingMarker;
    }
    return assign[i]!;
  };
  const explore = (visit: () => void): void => {
    if (++nodes > maxNodes || stepsTaken > maxSteps) throw new TooManyNodes();
    missing = -1;
    try {
      visit();
    } catch (e) {
      if (e !== missingMarker) throw e;
      const i = missing;
      for (let a = 0; a < n; a++) {
        assign[i] = a;
        explore(visit);
      }
      assign[i] = -1;
    }
  };
  const optimum = [...o.optimum];
  stepsTaken = 0;
  // first the best return any stationary policy reaches on each check episode: "optimal" is the best of
  // that and the given optimum, so a planner that fell short of it does not let suboptimal policies in
  explore(() => {
    const rets = o.checkSeeds.map((s) => playEpisode(train, 0, s, actionOf).ret);
    rets.forEach((r, i) => {
      if (r > optimum[i]!) optimum[i] = r;
    });
  });
  nodes = 0;
  stepsTaken = 0;
  const unassigned = () => {
    let k = 0;
    for (const a of assign) if (a < 0) k++;
    return k;
  };
  explore(() => {
    let optimal = true;
    for (let i = 0; i < o.checkSeeds.length && optimal; i++) {
      if (playEpisode(train, 0, o.checkSeeds[i]!, actionOf).ret < optimum[i]! - 1e-6) optimal = false;
    }
    const t = optimal ? playEpisode(test, 1, o.testSeed, actionOf) : undefined;
    record(n ** unassigned(), optimal, t);
  });
}

/** Uniform functions drawn lazily (one fixed action per observation, the same in both variants), kept when optimal. */
function countBySampling(o: PolicyCountingOptions, reach: Reach | null, train: Env, test: Env, out: PolicyCountingResult): void {
  const n = train.actionSpace.n;
  const record = recorder(o, out);
  const rng = new Rng(deriveSeed(o.seed, SALT.policySampling));
  const samples = o.samples ?? 500;
  const maxDraws = o.maxDraws ?? 2_000;
  while (out.optimal < samples && out.drawn < maxDraws) {
    // observations by index where the search found them all, else by their bytes
    const chosen = new Map<string | number, number>();
    const actionOf = (obs: Float32Array, v: number, sk: number) => {
      const k = (reach && reach.byState[v]!.get(sk)) ?? obsKey(obs);
      let a = chosen.get(k);
      if (a === undefined) {
        a = rng.int(n);
        chosen.set(k, a);
      }
      return a;
    };
    let optimal = true;
    for (let i = 0; i < o.checkSeeds.length && optimal; i++) {
      if (playEpisode(train, 0, o.checkSeeds[i]!, actionOf).ret < o.optimum[i]! - 1e-6) optimal = false;
    }
    record(1, optimal, optimal ? playEpisode(test, 1, o.testSeed, actionOf) : undefined);
  }
}

export function policyCounting(o: PolicyCountingOptions): PolicyCountingResult {
  const train = o.makeTrainEnv();
  const test = o.makeTestEnv();
  const reach = reachableObservations([o.makeTrainEnv, o.makeTestEnv], [...o.checkSeeds, o.testSeed], o.maxStates ?? 5000);
  let out: PolicyCountingResult | null = null;
  if (reach) {
    const exact = blankResult(o, "exhaustive", reach);
    try {
      countExactly(o, reach, train, test, recorder(o, exact));
      out = exact;
    } catch (e) {
      if (!(e instanceof TooManyNodes)) throw e;
    }
  }
  if (!out) {
    out = blankResult(o, "sampled", reach);
    countBySampling(o, reach, train, test, out);
  }
  train.close?.();
  test.close?.();
  out.rate = out.optimal ? out.showing / out.optimal : null;
  out.acceptance = out.drawn ? out.optimal / out.drawn : 0;
  return out;
}

const missingMarker = new Error("unassigned observation");
