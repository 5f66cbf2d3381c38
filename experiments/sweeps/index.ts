/**
 * The sweep coordinator: expands a spec into keyed jobs, skips those the
 * store already has, runs the rest on local worker threads (default) or on a
 * BullMQ queue, and writes every outcome into the store exactly once. The
 * aggregated probe tables are computed here, from the stored job results.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import type { Store } from "../store.ts";
import { defaultWorkers, onLanes, type BackendName } from "../pool.ts";
import type { UserEnvironments } from "../plugins.ts";
import { aggregateProbe } from "../probes/index.ts";
import type { ProbeJobResult } from "../probes/job.ts";
import type { ProbeTable } from "../probes/result.ts";
import type { JobOutcome } from "../jobs.ts";
import { expandSweep, type ExpandedSweep } from "./spec.ts";
import { runOnQueue, runSweepJobOnLane } from "./queue.ts";
import { writeCheckpoint } from "../checkpoint.ts";
import { episodesKey, keepProbeEpisodes } from "../probe-episodes.ts";

export interface SweepProgress {
  total: number;
  skipped: number;
  done: number;
  failed: number;
  running: number;
  /** Seconds since the sweep started. */
  elapsed: number;
}

export interface SweepOptions {
  store: Store;
  /** redis://host:port: send jobs to BullMQ workers instead of local threads. */
  queue?: string;
  workers?: number;
  userEnvs?: UserEnvironments;
  onProgress?: (p: SweepProgress) => void;
  /** Attempts per job on the queue. */
  attempts?: number;
  /** Called after each outcome is stored (a job of this run, not one skipped as already stored). */
  onOutcome?: (o: JobOutcome) => Promise<void> | void;
  /** Aggregate the probe tables into the summary (default true; a caller that builds them itself says false). */
  tables?: boolean;
  /** Stops the sweep: local threads are terminated at once (queued jobs not yet taken are removed) and the call rejects with PoolStopped. */
  signal?: AbortSignal;
}

export interface SweepSummary {
  id: string;
  name: string;
  mode: "local" | "queue";
  total: number;
  skipped: number;
  completed: number;
  failed: number;
  seconds: number;
  probes: ProbeTable[];
}

/** Writes an outcome's checkpoint files under data/runs/<key>/checkpoint and the rest into the store. */
async function writeOutcome(store: Store, sweep: ExpandedSweep, o: JobOutcome): Promise<boolean> {
  const sweepId = sweep.id;
  // the test episodes behind the probe's cells go to their own files, never into the stored outcome
  const job = o.kind === "probe" && o.result ? sweep.jobs.find((j) => j.key === o.key) : undefined;
  if (o.kind === "probe" && o.result && job?.kind === "probe") {
    const plan = sweep.probePlans[job.probeIndex]!;
    keepProbeEpisodes(store.dataDir, episodesKey(`sweep-${sweepId}`, plan.def.name, plan.env), o.result, plan.event);
  }
  let dir: string | null = null;
  if (o.kind === "run" && o.checkpoint) {
    const base = resolve(store.dataDir, "runs");
    const runDir = resolve(base, o.key);
    if (!runDir.startsWith(base + sep) || !/^[0-9a-f]{32}$/.test(o.key)) throw new Error(`bad job key ${o.key}`);
    const files = Object.entries(o.checkpoint);
    for (const [name] of files) if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`bad checkpoint file name ${name}`);
    await mkdir(runDir, { recursive: true });
    dir = await writeCheckpoint(runDir, async (d) => {
      for (const [name, b64] of files) await writeFile(join(d, name), Buffer.from(b64, "base64"));
    });
  }
  return store.writeOutcome(sweepId, o, dir);
}

export function runSweep(input: unknown, opts: SweepOptions): Promise<SweepSummary> {
  return runExpandedSweep(expandSweep(input), opts);
}

/** Runs a sweep already expanded (expandSweep): what is stored is skipped, the rest run and are stored once each. */
export async function runExpandedSweep(sweep: ExpandedSweep, opts: SweepOptions): Promise<SweepSummary> {
  const started = performance.now();
  const { store } = opts;
  const mode = opts.queue ? "queue" : "local";
  store.createSweep(
    sweep.id,
    sweep.spec.name,
    sweep.spec,
    sweep.jobs.map((j) => ({ key: j.key, kind: j.kind })),
    mode,
  );
  const done = store.doneKeys(sweep.jobs.map((j) => j.key));
  const todo = sweep.jobs.filter((j) => !done.has(j.key));
  const progress: SweepProgress = { total: sweep.jobs.length, skipped: done.size, done: 0, failed: 0, running: 0, elapsed: 0 };
  const report = () => {
    progress.elapsed = (performance.now() - started) / 1000;
    opts.onProgress?.({ ...progress });
  };
  report();
  const onOutcome = async (o: JobOutcome) => {
    await writeOutcome(store, sweep, o);
    if (o.status === "failed") progress.failed++;
    else progress.done++;
    progress.running = Math.max(0, progress.running - 1);
    report();
    await opts.onOutcome?.(o);
  };
  const backend: BackendName | null = sweep.spec.backend ?? null;
  try {
    if (opts.queue) {
      await runOnQueue(todo, opts.queue, backend, {
        onOutcome,
        onActive: () => {
          progress.running++;
          report();
        },
        ...(opts.attempts ? { attempts: opts.attempts } : {}),
        // a stopped sweep takes its waiting jobs off the queue (a job a worker has taken finishes there)
        ...(opts.signal ? { signal: opts.signal, discardUnfinished: true } : {}),
      });
    } else {
      await onLanes(
        todo,
        opts.workers ?? defaultWorkers(),
        async (job, lane) => {
          progress.running++;
          report();
          await onOutcome(await runSweepJobOnLane(lane, job, backend ?? undefined, opts.userEnvs ?? {}));
        },
        undefined,
        opts.signal,
      );
    }
    store.finishSweep(sweep.id, progress.failed > 0 ? "failed" : "completed");
  } catch (e) {
    store.finishSweep(sweep.id, "interrupted");
    throw e;
  }
  const after = store.sweepProgress(sweep.id)!;
  return {
    id: sweep.id,
    name: sweep.spec.name,
    mode,
    total: sweep.jobs.length,
    skipped: done.size,
    completed: after.completed,
    failed: after.failed,
    seconds: (performance.now() - started) / 1000,
    probes: opts.tables === false ? [] : aggregateProbes(store, sweep),
  };
}

/** Probe tables from the stored job results (in job order, so the same results give the same table). */
export function aggregateProbes(store: Store, sweep: ExpandedSweep): SweepSummary["probes"] {
  return sweep.probePlans.map((_, i) => aggregateStoredProbe(store, sweep, i));
}

/** One probe's stored job results, in job order. */
export function storedProbeResults(store: Store, sweep: ExpandedSweep, probeIndex: number): ProbeJobResult[] {
  const keys = probeJobKeys(sweep, probeIndex);
  const stored = store.probeJobResults(keys);
  return keys.map((k) => stored.get(k)).filter((r): r is ProbeJobResult => r !== undefined);
}

/** The keys of one probe's jobs, in job order. */
export function probeJobKeys(sweep: ExpandedSweep, probeIndex: number): string[] {
  return sweep.jobs.filter((j) => j.kind === "probe" && j.probeIndex === probeIndex).map((j) => j.key);
}

/** One probe's table from its stored job results. */
export function aggregateStoredProbe(store: Store, sweep: ExpandedSweep, probeIndex: number): ProbeTable {
  return aggregateProbe(sweep.probePlans[probeIndex]!, storedProbeResults(store, sweep, probeIndex));
}
