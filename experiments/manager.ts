/**
 * The RunManager owns the runs of a long-lived process (the server): it
 * stores them, schedules them on worker threads (at most `maxConcurrent` at
 * once, the rest queued), forwards control (pause, resume, stop, intervene),
 * and re-emits every run event to its listeners after the store saw it.
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
import { readCheckpointPoint, resumableCheckpoint } from "./checkpoint.ts";

const log = moduleLogger("experiments/manager");

export class LimitError extends RewardlabError {
  constructor(
    readonly limit: string,
    readonly value: number,
    message: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends RewardlabError {}
export class ConflictError extends RewardlabError {}

export interface ManagerOptions {
  store: Store;
  /** Runs training at once; more are queued. */
  maxConcurrent?: number;
  /** Runs queued or running at once; more are refused (429). */
  maxActive?: number;
  backend?: BackendName;
  userEnvs?: UserEnvironments;
}

interface Live {
  id: string;
  worker: Worker | null;
  status: RunStatus;
  learning: boolean;
  variant: string;
  reward: RunSpec["reward"];
  resumeFrom?: ResumePoint;
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

  constructor(private readonly opts: ManagerOptions) {
    this.store = opts.store;
    this.maxConcurrent = opts.maxConcurrent ?? 2;
    this.maxActive = opts.maxActive ?? 16;
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
    const active = [...this.live.values()].filter((l) => l.status === "queued" || l.status === "running" || l.status === "paused").length;
    if (active >= this.maxActive) {
      throw new LimitError(
        "maxActiveRuns",
        this.maxActive,
        `too many active runs: at most ${this.maxActive} runs may be queued or running at once; stop one first`,
      );
    }
    const id = randomUUID();
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
    const l: Live = {
      id,
      worker: null,
      status: "queued",
      learning: true,
      variant,
      reward,
      done,
      resolveDone,
      ...(resumeFrom ? { resumeFrom } : {}),
    };
    this.live.set(id, l);
    return l;
  }

  private schedule(): void {
    while (!this.closing && this.queue.length > 0 && this.running() < this.maxConcurrent) {
      const id = this.queue.shift()!;
      const l = this.live.get(id);
      if (l?.status !== "queued") continue;
      this.startWorker(l);
    }
  }

  private running(): number {
    let n = 0;
    for (const l of this.live.values()) if (l.worker) n++;
    return n;
  }

  private startWorker(l: Live): void {
    const stored = this.store.getRun(l.id);
    if (!stored) return;
    const w = spawnWorker();
    l.worker = w;
    l.status = "running";
    let finished = false;
    const finish = (status: RunStatus, reason?: string) => {
      if (finished) return;
      finished = true;
      l.worker = null;
      if (status === "failed" || (l.status !== "completed" && l.status !== "stopped" && l.status !== "failed")) {
        if (l.status !== status) this.emit({ type: "status", runId: l.id, status, ...(reason ? { reason } : {}) });
      }
      l.status = status;
      this.store.flush();
      this.live.delete(l.id);
      void w.terminate();
      l.resolveDone();
      log.info({ runId: l.id, status, reason }, "run finished");
      this.schedule();
    };
    w.on("message", (m: WorkerReply) => {
      if (m.type === "event") {
        const e = m.event;
        if (e.type === "status") l.status = e.status;
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
    if (!l || (l.status !== "running" && l.status !== "queued"))
      throw new ConflictError(`run ${id} is ${r.status}; only a running run can be paused`);
    this.send(id, { type: "pause" });
    return r;
  }

  resume(id: string): StoredRun {
    const r = this.requireRun(id);
    const l = this.live.get(id);
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
    if (r.status === "interrupted") return true;
    return (r.status === "stopped" || r.status === "failed") && r.envSteps < r.spec.steps;
  }

  /**
   * Resumes an interrupted, stopped or failed run from its last checkpoint:
   * its history is rewound to the checkpoint (what was recorded after it
   * belongs to training the checkpoint does not hold) and the agent trains on
   * from there.
   */
  private resumeFromCheckpoint(r: StoredRun): StoredRun {
    const from = r.checkpointDir ? resumableCheckpoint(dirname(r.checkpointDir)) : null;
    if (!from) throw new ConflictError(`run ${r.id} has no complete checkpoint to resume from`);
    if (!this.canResume(r)) throw new ConflictError(`run ${r.id} already used its whole budget`);
    registration(r.spec.env);
    const saved = readCheckpointPoint(from);
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
    } else {
      this.send(id, { type: "stop" });
    }
    return this.store.getRun(id)!;
  }

  intervene(id: string, change: Intervention): StoredRun {
    const r = this.requireRun(id);
    const l = this.live.get(id);
    if (!l?.worker) throw new ConflictError(`run ${id} is ${r.status}; interventions need a running or paused run`);
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

  async delete(id: string): Promise<void> {
    this.requireRun(id);
    const l = this.live.get(id);
    if (l) {
      this.stop(id);
      await Promise.race([l.done, new Promise((r) => setTimeout(r, 5000))]);
    }
    this.store.deleteRun(id);
    await rm(this.runDir(id), { recursive: true, force: true });
  }

  liveState(id: string): { learning: boolean; variant: string; reward: RunSpec["reward"] } | null {
    const l = this.live.get(id);
    return l ? { learning: l.learning, variant: l.variant, reward: l.reward } : null;
  }

  activeCount(): number {
    return this.live.size;
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
    for (const l of this.live.values()) {
      void l.worker?.terminate();
    }
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
