/**
 * Tabular models for the planner: a compact MDP table (CSR: per state-action
 * a list of weighted outcomes), value iteration over it (finite-horizon and
 * discounted), and the learned model built from experience with R-max
 * optimism. Keyed by env.stateKey(); the model never sees observations.
 */

/** A finite MDP in compressed rows: outcomes of state-action sa live in [saStart[sa], saStart[sa+1]). */
export interface TabularMdp {
  nStates: number;
  nActions: number;
  /** Length nStates*nActions+1. */
  saStart: Int32Array;
  /** Successor state index, -1 where the outcome is terminal. */
  next: Int32Array;
  reward: Float64Array;
  /** Probability of each outcome (sums to 1 within a state-action). */
  prob: Float64Array;
}

/**
 * Incremental builder of a TabularMdp: outcomes are merged by (next, reward).
 * The first outcome of each state-action lives in flat typed arrays (all of
 * them in a deterministic env); further outcomes in a side map.
 */
export class MdpBuilder {
  private nSa = 0;
  private firstNext = new Int32Array(1024);
  private firstReward = new Float64Array(1024);
  /** 0 where (s, a) has no outcome yet. */
  private firstCount = new Int32Array(1024);
  /** Per state-action with more than one outcome: flat [next, reward, count] triples after the first. */
  private more = new Map<number, number[]>();
  constructor(readonly nActions: number) {}

  get nStates(): number {
    return this.nSa / this.nActions;
  }

  addState(): number {
    const end = this.nSa + this.nActions;
    if (end > this.firstNext.length) {
      const cap = Math.max(end, this.firstNext.length * 2);
      const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
        const b = make(cap);
        b.set(a);
        return b;
      };
      this.firstNext = grow(this.firstNext, (n) => new Int32Array(n));
      this.firstReward = grow(this.firstReward, (n) => new Float64Array(n));
      this.firstCount = grow(this.firstCount, (n) => new Int32Array(n));
    }
    this.nSa = end;
    return this.nStates - 1;
  }

  /** Records one sampled outcome of (s, a); next = -1 for a terminal outcome. */
  record(s: number, a: number, next: number, reward: number): void {
    const sa = s * this.nActions + a;
    if (this.firstCount[sa] === 0 || (this.firstNext[sa] === next && this.firstReward[sa] === reward)) {
      this.firstNext[sa] = next;
      this.firstReward[sa] = reward;
      this.firstCount[sa]!++;
      return;
    }
    let row = this.more.get(sa);
    if (!row) this.more.set(sa, (row = []));
    for (let k = 0; k < row.length; k += 3) {
      if (row[k] === next && row[k + 1] === reward) {
        row[k + 2]!++;
        return;
      }
    }
    row.push(next, reward, 1);
  }

  /** The outcomes recorded for (s, a), as flat [next, reward, count] triples. */
  outcomes(s: number, a: number): number[] {
    const sa = s * this.nActions + a;
    if (this.firstCount[sa] === 0) return [];
    return [this.firstNext[sa]!, this.firstReward[sa]!, this.firstCount[sa]!, ...(this.more.get(sa) ?? [])];
  }

  /** Number of distinct (s, a, s') entries. */
  get transitions(): number {
    let n = 0;
    for (let sa = 0; sa < this.nSa; sa++) if (this.firstCount[sa]! > 0) n++;
    for (const row of this.more.values()) n += row.length / 3;
    return n;
  }

  build(): TabularMdp {
    const nSa = this.nSa;
    const saStart = new Int32Array(nSa + 1);
    for (let sa = 0; sa < nSa; sa++)
      saStart[sa + 1] = saStart[sa]! + (this.firstCount[sa]! > 0 ? 1 : 0) + (this.more.get(sa)?.length ?? 0) / 3;
    const m = saStart[nSa]!;
    const next = new Int32Array(m);
    const reward = new Float64Array(m);
    const prob = new Float64Array(m);
    for (let sa = 0; sa < nSa; sa++) {
      const c0 = this.firstCount[sa]!;
      if (c0 === 0) continue;
      const row = this.more.get(sa);
      let total = c0;
      if (row) for (let k = 2; k < row.length; k += 3) total += row[k]!;
      let o = saStart[sa]!;
      next[o] = this.firstNext[sa]!;
      reward[o] = this.firstReward[sa]!;
      prob[o++] = c0 / total;
      if (row) {
        for (let k = 0; k < row.length; k += 3, o++) {
          next[o] = row[k]!;
          reward[o] = row[k + 1]!;
          prob[o] = row[k + 2]! / total;
        }
      }
    }
    return { nStates: this.nStates, nActions: this.nActions, saStart, next, reward, prob };
  }
}

/**
 * Finite-horizon value iteration: V[h*S + s] is the optimal discounted return
 * from s with h steps left (V_0 = 0; nothing is earned past the horizon, a
 * terminal outcome is worth its reward only). Exact for the table's model.
 */
export function finiteHorizonValues(mdp: TabularMdp, horizon: number, discount: number): Float64Array {
  const S = mdp.nStates;
  const A = mdp.nActions;
  const { saStart, next, reward, prob } = mdp;
  const V = new Float64Array((horizon + 1) * S);
  for (let h = 1; h <= horizon; h++) {
    const prev = (h - 1) * S;
    const cur = h * S;
    for (let s = 0; s < S; s++) {
      let best = -Infinity;
      for (let a = 0, sa = s * A; a < A; a++, sa++) {
        let q = 0;
        for (let o = saStart[sa]!, end = saStart[sa + 1]!; o < end; o++) {
          const n = next[o]!;
          q += prob[o]! * (reward[o]! + (n < 0 ? 0 : discount * V[prev + n]!));
        }
        if (q > best) best = q;
      }
      V[cur + s] = best;
    }
  }
  return V;
}

/** Q(s, a) for all a with h steps left, from finiteHorizonValues' table. */
export function finiteHorizonQ(mdp: TabularMdp, V: Float64Array, s: number, h: number, discount: number, out: Float64Array): Float64Array {
  const S = mdp.nStates;
  const A = mdp.nActions;
  const prev = (h - 1) * S;
  for (let a = 0, sa = s * A; a < A; a++, sa++) {
    let q = 0;
    for (let o = mdp.saStart[sa]!, end = mdp.saStart[sa + 1]!; o < end; o++) {
      const n = mdp.next[o]!;
      q += mdp.prob[o]! * (mdp.reward[o]! + (n < 0 ? 0 : discount * V[prev + n]!));
    }
    out[a] = q;
  }
  return out;
}

/** Indices of the maxima of q (within a relative tolerance), ascending. */
export function argmaxAll(q: ArrayLike<number>, tol = 1e-9): number[] {
  let best = -Infinity;
  for (let a = 0; a < q.length; a++) if (q[a]! > best) best = q[a]!;
  const eps = tol * Math.max(1, Math.abs(best));
  const out: number[] = [];
  for (let a = 0; a < q.length; a++) if (q[a]! >= best - eps) out.push(a);
  return out;
}

/** Serialised LearnedModel (agent.json). */
export interface LearnedModelJson {
  nActions: number;
  /** stateKey of each state index. */
  keys: number[];
  /** Per state-action (s*A+a): visit count. */
  visits: number[];
  /** Per state-action: sum of rewards. */
  rewardSum: number[];
  /** Per state-action: flat [next, count] pairs; next = -1 for terminal. */
  outcomes: number[][];
  /** Values of the last plan, per state index. */
  values: number[];
}

export interface LearnedPlanStats {
  sweeps: number;
  residual: number;
}

/**
 * The learned tabular model: counts N(s,a,s'), mean reward R(s,a) and
 * terminal outcomes, from the agent's own transitions. Planning is
 * discounted value iteration with R-max optimism: a state-action tried fewer
 * than `optimismVisits` times is worth rmax/(1-discount) (it leads to a
 * fictitious state that pays rmax forever), so the greedy policy explores it.
 */
export class LearnedModel {
  readonly keys: number[] = [];
  private index = new Map<number, number>();
  private visits: number[] = [];
  private rewardSum: number[] = [];
  /** Per state-action, flat [next, count, ...] pairs (next = -1 for terminal); a plain array iterates fastest. */
  private outcomes: number[][] = [];
  /** Values of the last plan (per state index; states added since are worth vMax). */
  values = new Float64Array(0);

  constructor(readonly nActions: number) {}

  get nStates(): number {
    return this.keys.length;
  }

  stateIndex(key: number): number | undefined {
    return this.index.get(key);
  }

  private intern(key: number): number {
    let s = this.index.get(key);
    if (s === undefined) {
      s = this.keys.length;
      this.keys.push(key);
      this.index.set(key, s);
      for (let a = 0; a < this.nActions; a++) {
        this.visits.push(0);
        this.rewardSum.push(0);
        this.outcomes.push([]);
      }
    }
    return s;
  }

  /** Records one transition; returns the state-action's visit count after it. */
  observe(key: number, action: number, reward: number, nextKey: number, terminated: boolean): number {
    const s = this.intern(key);
    const n = terminated ? -1 : this.intern(nextKey);
    const sa = s * this.nActions + action;
    this.rewardSum[sa]! += reward;
    const out = this.outcomes[sa]!;
    let k = 0;
    while (k < out.length && out[k] !== n) k += 2;
    if (k < out.length) out[k + 1]!++;
    else out.push(n, 1);
    return ++this.visits[sa]!;
  }

  visitCount(key: number, action: number): number {
    const s = this.index.get(key);
    return s === undefined ? 0 : this.visits[s * this.nActions + action]!;
  }

  /** Number of distinct (s, a, s') entries. */
  get transitions(): number {
    let n = 0;
    for (const out of this.outcomes) n += out.length / 2;
    return n;
  }

  /** Number of state-actions visited at least m times. */
  knownCount(m: number): number {
    let n = 0;
    for (const v of this.visits) if (v >= m) n++;
    return n;
  }

  /** Q(s, a) under the model and the last plan's values (unplanned successors are worth vMax). */
  qValues(key: number, discount: number, vMax: number, m: number, out: Float64Array): Float64Array {
    const s = this.index.get(key);
    if (s === undefined) return out.fill(vMax);
    for (let a = 0; a < this.nActions; a++) out[a] = this.q(s * this.nActions + a, discount, vMax, m, this.values);
    return out;
  }

  private q(sa: number, discount: number, vMax: number, m: number, V: Float64Array): number {
    const n = this.visits[sa]!;
    if (n < m || n === 0) return vMax;
    let future = 0;
    const out = this.outcomes[sa]!;
    for (let k = 0; k < out.length; k += 2) {
      const next = out[k]!;
      if (next >= 0) future += out[k + 1]! * (next < V.length ? V[next]! : vMax);
    }
    return this.rewardSum[sa]! / n + (discount * future) / n;
  }

  /**
   * Discounted value iteration (Gauss-Seidel, warm-started from the last
   * plan) to a residual below tol, or maxSweeps sweeps.
   */
  plan(discount: number, rmax: number, m: number, tol = 1e-9, maxSweeps = 100_000): LearnedPlanStats {
    const S = this.nStates;
    const A = this.nActions;
    const vMax = rmax / (1 - discount);
    const V = new Float64Array(S);
    V.set(this.values.subarray(0, Math.min(S, this.values.length)));
    for (let s = this.values.length; s < S; s++) V[s] = vMax;
    const eps = tol * Math.max(1, Math.abs(vMax));
    let residual = Infinity;
    let sweeps = 0;
    while (sweeps < maxSweeps && residual > eps) {
      residual = 0;
      for (let s = 0; s < S; s++) {
        let best = -Infinity;
        for (let a = 0; a < A; a++) {
          const q = this.q(s * A + a, discount, vMax, m, V);
          if (q > best) best = q;
        }
        const d = Math.abs(best - V[s]!);
        if (d > residual) residual = d;
        V[s] = best;
      }
      sweeps++;
    }
    this.values = V;
    return { sweeps, residual };
  }

  toJSON(): LearnedModelJson {
    return {
      nActions: this.nActions,
      keys: [...this.keys],
      visits: [...this.visits],
      rewardSum: [...this.rewardSum],
      outcomes: this.outcomes.map((out) => [...out]),
      values: [...this.values],
    };
  }

  static fromJSON(json: LearnedModelJson): LearnedModel {
    const model = new LearnedModel(json.nActions);
    for (const key of json.keys) model.intern(key);
    model.visits = [...json.visits];
    model.rewardSum = [...json.rewardSum];
    model.outcomes = json.outcomes.map((flat) => [...flat]);
    model.values = Float64Array.from(json.values);
    return model;
  }
}
