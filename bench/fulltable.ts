/**
 * The full table (`rewardlab compare --all`) on this machine: a fixed fraction
 * of it timed on local worker threads and through Redis with 1 and 2
 * `rewardlab worker` processes, then the time projected for N machines.
 *
 * The projection takes the job durations measured on local threads, counts
 * each of the 10 seeds as long as the measured seed(s), adds the per-job
 * overhead of the queue measured with one worker (wall time minus the jobs'
 * own time, over the jobs), and places the jobs longest first on N x cores
 * lanes (LPT). It is checked against the measured 1- and 2-worker runs.
 * The default fraction is 1 seed of 10 with training and test budgets scaled
 * down (--steps, --episodes): its projection is the time of that scaled table,
 * not of the full one; `--steps 0 --episodes 100` keeps the probes' own
 * budgets (the full table at 1 seed, hours on 2 cores).
 *
 *   npx tsx bench/fulltable.ts [--seeds 1] [--steps 300] [--episodes 3] [--probes tamper,tomato] [--backend wasm]
 */
import { mkdtempSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import "../envs/index.ts";
import "../agents/index.ts";
import type { BackendName } from "../agents/shared/backend.ts";
import { sourceCommit } from "../experiments/cli/commit.ts";
import { comparePlan } from "../experiments/cli/probe.ts";
import type { ProbeSpec } from "../experiments/probes/request.ts";
import { Store } from "../experiments/store.ts";
import { storedProbeResults } from "../experiments/sweeps/index.ts";
import { runProbeSweep } from "../experiments/sweeps/probes.ts";
import { benchRedis } from "./sweeps.ts";

const FULL_SEEDS = 10;

interface ModeRow {
  label: string;
  lanes: number;
  jobs: number;
  failed: number;
  wall: number;
  /** Each job's own seconds (train and test inside its thread) and its thread's CPU seconds, with its agent entry. */
  durations: { seconds: number; cpuSeconds?: number; entry: string }[];
  /** The coordinator's seconds aggregating the probe tables. */
  aggregation: number;
  probes: number;
}

/** One mode's line of the table (printed as each mode finishes: a long run shows what it has measured so far). */
function modeLine(r: ModeRow): string {
  const work = sum(r.durations.map((d) => d.seconds));
  return `${r.label.padEnd(27)} ${String(r.lanes).padStart(5)} ${String(r.jobs).padStart(5)} ${String(r.failed).padStart(7)} ${r.wall.toFixed(1).padStart(8)} ${work.toFixed(1).padStart(13)} ${(work / (r.wall * r.lanes)).toFixed(2).padStart(24)}  (load average ${loadavg()[0]!.toFixed(1)})`;
}

const HEADER = "mode                        lanes  jobs  failed   wall s   job s (sum)   job s / (wall x lanes)";

async function timeMode(
  label: string,
  lanes: number,
  plan: ProbeSpec[],
  backend: BackendName,
  where: { workers: number } | { queue: string },
): Promise<ModeRow> {
  const store = new Store(mkdtempSync(join(tmpdir(), "rl-bench-table-")));
  try {
    const t0 = performance.now();
    const { sweep, summary, aggregationSeconds } = await runProbeSweep("bench full table", plan, backend, { store, ...where });
    const wall = (performance.now() - t0) / 1000;
    const durations = sweep.probePlans.flatMap((_, i) =>
      storedProbeResults(store, sweep, i).map((r) => ({
        seconds: r.seconds,
        ...(r.cpuSeconds !== undefined ? { cpuSeconds: r.cpuSeconds } : {}),
        entry: r.entry ?? r.agent,
      })),
    );
    const row = {
      label,
      lanes,
      jobs: summary.total,
      failed: summary.failed,
      wall,
      durations,
      aggregation: aggregationSeconds,
      probes: plan.length,
    };
    console.log(modeLine(row));
    return row;
  } finally {
    store.close();
  }
}

/** Longest job first onto the least loaded of `lanes`: the makespan in seconds. */
export function lptMakespan(durations: readonly number[], lanes: number): number {
  const load = new Array<number>(Math.max(1, lanes)).fill(0);
  for (const d of [...durations].sort((a, b) => b - a)) {
    let i = 0;
    for (let j = 1; j < load.length; j++) if (load[j]! < load[i]!) i = j;
    load[i]! += d;
  }
  return Math.max(...load);
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const minutes = (s: number) => `${(s / 60).toFixed(1)} min`;

function report(rows: ModeRow[], seeds: number): void {
  const local = rows.find((r) => r.label.startsWith("local"));
  const q1 = rows.find((r) => r.label.startsWith("queue, 1"));
  const q2 = rows.find((r) => r.label.startsWith("queue, 2"));
  if (!local) return;
  const byEntry = new Map<string, number>();
  for (const d of local.durations) byEntry.set(d.entry, (byEntry.get(d.entry) ?? 0) + d.seconds);
  console.log(
    `job seconds by agent (local): ${[...byEntry].map(([e, s]) => `${e} ${s.toFixed(0)} s (${((100 * s) / sum([...byEntry.values()])).toFixed(0)}%)`).join(", ")}`,
  );
  const cpu = local.durations.every((d) => d.cpuSeconds !== undefined) ? sum(local.durations.map((d) => d.cpuSeconds!)) : null;
  if (cpu !== null)
    console.log(
      `the local jobs' thread CPU: ${cpu.toFixed(1)} s against ${sum(local.durations.map((d) => d.seconds)).toFixed(1)} s of job time${cpu < 0.8 * sum(local.durations.map((d) => d.seconds)) ? " (other work shared the cores: the projection below, from job time, is high)" : ""}`,
    );
  // fitted on the 1-worker run (so its prediction equals its measurement), checked on the 2-worker run
  const tail = (r: ModeRow) => r.aggregation / Math.max(1, r.probes); // the last probe's aggregation follows its last job
  const overhead = q1 ? Math.max(0, (q1.wall - tail(q1) - sum(q1.durations.map((d) => d.seconds))) / q1.jobs) : 0;
  const model = (r: ModeRow) =>
    lptMakespan(
      r.durations.map((d) => d.seconds + overhead),
      r.lanes,
    ) + tail(r);
  console.log(
    `queue overhead per job, fitted on 1 worker (wall minus job time and the last aggregation, over the jobs): ${overhead.toFixed(2)} s; the coordinator's aggregation ${local.aggregation.toFixed(1)} s for ${local.probes} probes`,
  );
  if (q2) console.log(`model check, ${q2.label}: predicted ${model(q2).toFixed(1)} s, measured ${q2.wall.toFixed(1)} s`);
  const copies = Math.max(1, Math.round(FULL_SEEDS / seeds));
  const table = local.durations.flatMap((d) => Array.from({ length: copies }, () => d.seconds + overhead));
  const cores = availableParallelism();
  console.log(
    `projected, this fraction at ${FULL_SEEDS} seeds (${table.length} jobs, ${minutes(sum(table))} of job time), on machines like this one (${cores} lanes each):`,
  );
  for (const n of [1, 2, 4, 8, 16])
    console.log(`  ${String(n).padStart(2)} machine(s): ${minutes(lptMakespan(table, n * cores) + tail(local))}`);
}

export async function benchFullTable(
  opts: { seeds?: number; steps?: number; episodes?: number; probes?: string; backend?: BackendName } = {},
) {
  const seeds = opts.seeds ?? 1;
  const steps = opts.steps ?? 300;
  const episodes = opts.episodes ?? 3;
  const backend = opts.backend ?? "wasm";
  const { specs: plan } = comparePlan({
    all: !opts.probes,
    ...(opts.probes ? { probes: opts.probes } : {}),
    agents: ["reinforce", "ppo", "planner", "planner:neural", "expit"],
    config: opts.probes ? ['planner:neural={"model":"neural"}'] : [],
    seeds,
    ...(steps > 0 ? { steps } : {}),
    episodes,
  });
  const cores = availableParallelism();
  console.log(
    `\n## full table (compare --all): ${plan.length} probe sections, ${seeds} of ${FULL_SEEDS} seeds, ${steps > 0 ? `${steps} training steps` : "the probes' own budgets"}, ${episodes} test episodes, backend ${backend}, commit ${sourceCommit()}, ${cores} cores, load average ${loadavg()[0]!.toFixed(1)}`,
  );
  const { port, workers, stop } = await benchRedis();
  console.log(HEADER);
  const rows: ModeRow[] = [];
  try {
    rows.push(await timeMode(`local, ${cores} threads`, cores, plan, backend, { workers: cores }));
    let w = await workers(1, 1);
    rows.push(await timeMode("queue, 1 worker process", 1, plan, backend, { queue: `redis://127.0.0.1:${port}/1` }));
    for (const c of w) c.kill("SIGTERM");
    w = await workers(2, 2);
    rows.push(await timeMode("queue, 2 worker processes", 2, plan, backend, { queue: `redis://127.0.0.1:${port}/2` }));
    for (const c of w) c.kill("SIGTERM");
  } finally {
    stop();
  }
  report(rows, seeds);
  console.log(`load average after: ${loadavg()[0]!.toFixed(1)} (other work on this machine shares the cores)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      seeds: { type: "string" },
      steps: { type: "string" },
      episodes: { type: "string" },
      probes: { type: "string" },
      backend: { type: "string" },
    },
  });
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  await benchFullTable({
    ...(values.seeds ? { seeds: num(values.seeds)! } : {}),
    ...(values.steps ? { steps: num(values.steps)! } : {}),
    ...(values.episodes ? { episodes: num(values.episodes)! } : {}),
    ...(values.probes ? { probes: values.probes } : {}),
    ...(values.backend ? { backend: values.backend as BackendName } : {}),
  });
  process.exit(0);
}
