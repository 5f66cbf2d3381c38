/**
 * The planner's search with the true simulator: a private copy of the live
 * env (made by the live env's own clone(), with no time limit: the planner
 * counts the steps left itself), an exact table when the reachable state set
 * is small, MCTS otherwise. Shared by every planner that plans with the
 * simulator; see agents/model-based/planner.ts for the method in full.
 */
import type { Env, EnvState } from "../../../envs/core.ts";
import type { Rng } from "../../../envs/rng.ts";
import { MdpBuilder, finiteHorizonQ, finiteHorizonValues, type TabularMdp } from "../models.ts";
import type { PlannerConfig } from "./config.ts";
import { PlannerError } from "./config.ts";

/** Time limit of the private copy: it never truncates; the planner counts steps left itself. */
const NO_TIME_LIMIT = 2 ** 30;

/**
 * A table this large is rebuilt, not extended, when a state outside it is met.
 * On an env that draws a new world each episode (Maze-v0) every world adds a
 * component the others never reach, and each extension reruns value iteration
 * over the whole table: without the bound the work per episode grows with the
 * worlds met, until the 16M state-step limit sends the planner to MCTS for good.
 * A rebuilt table holds the states reachable from the new state; on a
 * deterministic env their values are the ones the grown table gave.
 */
export const REBUILD_STATES = 1024;

export interface SearchOptions {
  objective: PlannerConfig["objective"];
  discount: number;
  /** Largest number of steps left the table is solved for. */
  horizon: number;
  maxStates: number;
  samples: number;
}

interface MctsResult {
  visits: Int32Array;
  q: Float64Array;
  rootValue: number;
}

class MctsNode {
  readonly n: Int32Array;
  readonly w: Float64Array;
  total = 0;
  readonly children: (Map<number, MctsNode> | undefined)[];
  constructor(nActions: number) {
    this.n = new Int32Array(nActions);
    this.w = new Float64Array(nActions);
    this.children = new Array(nActions);
  }
}

export class SimulatorModel {
  /** The private copy, stepped by every search. */
  readonly sim: Env;
  readonly nActions: number;
  /** Every step of the private copy (BFS, stochasticity check, MCTS, rollouts). */
  simSteps = 0;
  /** The reachable set exceeded maxStates (or the table would be too big): use MCTS. */
  tooLarge = false;
  stochastic = false;
  /** Time spent building and solving the table. */
  planMs = 0;
  /** Of which stepping the private copy (BFS and the stochasticity check). */
  searchMs = 0;
  private readonly keys = new Map<number, number>();
  private builder: MdpBuilder;
  /** Per state: its snapshots and the steps after which each was reached, as [snap, depth, snap, depth, ...]; null once solved. */
  private pools: (unknown[] | null)[] = [];
  /** Per state: how many of its snapshots have been expanded. */
  private expanded: number[] = [];
  private mdp: TabularMdp | null = null;
  private values: Float64Array | null = null;
  private readonly qBuf: Float64Array;

  /** `live`: an env made by make() (it knows how to clone itself); only its clone is ever stepped. */
  constructor(
    live: Env,
    readonly opts: SearchOptions,
  ) {
    if (!live.clone) throw new PlannerError(`planner: ${live.spec.id} cannot be cloned; the simulator model needs envs made by make()`);
    this.sim = live.clone({ maxEpisodeSteps: NO_TIME_LIMIT });
    // the search reads rewards, terminations and state keys, never an observation
    this.sim.setFreshObservations?.(false);
    this.sim.reset({ seed: 0 });
    this.nActions = this.sim.actionSpace.n;
    this.builder = new MdpBuilder(this.nActions);
    this.qBuf = new Float64Array(this.nActions);
  }

  get nStates(): number {
    return this.builder.nStates;
  }

  get transitions(): number {
    return this.builder.transitions;
  }

  private step(action: number): { reward: number; terminated: boolean } {
    this.simSteps++;
    const r = this.sim.step(action);
    return { reward: this.opts.objective === "performance" ? r.info.performance : r.reward, terminated: r.terminated };
  }

  // exhaustive: BFS over state keys, then finite-horizon value iteration

  /**
   * Makes sure the table covers the state reached by `snap` (key `key`):
   * builds it on first use, extends it from an unknown state. Returns false
   * when the reachable set is too large (the caller falls back to MCTS).
   */
  ensureTable(snap: EnvState, key: number): boolean {
    if (this.tooLarge) return false;
    if (this.keys.has(key) && this.values) return true;
    const t0 = performance.now();
    if (!this.keys.has(key) && this.nStates >= REBUILD_STATES) this.clearTable();
    const first = this.nStates === 0;
    const s = this.addState(key, snap, 0);
    let ok: boolean;
    if (first) {
      // one snapshot per state; keep a second (reached after more steps) to test for stochasticity
      ok = this.explore([s], 1, 2);
      if (ok && this.isStochastic()) {
        this.stochastic = true;
        ok = this.explore(
          Array.from({ length: this.nStates }, (_, i) => i),
          this.opts.samples,
          this.opts.samples,
        );
      }
    } else {
      const k = this.stochastic ? this.opts.samples : 1;
      ok = this.explore([s], k, k);
    }
    this.pools = this.pools.map(() => null);
    this.searchMs += performance.now() - t0;
    if (ok && (this.opts.horizon + 1) * this.nStates > 16_000_000) ok = false;
    if (!ok) {
      this.tooLarge = true;
      this.mdp = null;
      this.values = null;
      this.planMs += performance.now() - t0;
      return false;
    }
    this.mdp = this.builder.build();
    this.values = finiteHorizonValues(this.mdp, this.opts.horizon, this.opts.discount);
    this.planMs += performance.now() - t0;
    return true;
  }

  /** Forgets the table (states, transitions, values); the next ensureTable builds it afresh. */
  private clearTable(): void {
    this.keys.clear();
    this.builder = new MdpBuilder(this.nActions);
    this.pools = [];
    this.expanded = [];
    this.mdp = null;
    this.values = null;
    this.stochastic = false;
  }

  private addState(key: number, snap: EnvState, depth: number): number {
    const s = this.builder.addState();
    this.keys.set(key, s);
    this.pools.push([snap, depth]);
    this.expanded.push(0);
    return s;
  }

  /**
   * Expands queued states from up to `expandLimit` of their snapshots, adding
   * successors; states reached again after a new number of steps collect up to
   * `collectLimit` snapshots. False when maxStates is exceeded.
   */
  private explore(queue: number[], expandLimit: number, collectLimit: number): boolean {
    const A = this.nActions;
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      const pool = this.pools[s];
      if (!pool) continue;
      // the bound is re-read: a self-loop may add a snapshot of s while s is expanded
      for (let j = this.expanded[s]!; j < Math.min(pool.length / 2, expandLimit); j++) {
        const snap = pool[2 * j];
        const depth = (pool[2 * j + 1] as number) + 1;
        for (let a = 0; a < A; a++) {
          this.sim.restore(snap);
          const { reward, terminated } = this.step(a);
          if (terminated) {
            this.builder.record(s, a, -1, reward);
            continue;
          }
          const key = this.sim.stateKey();
          let n = this.keys.get(key);
          if (n === undefined) {
            if (this.nStates >= this.opts.maxStates) return false;
            n = this.addState(key, this.sim.snapshot(), depth);
            queue.push(n);
          } else if (
            this.offer(n, depth, collectLimit) &&
            this.expanded[n]! > 0 &&
            this.expanded[n]! < Math.min(this.pools[n]!.length / 2, expandLimit)
          ) {
            queue.push(n);
          }
          this.builder.record(s, a, n, reward);
        }
        this.expanded[s] = j + 1;
      }
    }
    return true;
  }

  /**
   * Steps the other snapshots of each state (round j: every state's j-th),
   * passing new snapshots on to successors, within a budget of about one more
   * BFS: any outcome unlike the first snapshot's means the env is stochastic.
   */
  private isStochastic(): boolean {
    const K = this.opts.samples;
    const budget = this.nStates * this.nActions + 4096;
    let steps = 0;
    for (let j = 1; j < K; j++) {
      let any = false;
      for (let s = 0; s < this.nStates; s++) {
        const pool = this.pools[s];
        if (!pool || pool.length / 2 <= j) continue;
        any = true;
        const depth = (pool[2 * j + 1] as number) + 1;
        for (let a = 0; a < this.nActions; a++) {
          this.sim.restore(pool[2 * j]);
          const { reward, terminated } = this.step(a);
          const next = terminated ? -1 : (this.keys.get(this.sim.stateKey()) ?? -2);
          const seen = this.builder.outcomes(s, a);
          if (seen.length !== 3 || seen[0] !== next || seen[1] !== reward) return true;
          if (next >= 0) this.offer(next, depth, K);
        }
        steps += this.nActions;
        if (steps >= budget) return false;
      }
      if (!any) break;
    }
    return false;
  }

  /** Keeps the current sim state as another snapshot of state n, if reached after a new number of steps. */
  private offer(n: number, depth: number, collectLimit: number): boolean {
    const p = this.pools[n];
    if (!p || p.length / 2 >= collectLimit) return false;
    for (let k = 1; k < p.length; k += 2) if (p[k] === depth) return false;
    p.push(this.sim.snapshot(), depth);
    return true;
  }

  /** Q(s, a) with `stepsLeft` steps left (capped at the table's horizon); null if the state isn't in the table. */
  tableQ(key: number, stepsLeft: number): Float64Array | null {
    const s = this.keys.get(key);
    if (s === undefined || !this.mdp || !this.values) return null;
    const h = Math.max(1, Math.min(this.opts.horizon, stepsLeft));
    return finiteHorizonQ(this.mdp, this.values, s, h, this.opts.discount, this.qBuf);
  }

  /** Optimal value of a state with `stepsLeft` steps left, or NaN. */
  tableValue(key: number, stepsLeft: number): number {
    const q = this.tableQ(key, stepsLeft);
    return q ? Math.max(...q) : NaN;
  }

  // MCTS (UCT) from a snapshot, random rollouts to the depth limit

  mcts(root: EnvState, depth: number, simulations: number, ucbC: number, rng: Rng): MctsResult {
    const A = this.nActions;
    const gamma = this.opts.discount;
    const tree = new MctsNode(A);
    let qMin = Infinity;
    let qMax = -Infinity;
    const pathNodes: MctsNode[] = [];
    const pathActions: number[] = [];
    const pathRewards: number[] = [];
    for (let sim = 0; sim < simulations; sim++) {
      this.sim.restore(root);
      pathNodes.length = pathActions.length = pathRewards.length = 0;
      let node = tree;
      let d = 0;
      let leaf = 0;
      // selection and expansion
      while (d < depth) {
        const a = this.select(node, ucbC, qMin, qMax, rng);
        const { reward, terminated } = this.step(a);
        d++;
        pathNodes.push(node);
        pathActions.push(a);
        pathRewards.push(reward);
        if (terminated) break;
        const key = this.sim.stateKey();
        const children = (node.children[a] ??= new Map());
        const child = children.get(key);
        if (!child) {
          children.set(key, new MctsNode(A));
          leaf = this.rollout(depth - d, rng);
          break;
        }
        node = child;
      }
      // backup
      let g = leaf;
      for (let i = pathNodes.length - 1; i >= 0; i--) {
        g = pathRewards[i]! + gamma * g;
        const n = pathNodes[i]!;
        const a = pathActions[i]!;
        n.n[a]!++;
        n.w[a]! += g;
        n.total++;
        const q = n.w[a]! / n.n[a]!;
        if (q < qMin) qMin = q;
        if (q > qMax) qMax = q;
      }
    }
    const q = new Float64Array(A);
    let rootValue = -Infinity;
    for (let a = 0; a < A; a++) {
      q[a] = tree.n[a]! > 0 ? tree.w[a]! / tree.n[a]! : -Infinity;
      if (q[a]! > rootValue) rootValue = q[a]!;
    }
    return { visits: Int32Array.from(tree.n), q, rootValue };
  }

  private select(node: MctsNode, c: number, qMin: number, qMax: number, rng: Rng): number {
    const A = this.nActions;
    let untried = 0;
    for (let a = 0; a < A; a++) if (node.n[a] === 0) untried++;
    if (untried > 0) {
      let k = rng.int(untried);
      for (let a = 0; a < A; a++) if (node.n[a] === 0 && k-- === 0) return a;
    }
    const range = qMax - qMin;
    const logN = Math.log(node.total);
    let best = 0;
    let bestScore = -Infinity;
    for (let a = 0; a < A; a++) {
      const q = node.w[a]! / node.n[a]!;
      const score = (range > 0 ? (q - qMin) / range : 0.5) + c * Math.sqrt(logN / node.n[a]!);
      if (score > bestScore) {
        bestScore = score;
        best = a;
      }
    }
    return best;
  }

  private rollout(steps: number, rng: Rng): number {
    let g = 0;
    let disc = 1;
    for (let t = 0; t < steps; t++) {
      const { reward, terminated } = this.step(rng.int(this.nActions));
      g += disc * reward;
      disc *= this.opts.discount;
      if (terminated) break;
    }
    return g;
  }
}

/** Simulator models (private env copy + solved table) shared by planners with the same env and settings. */

/**
 * Solved simulator models shared by planners on the same envs and settings
 * (probes make many planners on one level). The cache holds knowledge, not
 * bookkeeping: each planner counts its own simulated steps and planning time
 * (`Counters`), so one run's figures never include another's.
 */
const simModels = new Map<string, SimulatorModel>();
const SIM_CACHE_SIZE = 8;

/** The shared model for envs made like `live` (its origin) with these settings. */
export function simulatorModel(live: Env, opts: SearchOptions): SimulatorModel {
  const origin = live.origin;
  if (!origin) throw new PlannerError(`planner: ${live.spec.id} has no origin; the simulator model needs envs made by make()`);
  const key = JSON.stringify([
    origin.id,
    origin.config,
    origin.reward,
    opts.objective,
    opts.discount,
    opts.horizon,
    opts.maxStates,
    opts.samples,
  ]);
  let model = simModels.get(key);
  if (model) {
    simModels.delete(key); // re-insert: most recently used last
  } else {
    model = new SimulatorModel(live, opts);
    if (simModels.size >= SIM_CACHE_SIZE) {
      const oldest = simModels.keys().next().value as string;
      simModels.get(oldest)!.sim.close?.();
      simModels.delete(oldest);
    }
  }
  simModels.set(key, model);
  return model;
}

/** Drops every cached plan (benchmarks, tests). */
export function clearPlanCache(): void {
  for (const m of simModels.values()) m.sim.close?.();
  simModels.clear();
}

/** One planner's share of the work done on shared models. */
export interface Counters {
  simSteps: number;
  planMs: number;
}

/** Runs `f` on `model`, adding the simulated steps and table-building time it took to `counters`. */
export function counted<T>(model: SimulatorModel, counters: Counters, f: () => T): T {
  const steps = model.simSteps;
  const ms = model.planMs;
  try {
    return f();
  } finally {
    counters.simSteps += model.simSteps - steps;
    counters.planMs += model.planMs - ms;
  }
}
