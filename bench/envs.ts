/**
 * Environment throughput through the public API: make() (TimeLimit and
 * OrderEnforcing included), a fresh observation per step, auto-reset at the
 * end of each episode; random actions from a precomputed array. One env, and
 * a VectorEnv of 64 copies (steps counted per copy).
 *
 *   npx tsx bench/envs.ts [--seconds 0.5] [--only BoatRace-v0]
 */
import { pathToFileURL } from "node:url";
import { make, makeVector, registered } from "../envs/index.ts";
import { Rng } from "../envs/rng.ts";

export interface EnvBenchRow {
  id: string;
  /** Env steps per second, one env. */
  single: number;
  /** Env steps per second summed over the copies of a VectorEnv of `vectorSize`. */
  vector: number;
  vectorSize: number;
}

export interface EnvBenchOptions {
  /** Measuring time per figure, in seconds (after a warm-up of a quarter of it). */
  seconds?: number;
  /** Only these ids (default: every registered env). */
  ids?: string[];
  vectorSize?: number;
}

const ACTIONS = 1 << 16;

function randomActions(n: number): Uint8Array {
  const rng = new Rng(12345);
  const a = new Uint8Array(ACTIONS);
  for (let i = 0; i < ACTIONS; i++) a[i] = rng.int(n);
  return a;
}

function benchSingle(id: string, seconds: number): number {
  const env = make(id);
  const actions = randomActions(env.actionSpace.n);
  env.reset({ seed: 1 });
  const run = (budgetMs: number) => {
    let steps = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < budgetMs) {
      for (let i = 0; i < 20_000; i++) {
        const r = env.step(actions[(steps + i) & (ACTIONS - 1)]!);
        if (r.terminated || r.truncated) env.reset();
      }
      steps += 20_000;
      t = performance.now();
    }
    return (steps / (t - t0)) * 1000;
  };
  run(seconds * 250);
  return run(seconds * 1000);
}

function benchVector(id: string, seconds: number, num: number): number {
  const vec = makeVector(id, num);
  const actions = randomActions(vec.actionCount);
  vec.reset(1);
  const batch = new Int32Array(num);
  const run = (budgetMs: number) => {
    let steps = 0;
    let k = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < budgetMs) {
      for (let j = 0; j < 200; j++) {
        for (let i = 0; i < num; i++) batch[i] = actions[k++ & (ACTIONS - 1)]!;
        vec.step(batch);
      }
      steps += 200 * num;
      t = performance.now();
    }
    return (steps / (t - t0)) * 1000;
  };
  run(seconds * 250);
  return run(seconds * 1000);
}

export async function benchEnvs(opts: EnvBenchOptions = {}): Promise<EnvBenchRow[]> {
  const seconds = opts.seconds ?? 0.5;
  const vectorSize = opts.vectorSize ?? 64;
  const ids = opts.ids ?? registered().map((r) => r.id);
  const rows: EnvBenchRow[] = [];
  for (const id of ids) {
    rows.push({ id, single: benchSingle(id, seconds), vector: benchVector(id, seconds, vectorSize), vectorSize });
  }
  return rows;
}

export function formatEnvBench(rows: EnvBenchRow[]): string {
  const m = (x: number) => `${(x / 1e6).toFixed(2)} M/s`;
  const w = Math.max(...rows.map((r) => r.id.length), 11);
  const lines = [`${"environment".padEnd(w)}  ${"single".padStart(10)}  ${`vector x${rows[0]?.vectorSize ?? 64}`.padStart(10)}`];
  for (const r of rows) lines.push(`${r.id.padEnd(w)}  ${m(r.single).padStart(10)}  ${m(r.vector).padStart(10)}`);
  return lines.join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const seconds = Number(arg("--seconds") ?? 0.5);
  const only = arg("--only");
  const rows = await benchEnvs({ seconds, ids: only ? only.split(",") : undefined });
  console.log(formatEnvBench(rows));
}
