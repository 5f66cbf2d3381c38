/**
 * The RunManager owns the runs of a long-lived process (the server): it
 * stores them, schedules them on worker threads (at most `maxConcurrent` at
 * once, the rest queued), forwards control (pause, resume, stop, intervene),
 * and re-emits every run event to its listeners after the store saw it.
 *
 * Runs that yield (the server's demo) never keep another run waiting: when a
 * run needs a slot that a yielding run holds, the yielding run is paused and
 * its slot given away; it resumes by itself once a slot is free. A queued run
 * carries, as its status reason, why it waits and its place in the queue.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import type { Worker } from "node:worker_threads";
import { RewardlabError, ValidationError } from "../envs/errors.ts";
import { registration } from "../envs/registry.ts";
import type { RunEvent, RunListener, RunSpec, RunStatus } from "./events.ts";
import { resolveRunSpec, type Intervention, type ResumePoint } from "./run.ts";
import { spawnWorker, type BackendName, type WorkerReply, type WorkerRequest } from "./pool.ts";
import type { Store, StoredRun } from "./store.ts";
import type { UserEnvironments } from "./plugins.ts";
import { moduleLogger } from "./log.ts";
import { checkpointProblems, readCheckpointPoint, resumableCheckpoint } from "./checkpoint.ts";
import { LIMITS, LimitError } from "./limits.ts";

const log = moduleLogger("experiments/manager");

export { LimitError };

export class NotFoundError extends RewardlabError {}

/** The status reason of a yielding run paused to free its slot. */
export const YIELDED_REASON = "paused: gave its training slot to a user's run; resumes by itself when a slot is free";
export class ConflictError extends RewardlabError {}

export interface ManagerOptions {
  store: Store;
  /** Runs training at once; more are queued. */
  maxConcurrent?: number;
  /** Runs queued or running at once; more are refused (429). */
  maxActive?: number;
  backend?: BackendName;
  userEnvs?: UserEnvironments;
  /** Runs that give their slot to any other run (paused until a slot is free) and count against no limit. */
  yields?: (spec: RunSpec) => boolean;
}

interface Live {
  id: string;
  worker: Worker | null;
  status: RunStatus;
  learning: boolean;
  variant: string;
  reward: RunSpec["reward"];
  resumeFrom?: ResumePoint;
  /** The worker has reported the run running (control messages reach the Run from then on). */
  started: boolean;
  /** Gives its slot to any other run (the demo). */
  yields: boolean;
  /** Paused (or to be paused once started) to free its slot for another run; holds no slot meanwhile. */
  yielded: boolean;
  /** The queue reason last announced for it (announced again only when it changes). */
  queueNote: string | null;
  /** Being deleted: its further events are dropped, not stored. */
  deleting: boolean;
  /** Ends the run now, terminating its worker thread (set while a worker runs it). */
  kill: ((status: RunStatus, reason: string) => void) | null;
  stopTimer: NodeJS.Timeout | null;
  /** Resolves once the run has finished and its worker thread is gone. */
  done: Promise<void>;
  resolveDone: () => void;
}

export class RunManager {
  readonly store: Store;
  readonly maxConcurrent: number;
  readonly maxActive: number;
  private readonly live = new Map<string, Live>();
  private readonly queue: string[] = [];
  private readonly listeners: RunListener[] = [];
  private closing = false;
  /** Other work that counts against maxActive (the server's running probes). */
  otherActive: () => number = () => 0;

  constructor(private readonly opts: ManagerOptions) {
    this.store = opts.store;
    this.maxConcurrent = opts.maxConcurrent ?? 2;
    this.maxActive = opts.maxActive ?? 16;
    // a write the store cannot make (e.g. for a run deleted meanwhile) fails that run, never the process
    this.store.onWriteError = (runId, err) => this.writeFailed(runId, err);
  }

  private writeFailed(runId: string | null, err: Error): void {
    const l = runId ? this.live.get(runId) : undefined;
    log.error({ runId, err: err.message }, "a store write failed");
    if (!l || l.deleting) return;
    const reason = `the store could not record the run: ${err.message}`;
    if (l.kill) {
      l.kill("failed", reason);
      return;
    }
    // queued, never started: it leaves the queue
    const i = this.queue.indexOf(l.id);
    if (i >= 0) this.queue.splice(i, 1);
    this.live.delete(l.id);
    l.resolveDone();
    this.emit({ type: "status", runId: l.id, status: "failed", reason });
  }

  /** Throws the maxActiveRuns LimitError when one more run or probe would pass it. */
  checkActive(): void {
    const active = this.activeCount() + this.otherActive();
    if (active >= this.maxActive) {
      throw new LimitError(
        "maxActiveRuns",
        this.maxActive,
        `too many active runs: at most ${this.maxActive} runs and probes may be queued, running or paused at once; stop one first`,
      );
    }
  }

  on(listener: RunListener): void {
    this.listeners.push(listener);
  }

  private emit(e: RunEvent): void {
    this.store.record(e);
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        log.error({ err }, "run event listener threw");
      }
    }
  }

  runDir(id: string): string {
    const base = resolve(this.store.dataDir, "runs");
    const dir = resolve(base, id);
    // ids are uuids we made, but never let one reach outside the data folder
    if (!dir.startsWith(base + sep)) throw new ValidationError(`bad run id`);
    return dir;
  }

  /** Validates, stores and schedules a run. */
  create(request: unknown): StoredRun {
    if (this.closing) throw new ConflictError("the server is shutting down; no new runs");
    const spec: RunSpec = resolveRunSpec(request);
    const id = randomUUID();
    const yields = this.opts.yields?.(spec) ?? false;
    if (!yields) this.checkActive();
    this.store.createRun(id, spec, "queued");
    this.track(id, spec.variant, spec.reward);
    this.queue.push(id);
    log.info({ runId: id, env: spec.env, agent: spec.agent, seed: spec.seed, steps: spec.steps }, "run created");
    this.schedule();
    return this.store.getRun(id)!;
  }

  private track(id: string, variant: string, reward: RunSpec["reward"], resumeFrom?: ResumePoint): Live {
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const spec = this.store.getRun(id)?.spec;
    const l: Live = {
      id,
      worker: null,
      status: "queued",
      learning: true,
      variant,
      reward,
      started: false,
      yields: spec ? (this.opts.yields?.(spec) ?? false) : false,
      yielded: false,
      queueNote: null,
      deleting: false,
      kill: null,
      stopTimer: null,
      done,
      resolveDone,
      ...(resumeFrom ? { resumeFrom } : {}),
    };
    this.live.set(id, l);
    return l;
  }

  /**
   * Starts queued runs while slots are free (runs that do not yield first),
   * takes a slot from a yielding run for a run that does not yield, gives
   * yielded slots back when nothing waits, then tells each queued run why it waits.
   */
  private schedule(): void {
    while (!this.closing) {
      const id = this.nextQueued();
      if (id === undefined) break;
      const l = this.live.get(id)!;
      if (this.running() >= this.maxConcurrent && (l.yields || !this.takeYieldingSlot())) break;
      this.queue.splice(this.queue.indexOf(id), 1);
      this.startWorker(l);
    }
    if (!this.closing && this.nextQueued() === undefined) {
      for (const l of this.live.values()) {
        if (this.running() >= this.maxConcurrent) break;
        if (!l.yielded) continue;
        l.yielded = false;
        if (l.started) this.send(l.id, { type: "resume" });
        log.info({ runId: l.id }, "a free slot: the yielded run resumes");
      }
    }
    this.announceQueue();
  }

  /** The queued run to start next: the first that does not yield, else the first. */
  private nextQueued(): string | undefined {
    const waiting = this.queue.filter((id) => this.live.get(id)?.status === "queued");
    // entries of runs stopped or failed while queued are dropped
    if (waiting.length !== this.queue.length) this.queue.splice(0, this.queue.length, ...waiting);
    return waiting.find((id) => !this.live.get(id)!.yields) ?? waiting[0];
  }

  /** Pauses a running yielding run so that its slot is free now; false when none holds one. */
  private takeYieldingSlot(): boolean {
    for (const l of this.live.values()) {
      if (!l.yields || l.yielded || !l.worker || l.status !== "running") continue;
      l.yielded = true;
      // a run still loading is paused as soon as it reports running
      if (l.started) this.send(l.id, { type: "pause" });
      log.info({ runId: l.id }, "a yielding run gives its slot to a queued run");
      return true;
    }
    return false;
  }

  /** Emits a queued status with the reason (slots taken, place in the queue) to each queued run whose reason changed. */
  private announceQueue(): void {
    const order = [...this.queue].sort((a, b) => Number(this.live.get(a)!.yields) - Number(this.live.get(b)!.yields));
    const holders = [...this.live.values()].filter((l) => l.worker && !l.yielded).map((l) => l.id.slice(0, 8));
    order.forEach((id, i) => {
      const l = this.live.get(id)!;
      const note = `place ${i + 1} of ${order.length} in the queue: waiting for a training slot (${holders.length} of ${this.maxConcurrent} taken by runs ${holders.join(", ")})`;
      if (note === l.queueNote) return;
      l.queueNote = note;
      this.emit({ type: "status", runId: id, status: "queued", reason: note });
    });
  }

  /** Worker threads that hold a training slot (a yielded run holds none). */
  private running(): number {
    let n = 0;
    for (const l of this.live.values()) if (l.worker && !l.yielded) n++;
    return n;
  }

  private startWorker(l: Live): void {
    const stored = this.store.getRun(l.id);
    if (!stored) return;
    const w = spawnWorker();
    l.worker = w;
    l.status = "running";
    let finished = false;
    const finish = (status: RunStatus, reason?: string, force = false) => {
      if (finished) return;
      finished = true;
      l.worker = null;
      l.kill = null;
      if (l.stopTimer) clearTimeout(l.stopTimer);
      if (!l.deleting && (force || status === "failed" || (l.status !== "completed" && l.status !== "stopped" && l.status !== "failed"))) {
        if (l.status !== status || force) this.emit({ type: "status", runId: l.id, status, ...(reason ? { reason } : {}) });
      }
      l.status = status;
      this.store.flush();
      this.live.delete(l.id);
      // done once the thread is gone: a deleted run's folder is removed only after its last write
      void w.terminate().finally(() => l.resolveDone());
      log.info({ runId: l.id, status, reason }, "run finished");
      this.schedule();
    };
    l.kill = (status, reason) => finish(status, reason, true);
    w.on("message", (m: WorkerReply) => {
      if (finished) return;
      if (m.type === "event") {
        // a run being deleted writes nothing more
        if (l.deleting) return;
        let e = m.event;
        if (e.type === "status") {
          l.status = e.status;
          if (e.status === "running" && !l.started) {
            l.started = true;
            if (l.yielded) this.send(l.id, { type: "pause" });
          }
          if (e.status === "paused" && l.yielded) e = { ...e, reason: YIELDED_REASON };
        }
        if (e.type === "intervention") {
          l.variant = e.variant;
          l.learning = e.learning;
          l.reward = e.reward;
        }
        this.emit(e);
      } else if (m.type === "done") finish(m.status);
      else if (m.type === "error") finish("failed", m.message);
      else if (m.type === "warning") log.warn({ runId: l.id, message: m.message }, "worker warning");
    });
    w.on("error", (err) => finish("failed", `worker crashed: ${err.message}`));
    w.on("exit", (code) =>
      finish(l.status === "running" || l.status === "paused" ? "failed" : l.status, `worker exited with code ${code}`),
    );
    const req: WorkerRequest = {
      type: "run",
      runId: l.id,
      spec: stored.spec,
      dir: this.runDir(l.id),
      userEnvs: this.opts.userEnvs ?? {},
      ...(l.resumeFrom ? { resumeFrom: l.resumeFrom } : {}),
      ...(this.opts.backend ? { backend: this.opts.backend } : {}),
    };
    w.postMessage(req);
  }

  private requireRun(id: string): StoredRun {
    const r = this.store.getRun(id);
    if (!r) throw new NotFoundError(`no run with id ${id}`);
    return r;
  }

  private send(id: string, m: WorkerRequest): void {
    this.live.get(id)?.worker?.postMessage(m);
  }

  pause(id: string): StoredRun {
    const r = this.requireRun(id);
    const l = this.live.get(id);
    if (l?.status !== "running") throw new ConflictError(`run ${id} is ${l?.status ?? r.status}; only a running run can be paused`);
    // a run whose worker is still loading would drop the pause: refuse it rather than answer 200 and ignore it
    if (!l.started) throw new ConflictError(`run ${id} is starting; pause it once it runs (or stop it)`);
    this.send(id, { type: "pause" });
    return r;
  }

  resume(id: string): StoredRun {
    const r = this.requireRun(id);
    const l = this.live.get(id);
    if (l?.yielded) throw new ConflictError(`run ${id} gave its training slot to another run; it resumes by itself when a slot is free`);
    if (l) {
      this.send(id, { type: "resume" });
      return r;
    }
    if (r.status === "interrupted" || r.status === "stopped" || r.status === "failed") return this.resumeFromCheckpoint(r);
    throw new ConflictError(`run ${id} is ${r.status}; nothing to resume`);
  }

  /** Whether a run that is not live can be resumed from a checkpoint (what resume() would try). */
  canResume(r: StoredRun): boolean {
    if (this.live.has(r.id) || !r.checkpointDir) return false;
    if (r.status !== "interrupted" && !((r.status === "stopped" || r.status === "failed") && r.envSteps < r.spec.steps)) return false;
    // a checkpoint that would not load makes a run not resumable (validated once per saved file)
    return resumableCheckpoint(dirname(r.checkpointDir)) !== null;
  }

  /**
   * Resumes an interrupted, stopped or failed run from its last checkpoint:
   * its history is rewound to the checkpoint (what was recorded after it
   * belongs to training the checkpoint does not hold) and the agent trains on
   * from there.
   */
  private resumeFromCheckpoint(r: StoredRun): StoredRun {
    if (this.closing) throw new ConflictError("the server is shutting down; no runs resume");
    const from = r.checkpointDir ? resumableCheckpoint(dirname(r.checkpointDir)) : null;
    if (!from) {
      // nothing is rewound: the history stays as it was
      const problems = r.checkpointDir ? checkpointProblems(dirname(r.checkpointDir)) : [];
      throw new ConflictError(`run ${r.id} has no complete checkpoint to resume from${problems.length ? `: ${problems.join("; ")}` : ""}`);
    }
    if (!this.canResume(r)) throw new ConflictError(`run ${r.id} already used its whole budget`);
    if (!this.opts.yields?.(r.spec)) this.checkActive();
    registration(r.spec.env);
    let saved: ReturnType<typeof readCheckpointPoint>;
    try {
      saved = readCheckpointPoint(from);
    } catch (e) {
      throw new ConflictError(`run ${r.id} cannot resume: ${(e as Error).message}`);
    }
    const at = saved.state.envSteps;
    // the intervention state at the checkpoint (older checkpoints carry none: the last intervention up to it)
    const before = this.store
      .interventions(r.id)
      .filter((iv) => iv.envSteps <= at)
      .at(-1);
    const state = {
      envSteps: at,
      variant: saved.state.variant ?? before?.variant ?? r.spec.variant,
      learning: saved.state.learning ?? before?.learning ?? true,
      reward: saved.state.reward ?? before?.reward ?? r.spec.reward,
    };
    const rewound = this.store.rewindTo(r.id, at, saved.ledger, state);
    const l = this.track(r.id, state.variant, state.reward, { dir: from, episodes: rewound.episodes, ...state });
    l.learning = state.learning;
    const discarded = rewound.discardedEpisodes ? `; ${rewound.discardedEpisodes} episodes recorded after it were discarded` : "";
    const reason = `resuming from the checkpoint at ${at} steps${discarded}`;
    log.info({ runId: r.id, ...rewound, envSteps: at }, "run resumed from checkpoint");
    this.emit({ type: "status", runId: r.id, status: "queued", reason });
    l.status = "queued";
    this.queue.push(r.id);
    this.schedule();
    return this.store.getRun(r.id)!;
  }

  stop(id: string): StoredRun {
    const r = this.requireRun(id);
    const l = this.live.get(id);
    if (!l) throw new ConflictError(`run ${id} is ${r.status}; only a queued, running or paused run can be stopped`);
    if (!l.worker) {
      // still queued: never started
      const i = this.queue.indexOf(id);
      if (i >= 0) this.queue.splice(i, 1);
      this.live.delete(id);
      l.resolveDone();
      this.emit({ type: "status", runId: id, status: "stopped", reason: "stopped before it started" });
      // the runs behind it move up
      this.schedule();
    } else {
      this.send(id, { type: "stop" });
      // a run stuck in a long step (a huge episode, a planner search) never reads the message: its thread is ended
      l.stopTimer ??= setTimeout(() => {
        log.warn({ runId: id, graceMs: LIMITS.stopGraceMs }, "run did not acknowledge stop: terminating its worker thread");
        l.kill?.("stopped", `did not acknowledge stop within ${LIMITS.stopGraceMs / 1000} s; its worker thread was terminated`);
      }, LIMITS.stopGraceMs);
      l.stopTimer.unref();
    }
    return this.store.getRun(id)!;
  }

  intervene(id: string, change: Intervention): StoredRun {
    const r = this.requireRun(id);
    const l = this.live.get(id);
    if (!l?.worker) throw new ConflictError(`run ${id} is ${r.status}; interventions need a running or paused run`);
    // the worker would drop a change sent before its run exists
    if (!l.started) throw new ConflictError(`run ${id} is starting; intervene once it runs`);
    if (change.variant !== undefined) {
      const variants = registration(r.spec.env).variants;
      if (!variants.includes(change.variant)) {
        throw new ValidationError(`variant "${change.variant}" is not a variant of ${r.spec.env} (${variants.join(", ")})`, [
          { path: "/variant", message: `must be one of ${variants.join(", ")}` },
        ]);
      }
    }
    this.send(id, { type: "intervene", change });
    // accepted: the worker applies it before its next step; report the requested state at once
    if (change.variant !== undefined) l.variant = change.variant;
    if (change.learning !== undefined) l.learning = change.learning;
    if (change.reward !== undefined) l.reward = change.reward;
    return r;
  }

  /**
   * Stops the run, waits until its worker thread is gone (terminated after
   * the stop grace period), drops its queued writes, then deletes its rows
   * and its folder.
   */
  async delete(id: string): Promise<void> {
    this.requireRun(id);
    const l = this.live.get(id);
    if (l) {
      if (l.deleting) throw new ConflictError(`run ${id} is already being deleted`);
      l.deleting = true;
      this.stop(id);
      await l.done;
    }
    this.store.discard(id);
    this.store.deleteRun(id);
    await rm(this.runDir(id), { recursive: true, force: true });
    this.emitDeleted(id);
  }

  private emitDeleted(id: string): void {
    for (const l of this.deleteListeners) {
      try {
        l(id);
      } catch (err) {
        log.error({ err }, "delete listener threw");
      }
    }
  }

  private readonly deleteListeners: ((runId: string) => void)[] = [];

  /** Called after a run is deleted (the broadcaster forgets it). */
  onDelete(listener: (runId: string) => void): void {
    this.deleteListeners.push(listener);
  }

  liveState(id: string): { learning: boolean; variant: string; reward: RunSpec["reward"] } | null {
    const l = this.live.get(id);
    return l ? { learning: l.learning, variant: l.variant, reward: l.reward } : null;
  }

  /** Runs queued, running or paused that count against maxActive (yielding runs count against no limit). */
  activeCount(): number {
    let n = 0;
    for (const l of this.live.values()) if (!l.yields) n++;
    return n;
  }

  /** Whether a run is paused (or about to be) because it gave its slot to another run. */
  isYielded(id: string): boolean {
    return this.live.get(id)?.yielded ?? false;
  }

  /** Stops every run (each checkpoints on the way out), waits, flushes the store. */
  async shutdown(timeoutMs = 10_000): Promise<void> {
    this.closing = true;
    const waits: Promise<void>[] = [];
    const cut: string[] = [];
    for (const l of this.live.values()) {
      cut.push(l.id);
      if (l.worker) {
        l.worker.postMessage({ type: "stop" } satisfies WorkerRequest);
        waits.push(l.done);
      }
    }
    await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, timeoutMs))]);
    for (const l of this.live.values()) l.kill?.("interrupted", "the server shut down before the run acknowledged stop");
    // runs the shutdown cut short (they checkpointed on the way out) are interrupted, not stopped by a user
    const reason = "the server shut down before the run finished; resume it to continue from its last checkpoint";
    for (const id of cut) {
      const r = this.store.getRun(id);
      if (r && r.status !== "completed" && r.status !== "failed") this.emit({ type: "status", runId: id, status: "interrupted", reason });
    }
    this.store.flush();
    this.store.markInterrupted(reason);
  }
}
