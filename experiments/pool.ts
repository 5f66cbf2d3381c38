/**
 * Worker threads for independent runs: one thread per job, at most
 * `workers` at once (one per core by default). A job that crashes its
 * thread fails alone. Generic over the job: a thread gets a kind and its
 * input (plain data) and replies with the output; experiments/worker.ts maps
 * each kind to the function that executes it, so this floor imports nothing
 * of probes or sweeps.
 */
import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import type { RunEvent, RunSpec, RunStatus } from "./events.ts";
import type { Intervention, ResumePoint } from "./run.ts";
import type { UserEnvironments } from "./plugins.ts";

// one list of backend names, in the agents layer that chooses them
import type { BackendName } from "../agents/shared/backend.ts";
export type { BackendName };

/**
 * Jobs a thread executes besides whole runs: "probe" a probe seed (ProbeJob ->
 * ProbeJobResult), "sweep" a sweep job (SweepJob -> JobOutcome), "aggregate" a
 * probe's table from its job results ({plan, results} -> ProbeTable: its
 * predictions take seconds to minutes, off the coordinator's event loop).
 */
export type JobKind = "probe" | "sweep" | "aggregate";

export type WorkerRequest =
  | { type: "run"; runId: string; spec: RunSpec; dir: string; resumeFrom?: ResumePoint; backend?: BackendName; userEnvs: UserEnvironments }
  | { type: "job"; kind: JobKind; input: unknown; backend?: BackendName; userEnvs: UserEnvironments }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "stop" }
  | { type: "intervene"; change: Intervention };

export type WorkerReply =
  | { type: "event"; event: RunEvent }
  | { type: "done"; status: RunStatus }
  | { type: "output"; output: unknown }
  | { type: "warning"; message: string }
  | { type: "error"; message: string };

const BOOT = new URL("./worker-boot.js", import.meta.url);

export function spawnWorker(): Worker {
  // workers must not inherit e.g. --inspect or vitest's loader flags
  return new Worker(BOOT, { execArgv: [], env: process.env, stdout: false, stderr: false });
}

export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}

/** Runs `fn` over items with at most `width` in flight; resolves with results in item order. No new item starts once `signal` aborts. */
export async function inLanes<T, R>(
  items: T[],
  width: number,
  fn: (item: T) => Promise<R>,
  onResult?: (r: R, done: number) => void,
  signal?: AbortSignal,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < items.length) {
      signal?.throwIfAborted();
      const i = next++;
      results[i] = await fn(items[i]!);
      done++;
      onResult?.(results[i]!, done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, lane));
  return results;
}

/**
 * A worker thread kept for several jobs in a row: starting one (loading the
 * TypeScript loader, tfjs and the backend) costs about two seconds, which
 * would dominate short jobs. A thread that crashes is replaced for the next job.
 */
export class ThreadLane {
  private worker: Worker | null = null;

  request<R>(request: WorkerRequest, pick: (m: WorkerReply) => R | undefined, what: string): Promise<R> {
    const w = (this.worker ??= spawnWorker());
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        w.off("message", onMessage);
        w.off("error", onError);
        w.off("exit", onExit);
      };
      const broken = () => {
        if (this.worker === w) this.worker = null;
        void w.terminate();
      };
      const onMessage = (m: WorkerReply) => {
        const r = pick(m);
        if (r !== undefined) {
          cleanup();
          resolve(r);
        } else if (m.type === "error") {
          cleanup();
          broken();
          reject(new Error(`${what} failed: ${m.message}`));
        }
      };
      const onError = (e: Error) => {
        cleanup();
        broken();
        reject(e);
      };
      const onExit = (code: number) => {
        cleanup();
        if (this.worker === w) this.worker = null;
        reject(new Error(`${what}: worker exited with code ${code}`));
      };
      w.on("message", onMessage);
      w.on("error", onError);
      w.on("exit", onExit);
      w.postMessage(request);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}

/** Why a pool was stopped: a user's stop, or SIGINT/SIGTERM (Ctrl-C) in the process. */
export class PoolStopped extends Error {
  override name = "PoolStopped";
}

/**
 * Runs `fn` over items on `width` lanes, each with its own kept thread.
 * When `signal` aborts, or the process gets SIGINT or SIGTERM (Ctrl-C in
 * `rewardlab probe` or `sweep`), every lane's thread is terminated at once
 * and the call rejects with PoolStopped: nothing keeps a core afterwards.
 * (While it runs, Ctrl-C stops the pool instead of exiting the process; the
 * caller's error path then ends the command. A second Ctrl-C exits as usual.)
 */
export async function onLanes<T, R>(
  items: T[],
  width: number,
  fn: (item: T, lane: ThreadLane) => Promise<R>,
  onResult?: (r: R, done: number) => void,
  signal?: AbortSignal,
): Promise<R[]> {
  const lanes = Array.from({ length: Math.max(1, Math.min(width, items.length)) }, () => new ThreadLane());
  const free = [...lanes];
  const stop = new AbortController();
  const halt = (reason: string) => {
    if (stop.signal.aborted) return;
    stop.abort(new PoolStopped(reason));
    for (const l of lanes) void l.close();
  };
  const onSignal = (sig: NodeJS.Signals) => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    halt(`interrupted by ${sig}: ${lanes.length} worker thread(s) terminated`);
  };
  const onAbort = () => halt(String((signal?.reason as Error | undefined)?.message ?? signal?.reason ?? "stopped"));
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await inLanes(
      items,
      lanes.length,
      async (item) => {
        const lane = free.pop()!;
        try {
          return await fn(item, lane);
        } finally {
          free.push(lane);
        }
      },
      onResult,
      stop.signal,
    ).catch((e: unknown) => {
      // a lane whose thread was terminated reports an exit; the stop is the reason
      throw stop.signal.aborted ? stop.signal.reason : e;
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    signal?.removeEventListener("abort", onAbort);
    await Promise.all(lanes.map((l) => l.close()));
  }
}

/** Executes one job of `kind` on a lane's thread; resolves with its output (what the kind's function returned, copied by postMessage). */
export function runJobOnLane<I, O>(lane: ThreadLane, kind: JobKind, input: I, opts: JobThreadOptions, what: string): Promise<O> {
  return lane.request<O>(
    { type: "job", kind, input, ...(opts.backend ? { backend: opts.backend } : {}), userEnvs: opts.userEnvs ?? {} },
    (m) => (m.type === "output" ? (m.output as O) : undefined),
    what,
  );
}

export interface JobThreadOptions {
  backend?: BackendName | undefined;
  userEnvs?: UserEnvironments;
}

/** Runs jobs of one kind on up to `workers` threads; resolves with their outputs in job order. */
export function runJobs<I, O>(
  kind: JobKind,
  jobs: I[],
  opts: JobThreadOptions & {
    workers?: number;
    onResult?: (r: O, done: number) => void;
    /** Stops the jobs: their threads are terminated and the call rejects with PoolStopped. */
    signal?: AbortSignal;
  },
): Promise<O[]> {
  return onLanes(
    jobs,
    opts.workers ?? defaultWorkers(),
    (job, lane) => runJobOnLane<I, O>(lane, kind, job, opts, `${kind} job ${describeJob(job)}`),
    opts.onResult,
    opts.signal,
  );
}

/** A job's agent and seed (or key) for error messages, from whatever fields it has. */
function describeJob(job: unknown): string {
  const j = (job ?? {}) as Record<string, unknown>;
  if (typeof j.key === "string") return j.key;
  return [j.entry ?? j.agent, j.seed !== undefined ? `seed ${String(j.seed)}` : ""].filter(Boolean).join(" ");
}
