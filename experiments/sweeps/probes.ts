/**
 * Probes as keyed jobs, on local worker threads or on the BullMQ queue.
 *
 * `runProbeSweep`: one probe or a whole comparison becomes a sweep of
 * (probe, arm, agent, seed) jobs, each stored once by its key, so re-running
 * the same command (or a coordinator started again after a stop) skips what
 * is stored; each probe's table is aggregated from its stored job results,
 * in job order, by the same aggregateProbe that runProbe uses, on a thread of
 * its own (its predictions take up to minutes) while the other jobs go on.
 *
 * `runProbeJobs`: a probe's jobs without the store (the server's Probes
 * view): on threads as runJobs, or on the queue under keys of their own.
 */
import { ThreadLane, runJobOnLane, runJobs, type BackendName } from "../pool.ts";
import type { UserEnvironments } from "../plugins.ts";
import type { ProbeJob, ProbeJobResult } from "../probes/job.ts";
import type { ProbeSpec } from "../probes/request.ts";
import type { ProbeTable } from "../probes/result.ts";
import type { JobOutcome, SweepJob } from "../jobs.ts";
import { probeJobKeys, runExpandedSweep, storedProbeResults, type SweepOptions, type SweepSummary } from "./index.ts";
import { runOnQueue } from "./queue.ts";
import { expandSweep, keyOf, type ExpandedSweep } from "./spec.ts";

export interface ProbeSweepOptions extends Omit<SweepOptions, "tables" | "onOutcome"> {
  /**
   * A probe's table as soon as every one of its jobs is stored (index: its place
   * in the request list; also for probes stored before), with its jobs' wall seconds summed, and their
   * threads' CPU seconds (null when a job has none: stored before they were kept, or no per-thread figure).
   */
  onTable?: (index: number, table: ProbeTable, jobSeconds: number, jobCpuSeconds: number | null) => Promise<void> | void;
  /** Save every trained policy (ProbeRequest.saveAgents: a folder the workers can write, one subfolder per job). */
  saveAgents?: string;
}

export interface ProbeSweepResult {
  summary: SweepSummary;
  sweep: ExpandedSweep;
  /** One table per requested probe, in request order. */
  tables: ProbeTable[];
  /** Seconds the coordinator spent aggregating the tables (the predictions that need no trained agent are computed then). */
  aggregationSeconds: number;
}

/** Runs probes as one sweep (local threads, or `opts.queue`), storing each job once; resolves with every probe's table. */
export async function runProbeSweep(
  name: string,
  probes: ProbeSpec[],
  backend: BackendName | undefined,
  opts: ProbeSweepOptions,
): Promise<ProbeSweepResult> {
  const sweep = expandSweep({ name, probes, ...(backend ? { backend } : {}) }, opts.saveAgents ? { saveAgents: opts.saveAgents } : {});
  const { store } = opts;
  const tables: (ProbeTable | undefined)[] = probes.map(() => undefined);
  const indexOf = new Map<string, number>();
  const left = probes.map((_, i) => {
    const keys = probeJobKeys(sweep, i);
    for (const k of keys) indexOf.set(k, i);
    const done = store.doneKeys(keys);
    return new Set(keys.filter((k) => !done.has(k)));
  });
  // tables are aggregated one at a time on a thread of their own, while the jobs go on
  const lane = new ThreadLane();
  let aggregationSeconds = 0;
  let aggregating: Promise<void> = Promise.resolve();
  const finish = (i: number) => {
    aggregating = aggregating.then(async () => {
      const t0 = performance.now();
      const results = storedProbeResults(store, sweep, i);
      const input = { plan: sweep.probePlans[i]!, results };
      const table = await runJobOnLane<typeof input, ProbeTable>(
        lane,
        "aggregate",
        input,
        { backend, ...(opts.userEnvs ? { userEnvs: opts.userEnvs } : {}) },
        `aggregating probe ${probes[i]!.probe}`,
      );
      aggregationSeconds += (performance.now() - t0) / 1000;
      tables[i] = table;
      const cpu = results.every((r) => r.cpuSeconds !== undefined) ? results.reduce((sum, r) => sum + r.cpuSeconds!, 0) : null;
      await opts.onTable?.(
        i,
        table,
        results.reduce((sum, r) => sum + r.seconds, 0),
        cpu,
      );
    });
    aggregating.catch(() => {}); // seen where it is awaited below
  };
  try {
    for (const [i, keys] of left.entries()) if (keys.size === 0) finish(i);
    const summary = await runExpandedSweep(sweep, {
      ...opts,
      tables: false,
      onOutcome: (o: JobOutcome) => {
        const i = indexOf.get(o.key);
        if (i !== undefined && left[i]!.delete(o.key) && left[i]!.size === 0) finish(i);
      },
    });
    await aggregating;
    // a probe whose last job was stored by another coordinator meanwhile
    for (const [i, t] of tables.entries()) if (!t) finish(i);
    await aggregating;
    return { summary: { ...summary, probes: tables as ProbeTable[] }, sweep, tables: tables as ProbeTable[], aggregationSeconds };
  } finally {
    await lane.close();
  }
}

export interface ProbeJobsOptions {
  /** redis://host:port: send the jobs to `rewardlab worker`s instead of local threads. */
  queue?: string;
  /** Makes the queued jobs' keys this probe's own (a server's probe id): a probe started again runs again. */
  salt?: string;
  workers?: number;
  backend?: BackendName;
  userEnvs?: UserEnvironments;
  onResult?: (r: ProbeJobResult, done: number) => void;
  /** Stops the probe: local threads are terminated, queued jobs no worker has started are removed; rejects with PoolStopped. */
  signal?: AbortSignal;
}

/**
 * A probe's job results in job order, as runJobs gives them, from local
 * threads or from the queue. On the queue a job that fails for its own
 * reason fails the probe, as a job that throws on a thread does.
 */
export async function runProbeJobs(jobs: ProbeJob[], opts: ProbeJobsOptions): Promise<ProbeJobResult[]> {
  if (!opts.queue) return runJobs<ProbeJob, ProbeJobResult>("probe", jobs, opts);
  const backend = opts.backend ?? null;
  const keyed: SweepJob[] = jobs.map((job) => ({
    kind: "probe",
    key: keyOf({ kind: "probe", job, backend, salt: opts.salt ?? null }),
    probeIndex: 0,
    job,
  }));
  const results = new Map<string, ProbeJobResult>();
  await runOnQueue(keyed, opts.queue, backend, {
    attempts: 3,
    discardUnfinished: true,
    ...(opts.signal ? { signal: opts.signal } : {}),
    onOutcome: (o) => {
      if (o.kind !== "probe" || o.status !== "completed" || !o.result) {
        const job = keyed.find((j) => j.key === o.key);
        const who = job?.kind === "probe" ? `${job.job.entry ?? job.job.agent} seed ${job.job.seed}` : o.key;
        throw new Error(`probe job ${who} failed on ${o.host}: ${o.reason ?? "no result"}`);
      }
      results.set(o.key, o.result);
      opts.onResult?.(o.result, results.size);
    },
  });
  return keyed.map((j) => results.get(j.key)!);
}
