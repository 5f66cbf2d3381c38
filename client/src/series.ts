/**
 * Data kept for charts, bounded in size: a run may produce millions of
 * episodes, but each chart holds at most `cap` points per series.
 */

/**
 * Rows of (x, named columns), downsampled by merging adjacent buckets in
 * pairs whenever the number of buckets reaches `cap`. Appending is O(1)
 * amortised; each bucket holds the mean of the rows it covers and the last x.
 * Missing values (a metric absent from some rows) do not count in the mean.
 */
export class SeriesTable {
  readonly cap: number;
  /** Raw rows per full bucket (doubles on each merge). */
  private size = 1;
  private xs: number[] = [];
  private sums = new Map<string, number[]>();
  private counts = new Map<string, number[]>();
  private filled: number[] = [];
  /** Total raw rows pushed. */
  rows = 0;
  /** Last x pushed (NaN if none). */
  lastX = Number.NaN;
  private version = 0;

  constructor(cap = 2000) {
    this.cap = Math.max(8, cap - (cap % 2));
  }

  get columns(): string[] {
    return [...this.sums.keys()];
  }

  /** Changes whenever data changes; charts use it to skip needless redraws. */
  get revision(): number {
    return this.version;
  }

  clear(): void {
    this.size = 1;
    this.xs = [];
    this.sums.clear();
    this.counts.clear();
    this.filled = [];
    this.rows = 0;
    this.lastX = Number.NaN;
    this.version++;
  }

  push(x: number, values: Record<string, number | null | undefined>): void {
    const last = this.xs.length - 1;
    // rows at the same x (episodes of parallel env copies ending together) share a bucket
    const sameX = last >= 0 && this.xs[last] === x;
    if (last < 0 || (this.filled[last]! >= this.size && !sameX)) {
      this.xs.push(x);
      this.filled.push(0);
      for (const arr of this.sums.values()) arr.push(0);
      for (const arr of this.counts.values()) arr.push(0);
    }
    const i = this.xs.length - 1;
    this.xs[i] = x;
    for (const [key, v] of Object.entries(values)) {
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      let s = this.sums.get(key);
      let c = this.counts.get(key);
      if (!s || !c) {
        s = new Array<number>(this.xs.length).fill(0);
        c = new Array<number>(this.xs.length).fill(0);
        this.sums.set(key, s);
        this.counts.set(key, c);
      }
      s[i]! += v;
      c[i]! += 1;
    }
    this.filled[i]!++;
    this.rows++;
    this.lastX = x;
    this.version++;
    if (this.filled[i]! >= this.size && this.xs.length >= this.cap) this.merge();
  }

  /** Halves the number of buckets: pairs (0,1), (2,3), ... become one. */
  private merge(): void {
    const n = this.xs.length;
    const half = Math.ceil(n / 2);
    // an odd last bucket stays on its own
    const pair = (arr: number[]) => Array.from({ length: half }, (_, j) => arr[2 * j]! + (2 * j + 1 < n ? arr[2 * j + 1]! : 0));
    this.xs = Array.from({ length: half }, (_, j) => this.xs[Math.min(2 * j + 1, n - 1)]!);
    this.filled = pair(this.filled);
    for (const key of [...this.sums.keys()]) {
      this.sums.set(key, pair(this.sums.get(key)!));
      this.counts.set(key, pair(this.counts.get(key)!));
    }
    this.size *= 2;
  }

  x(): number[] {
    return this.xs.slice();
  }

  /** Bucket means of one column (null where the bucket has no value). */
  column(key: string): (number | null)[] {
    const s = this.sums.get(key);
    const c = this.counts.get(key);
    if (!s || !c) return this.xs.map(() => null);
    return s.map((v, i) => (c[i]! > 0 ? v / c[i]! : null));
  }
}

/**
 * TensorBoard-style smoothing: exponential moving average with debiasing,
 * so the first points are not pulled towards zero. weight in [0, 1).
 */
export function smooth(ys: readonly (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return ys.slice();
  const out: (number | null)[] = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined || !Number.isFinite(y)) {
      out[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = last / (1 - weight ** n);
  }
  return out;
}

/**
 * Fraction of the last `window` episodes in which each event happened at
 * least once: the "event rates over time" the charts show.
 */
export class RollingEventRates {
  readonly window: number;
  private ring: string[][] = [];
  private next = 0;
  private counts = new Map<string, number>();
  private known = new Set<string>();

  constructor(window = 50, known: readonly string[] = []) {
    this.window = window;
    for (const e of known) this.known.add(e);
  }

  clear(): void {
    this.ring = [];
    this.next = 0;
    this.counts.clear();
  }

  /** Events to report even at rate 0. */
  addKnown(events: readonly string[]): void {
    for (const e of events) this.known.add(e);
  }

  /** Adds one episode's events; returns the current rate of every known event. */
  push(events: Record<string, number>): Record<string, number> {
    const present = Object.keys(events).filter((k) => (events[k] ?? 0) > 0);
    for (const e of present) this.known.add(e);
    if (this.ring.length < this.window) {
      this.ring.push(present);
    } else {
      for (const e of this.ring[this.next]!) this.counts.set(e, (this.counts.get(e) ?? 1) - 1);
      this.ring[this.next] = present;
      this.next = (this.next + 1) % this.window;
    }
    for (const e of present) this.counts.set(e, (this.counts.get(e) ?? 0) + 1);
    const n = this.ring.length;
    const rates: Record<string, number> = {};
    for (const e of this.known) rates[e] = (this.counts.get(e) ?? 0) / n;
    return rates;
  }

  get events(): string[] {
    return [...this.known];
  }
}

/** Per-cell aggregates of the reinforcement ledger, for painting on the grid. */
export interface CellLedger {
  width: number;
  height: number;
  nActions: number;
  /** cell index -> per-action summed reinforcement. */
  reinforcement: Float64Array;
  /** cell index -> visits. */
  visits: Float64Array;
  maxAbs: number;
  maxVisits: number;
}

export function emptyCellLedger(width: number, height: number, nActions: number): CellLedger {
  return {
    width,
    height,
    nActions,
    reinforcement: new Float64Array(width * height * nActions),
    visits: new Float64Array(width * height),
    maxAbs: 0,
    maxVisits: 0,
  };
}

/**
 * Adds ledger entries (state key -> per-action values) into per-cell sums.
 * Convention: stateKey % (width*height) is the agent's cell y*width+x.
 */
export function addLedgerEntries(cells: CellLedger, entries: Record<string, number[]>, visits?: Record<string, number>): void {
  const n = cells.width * cells.height;
  for (const [key, values] of Object.entries(entries)) {
    const k = Number(key);
    if (!Number.isFinite(k) || k < 0) continue;
    const cell = k % n;
    for (let a = 0; a < Math.min(values.length, cells.nActions); a++) {
      const v = values[a]!;
      if (Number.isFinite(v)) cells.reinforcement[cell * cells.nActions + a]! += v;
    }
  }
  if (visits) {
    for (const [key, count] of Object.entries(visits)) {
      const k = Number(key);
      if (!Number.isFinite(k) || k < 0 || !Number.isFinite(count)) continue;
      cells.visits[k % n]! += count;
    }
  }
  let maxAbs = 0;
  for (const v of cells.reinforcement) maxAbs = Math.max(maxAbs, Math.abs(v));
  let maxVisits = 0;
  for (const v of cells.visits) maxVisits = Math.max(maxVisits, v);
  cells.maxAbs = maxAbs;
  cells.maxVisits = maxVisits;
}

/**
 * The latest root visit distribution of a searching agent in each cell:
 * visits[cell * nActions + a], and how many visits the cell's row holds.
 */
export interface CellSearch {
  width: number;
  height: number;
  nActions: number;
  visits: Float64Array;
  totals: Float64Array;
}

export function emptyCellSearch(width: number, height: number, nActions: number): CellSearch {
  return { width, height, nActions, visits: new Float64Array(width * height * nActions), totals: new Float64Array(width * height) };
}

/**
 * Replaces the rows of the cells an update's searches visited (state key ->
 * root visit counts per action; several keys of one cell are summed). Same
 * key convention as the ledger: stateKey % (width*height) is the agent's cell.
 */
export function setSearchVisits(cells: CellSearch, entries: Record<string, number[]>): void {
  const n = cells.width * cells.height;
  const A = cells.nActions;
  const fresh = new Map<number, Float64Array>();
  for (const [key, values] of Object.entries(entries)) {
    const k = Number(key);
    if (!Number.isFinite(k) || k < 0) continue;
    const cell = k % n;
    let row = fresh.get(cell);
    if (!row) fresh.set(cell, (row = new Float64Array(A)));
    for (let a = 0; a < Math.min(values.length, A); a++) if (Number.isFinite(values[a]!) && values[a]! > 0) row[a]! += values[a]!;
  }
  for (const [cell, row] of fresh) {
    let total = 0;
    for (let a = 0; a < A; a++) total += cells.visits[cell * A + a] = row[a]!;
    cells.totals[cell] = total;
  }
}
