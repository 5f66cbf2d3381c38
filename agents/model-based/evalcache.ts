/**
 * The network's outputs kept by observation, for a search that evaluates the
 * same states again and again: between two updates the weights do not
 * change, and a gridworld's searches meet a few hundred to a few thousand
 * distinct observations in tens of thousands of evaluations. A row is valid
 * under one weights version (MLP.weightsVersion); a new version empties the
 * cache. Bounded: when `capacity` rows are held, the next new one empties it
 * first (so what is kept depends only on the sequence of lookups, the same
 * on every run of the same seed).
 *
 * Keys are obskey.ts's 53-bit observation hashes (two observations share one
 * with probability about 1e-9 among a few thousand).
 */
import { observationKey } from "../shared/obskey.ts";

export class EvalCache {
  private readonly rows: Float32Array;
  private readonly index = new Map<number, number>();
  private version = -1;
  /** Lookups answered from the cache and computed, since the last takeHitRate(). */
  private hits = 0;
  private misses = 0;

  constructor(
    /** Floats per row (the network's outputs). */
    readonly width: number,
    readonly capacity = 65_536,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new RangeError(`EvalCache: capacity must be an integer >= 1, got ${capacity}`);
    this.rows = new Float32Array(width * capacity);
  }

  /**
   * The outputs for `size` floats of `obs` under weights `version`: the kept
   * row, or `compute(obs)`'s result, kept. The returned view is valid until the
   * next call.
   */
  lookup(obs: Float32Array, size: number, version: number, compute: (obs: Float32Array) => Float32Array): Float32Array {
    if (version !== this.version) {
      this.index.clear();
      this.version = version;
    }
    const key = observationKey(obs, 0, size);
    const w = this.width;
    const at = this.index.get(key);
    if (at !== undefined) {
      this.hits++;
      return this.rows.subarray(at * w, at * w + w);
    }
    this.misses++;
    const out = compute(obs);
    if (this.index.size >= this.capacity) this.index.clear();
    const row = this.index.size;
    this.rows.set(out.subarray(0, w), row * w);
    this.index.set(key, row);
    return out;
  }

  /** The fraction of lookups answered from the cache since the last call (NaN with none), and resets the counts. */
  takeHitRate(): number {
    const n = this.hits + this.misses;
    const rate = n > 0 ? this.hits / n : Number.NaN;
    this.hits = 0;
    this.misses = 0;
    return rate;
  }
}
