/**
 * The reinforcement ledger: how strongly each visited (state, action) was
 * reinforced, in one unit for every learner. For every update and every
 * sample with a state key, it adds learning rate x the sample's actual
 * coefficient on grad log pi(a|s) in the loss that was differentiated to
 * entries[stateKey][action]:
 *   PPO: ratio x advantage / minibatch size (the advantage as used, i.e.
 *        normalised when normAdv), only where the clip passes gradient,
 *        summed over every epoch and minibatch of the update;
 *   REINFORCE: weight / batch size (weight = (G - V(s)) or G, scaled by the
 *        running return std when normalizeReturns).
 * Read this way, reward is a per-sample learning rate, and the ledger shows
 * where it went. (The optimiser, Adam, rescales the summed gradient per
 * parameter; the ledger records what went into that sum.)
 *
 * A LedgerDelta (agents/core.ts) is one update's sum; a Ledger keeps the
 * running total. Both are plain JSON. Samples with state key -1 (envs
 * without state keys) are skipped.
 */
import type { LedgerDelta } from "../core.ts";

/** Accumulates one update's samples, then builds its LedgerDelta. */
export class LedgerBuilder {
  private readonly entries = new Map<number, Float64Array>();

  constructor(readonly nActions: number) {}

  /** Adds lr x weight to (stateKey, action); a state key of -1 is skipped. */
  add(stateKey: number, action: number, weight: number, lr: number): void {
    if (stateKey === -1) return;
    if (!(action >= 0 && action < this.nActions)) throw new RangeError(`ledger: action ${action} is outside 0..${this.nActions - 1}`);
    let row = this.entries.get(stateKey);
    if (!row) this.entries.set(stateKey, (row = new Float64Array(this.nActions)));
    row[action] += lr * weight;
  }

  /** Adds samples 0..n-1 of parallel arrays. */
  addBatch(stateKeys: ArrayLike<number>, actions: ArrayLike<number>, weights: ArrayLike<number>, lr: number, n = weights.length): void {
    for (let i = 0; i < n; i++) this.add(stateKeys[i]!, actions[i]!, weights[i]!, lr);
  }

  build(): LedgerDelta {
    const entries: Record<string, number[]> = {};
    // numeric order of state keys: stable output for tests and diffs
    const keys = [...this.entries.keys()].sort((a, b) => a - b);
    for (const k of keys) entries[String(k)] = Array.from(this.entries.get(k)!);
    return withTotals(entries);
  }
}

/** A delta with no samples. */
export function emptyLedger(): LedgerDelta {
  return { entries: {}, total: 0, totalAbs: 0 };
}

/** Recomputes total (signed sum) and totalAbs (sum of |entry|) from the entries. */
export function withTotals(entries: Record<string, number[]>): LedgerDelta {
  let total = 0;
  let totalAbs = 0;
  for (const row of Object.values(entries)) {
    for (const x of row) {
      total += x;
      totalAbs += Math.abs(x);
    }
  }
  return { entries, total, totalAbs };
}

/** Adds `delta` into `into` (in place) and returns it; totals are recomputed over the merged entries. */
export function mergeLedger(into: LedgerDelta, delta: LedgerDelta): LedgerDelta {
  for (const [k, row] of Object.entries(delta.entries)) {
    const dst = into.entries[k];
    if (!dst) into.entries[k] = [...row];
    else {
      if (dst.length !== row.length) throw new RangeError(`ledger: state ${k} has ${dst.length} actions here, ${row.length} in the delta`);
      for (let a = 0; a < row.length; a++) dst[a]! += row[a]!;
    }
  }
  const t = withTotals(into.entries);
  into.total = t.total;
  into.totalAbs = t.totalAbs;
  return into;
}

/** The running total over updates; serialisable with toJSON / Ledger.fromJSON. */
export class Ledger {
  total: LedgerDelta = emptyLedger();
  /** Updates recorded. */
  updates = 0;

  record(delta: LedgerDelta): void {
    mergeLedger(this.total, delta);
    this.updates++;
  }

  toJSON(): { updates: number; total: LedgerDelta } {
    return { updates: this.updates, total: this.total };
  }

  static fromJSON(json: { updates: number; total: LedgerDelta }): Ledger {
    const l = new Ledger();
    l.updates = json.updates;
    l.total = withTotals(structuredClone(json.total.entries));
    return l;
  }
}
