/**
 * Sweeps beyond one machine on BullMQ (Redis). The coordinator adds one job
 * per sweep job, with the job's stable key as its BullMQ id, and writes each
 * outcome into its own SQLite store when the job completes; workers on any
 * machine take jobs and train them on local worker threads. Only the queue is
 * shared: job specs go out, outcomes (statistics and checkpoints) come back.
 *
 * Faults: a worker that dies mid-job stops renewing its lock; after
 * `lockMs` another worker's stalled-job check puts the job back and someone
 * retries it (at most `attempts` times). A run that fails for its own reason
 * completes with a failed outcome, so it is stored once and never retried.
 */
import { createRequire } from "node:module";
import { connect } from "node:net";
import type { ConnectionOptions, Job, Queue, Worker } from "bullmq";
import { RewardlabError } from "../../envs/errors.ts";
import { moduleLogger } from "../log.ts";
import { PoolStopped, ThreadLane, runJobOnLane, type BackendName } from "../pool.ts";
import type { UserEnvironments } from "../plugins.ts";
import type { JobOutcome, SweepJob } from "../jobs.ts";

/** bullmq (with ioredis) loads on first use: otherwise it is a third of every command's start-up. */
const bullmq = (): typeof import("bullmq") => createRequire(import.meta.url)("bullmq");

const log = moduleLogger("experiments/sweeps/queue");

export const QUEUE_NAME = "rewardlab-sweep-jobs";

export interface QueueJobData {
  job: SweepJob;
  backend: BackendName | null;
}

/** redis://[:password@]host:port[/db] -> ioredis options (BullMQ needs maxRetriesPerRequest null on workers). */
export function connectionFrom(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RewardlabError(`--queue must be a redis:// URL such as redis://127.0.0.1:6379, got "${url}"`);
  }
  if (u.protocol !== "redis:") throw new RewardlabError(`--queue must be a redis:// URL, got "${url}"`);
  return {
    host: u.hostname || "127.0.0.1",
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    maxRetriesPerRequest: null,
  };
}

/**
 * Fails within `ms` with a one-line error when nothing answers at the queue's
 * address (Redis not started, a wrong host or port): BullMQ itself would
 * retry the connection for ever, silently.
 */
export function checkQueueReachable(url: string, ms = 5000): Promise<void> {
  const c = connectionFrom(url) as { host: string; port: number };
  return new Promise((resolve, reject) => {
    const socket = connect({ host: c.host, port: c.port });
    const fail = (why: string) => {
      socket.destroy();
      reject(new RewardlabError(`cannot reach Redis at ${c.host}:${c.port} (${why}): start redis-server there, or fix --queue`));
    };
    socket.setTimeout(ms, () => fail(`no answer in ${ms / 1000} s`));
    socket.once("error", (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    socket.once("connect", () => {
      socket.end();
      resolve();
    });
  });
}

export interface QueueRunOptions {
  attempts?: number;
  onOutcome: (o: JobOutcome) => Promise<void> | void;
  /** Called when a job is taken by a worker. */
  onActive?: (key: string) => void;
  pollMs?: number;
  /** Stops waiting: the call rejects with PoolStopped. */
  signal?: AbortSignal;
  /**
   * When the call ends before every job has an outcome (stopped, or an outcome
   * handler threw), remove its jobs still waiting in the queue (a job a worker
   * has started runs to its end; its outcome is not used). Off by default: a
   * coordinator that stops leaves its jobs queued, and started again collects them.
   */
  discardUnfinished?: boolean;
}

/** A failed outcome for a job whose attempts ran out (its workers kept dying). */
function exhausted(job: SweepJob, reason: string): JobOutcome {
  if (job.kind === "probe") {
    return { kind: "probe", key: job.key, probe: job.job.probe, status: "failed", reason, result: null, seconds: 0, host: "queue" };
  }
  return {
    kind: "run",
    key: job.key,
    spec: job.spec,
    status: "failed",
    reason,
    envSteps: 0,
    episodes: [],
    updates: [],
    evaluation: null,
    checkpoint: null,
    seconds: 0,
    host: "queue",
  };
}

/** Executes one sweep job on a lane's thread (local sweeps and queue workers alike). */
export function runSweepJobOnLane(
  lane: ThreadLane,
  job: SweepJob,
  backend: BackendName | undefined,
  userEnvs: UserEnvironments,
): Promise<JobOutcome> {
  return runJobOnLane<SweepJob, JobOutcome>(lane, "sweep", job, { backend, userEnvs }, `sweep job ${job.key}`);
}

/** Sends the jobs to the queue and resolves when every one has an outcome written. */
export async function runOnQueue(jobs: SweepJob[], url: string, backend: BackendName | null, opts: QueueRunOptions): Promise<void> {
  await checkQueueReachable(url);
  const { Queue, QueueEvents } = bullmq();
  const connection = connectionFrom(url);
  const queue = new Queue<QueueJobData, JobOutcome>(QUEUE_NAME, { connection });
  const events = new QueueEvents(QUEUE_NAME, { connection });
  const outcomes = new Outcomes(jobs, queue, opts.onOutcome);
  const onAbort = () => outcomes.fail(new PoolStopped(String((opts.signal?.reason as Error | undefined)?.message ?? "stopped")));
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await events.waitUntilReady();
    events.on("completed", ({ jobId }) => void outcomes.check(jobId).catch((e) => log.warn({ err: e }, "checking a completed job")));
    events.on("failed", ({ jobId }) => void outcomes.check(jobId).catch((e) => log.warn({ err: e }, "checking a failed job")));
    events.on("active", ({ jobId }) => opts.onActive?.(jobId));
    await enqueue(queue, jobs, backend, opts.attempts ?? 3);
    await outcomes.collect(opts.pollMs ?? 2000);
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    if (opts.discardUnfinished && outcomes.pending.size > 0) await discardWaiting(queue, [...outcomes.pending]);
    await events.close();
    await queue.close();
  }
}

/**
 * The outcomes of a coordinator's jobs as they come in: each handed to
 * `onOutcome` once (a job whose attempts ran out gets a failed outcome);
 * `done` resolves once every job has one, and rejects with the first error
 * of a handler or with `fail` (a stop).
 */
class Outcomes {
  readonly pending: Set<string>;
  private readonly byKey: Map<string, SweepJob>;
  private readonly handling = new Set<string>();
  private readonly done: Promise<void>;
  private settle!: () => void;
  fail!: (e: Error) => void;

  constructor(
    jobs: SweepJob[],
    private readonly queue: Queue<QueueJobData, JobOutcome>,
    private readonly onOutcome: QueueRunOptions["onOutcome"],
  ) {
    this.byKey = new Map(jobs.map((j) => [j.key, j]));
    this.pending = new Set(this.byKey.keys());
    this.done = new Promise<void>((res, rej) => {
      this.settle = res;
      this.fail = rej;
    });
    this.done.catch(() => {}); // a stop before the jobs are queued: seen in collect(), not as an unhandled rejection
  }

  /** Reads a job's state in the queue: a completed one gives its outcome, a failed one (attempts ran out) a failed outcome. */
  async check(key: string): Promise<void> {
    const job = await this.queue.getJob(key);
    if (!job) return;
    const state = await job.getState();
    if (state === "completed" && job.returnvalue) await this.handle(key, job.returnvalue);
    else if (state === "failed")
      await this.handle(key, exhausted(this.byKey.get(key)!, `gave up after ${job.attemptsMade} attempts: ${job.failedReason}`));
  }

  /** Waits until every job has an outcome; polls the pending jobs as well, since events can be missed (a reconnect). */
  async collect(pollMs: number): Promise<void> {
    const poll = setInterval(() => {
      for (const key of this.pending) void this.check(key).catch(() => {});
    }, pollMs);
    try {
      for (const key of [...this.pending]) await this.check(key);
      if (this.pending.size === 0) this.settle();
      await this.done;
    } finally {
      clearInterval(poll);
    }
  }

  private async handle(key: string, outcome: JobOutcome): Promise<void> {
    if (!this.pending.has(key) || this.handling.has(key)) return;
    this.handling.add(key);
    try {
      await this.onOutcome(outcome);
      this.pending.delete(key);
      if (this.pending.size === 0) this.settle();
    } catch (e) {
      this.fail(e as Error);
    } finally {
      this.handling.delete(key);
    }
  }
}

/** Adds the jobs the queue does not hold yet (and again those a previous coordinator gave up on), keyed by their stable keys. */
async function enqueue(
  queue: Queue<QueueJobData, JobOutcome>,
  jobs: SweepJob[],
  backend: BackendName | null,
  attempts: number,
): Promise<void> {
  const toAdd: SweepJob[] = [];
  for (const j of jobs) {
    const existing = await queue.getJob(j.key);
    if (!existing) toAdd.push(j);
    else {
      const state = await existing.getState();
      if (state === "failed") {
        // a previous coordinator gave up on it: try again from scratch
        await existing.remove();
        toAdd.push(j);
      }
    }
  }
  await queue.addBulk(
    toAdd.map((j) => ({
      name: j.kind,
      data: { job: j, backend },
      opts: {
        jobId: j.key,
        attempts,
        backoff: { type: "fixed", delay: 1000 },
        // outcomes carry checkpoints (~100 KB+): keep only enough for a coordinator restart;
        // an evicted one is simply trained again (writes are idempotent by key)
        removeOnComplete: { age: 24 * 3600, count: 1000 },
        removeOnFail: { age: 7 * 24 * 3600, count: 1000 },
      },
    })),
  );
  log.info({ added: toAdd.length, already: jobs.length - toAdd.length, queue: QUEUE_NAME }, "sweep jobs queued");
}

/** Removes the jobs among `keys` that no worker has started (an active job is locked by its worker and stays). */
async function discardWaiting(queue: Queue<QueueJobData, JobOutcome>, keys: string[]): Promise<void> {
  let removed = 0;
  for (const key of keys) {
    const job = await queue.getJob(key).catch(() => undefined);
    if (!job) continue;
    const state = await job.getState().catch(() => "unknown");
    if (state !== "waiting" && state !== "delayed" && state !== "prioritized") continue;
    await job.remove().then(
      () => removed++,
      () => {},
    );
  }
  log.info({ removed, unfinished: keys.length }, "unfinished queued jobs removed");
}

export interface QueueWorkerOptions {
  concurrency?: number;
  /** A job whose worker stops renewing its lock this long is retried elsewhere. */
  lockMs?: number;
  userEnvs?: UserEnvironments;
  /** Overrides the backend the sweep asked for. */
  backend?: BackendName;
}

/** Takes jobs from the queue and trains them on local worker threads; resolves once closed. */
export function startQueueWorker(url: string, opts: QueueWorkerOptions = {}): Worker<QueueJobData, JobOutcome> {
  const lockDuration = opts.lockMs ?? 30_000;
  // one kept thread per concurrent job
  const lanes = Array.from({ length: opts.concurrency ?? 1 }, () => new ThreadLane());
  const worker = new (bullmq().Worker)<QueueJobData, JobOutcome>(
    QUEUE_NAME,
    async (job: Job<QueueJobData, JobOutcome>) => {
      const backend = opts.backend ?? job.data.backend ?? undefined;
      log.info({ key: job.id, kind: job.data.job.kind, attempt: job.attemptsMade + 1 }, "job taken");
      const lane = lanes.pop() ?? new ThreadLane();
      let outcome: JobOutcome;
      try {
        outcome = await runSweepJobOnLane(lane, job.data.job, backend, opts.userEnvs ?? {});
      } finally {
        lanes.push(lane);
      }
      log.info({ key: job.id, status: outcome.status, seconds: outcome.seconds.toFixed(1) }, "job done");
      return outcome;
    },
    {
      connection: connectionFrom(url),
      concurrency: opts.concurrency ?? 1,
      lockDuration,
      stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
      maxStalledCount: 2,
    },
  );
  worker.on("failed", (job, err) => log.warn({ key: job?.id, err: err.message }, "job attempt failed"));
  worker.on("closed", () => void Promise.all(lanes.map((l) => l.close())));
  return worker;
}
