/**
 * Sweeps started from the API, as first-class jobs: expanded in slices (a
 * 10,000-job spec never blocks the event loop in one piece), bounded in env
 * steps like a probe, counted against the server's active limit, stoppable
 * and deletable, marked interrupted when a server stops under them and
 * resumable (the stored outcomes are skipped). Runs on local threads, or the
 * server's --queue.
 */
import { rm } from "node:fs/promises";
import { resolve, sep } from "node:path";
import type { Store } from "../experiments/store.ts";
import { runExpandedSweep, aggregateProbes, type SweepProgress } from "../experiments/sweeps/index.ts";
import { expandSweepAsync, type ExpandedSweep } from "../experiments/sweeps/spec.ts";
import { LIMITS, LimitError, probeEnvSteps } from "../experiments/limits.ts";
import { ConflictError, NotFoundError } from "../experiments/manager.ts";
import { PoolStopped } from "../experiments/pool.ts";
import { registration } from "../envs/registry.ts";
import { moduleLogger } from "../experiments/log.ts";
import type { UserEnvironments } from "../experiments/plugins.ts";
import type { SweepView } from "./protocol.ts";
import { relativePaths } from "./views.ts";
import { ActiveJobs, Listeners } from "./jobs.ts";

const log = moduleLogger("server/sweeps");

/** Sweep specs being expanded at once (dry runs and starts); more are refused with 429. */
export const MAX_EXPANDING = 2;

export interface SweepServiceOptions {
  queue?: string;
  workers?: number;
  userEnvs?: UserEnvironments;
  maxConcurrent?: number;
  /** Throws when one more active job would pass the server's limit (RunManager.checkActive). */
  checkActive?: () => void;
}

interface ActiveSweep {
  progress: SweepProgress;
  controller: AbortController;
  done: Promise<void>;
}

/** The env steps a sweep costs: each run's budget and evaluation, each probe's jobs (as a probe is counted). */
export function sweepEnvSteps(sweep: ExpandedSweep): number {
  let total = 0;
  for (const j of sweep.jobs) {
    if (j.kind === "run") total += j.spec.steps + j.spec.evalEpisodes * registration(j.spec.env).maxEpisodeSteps;
  }
  for (const plan of sweep.probePlans) total += probeEnvSteps(plan.jobs, registration(plan.env).maxEpisodeSteps);
  return total;
}

export class SweepService {
  private readonly active = new ActiveJobs<ActiveSweep>("sweep");
  private readonly listeners = new Listeners<SweepView>("sweep", log);
  private expanding = 0;
  private closing = false;
  /** Probe tables of recently viewed finished sweeps (a finished sweep's tables do not change). */
  private readonly tables = new Map<string, SweepView["probes"]>();

  constructor(
    private readonly store: Store,
    private readonly opts: SweepServiceOptions = {},
  ) {
    const interrupted = store.markSweepsInterrupted();
    if (interrupted.length)
      log.warn({ sweeps: interrupted }, "sweeps interrupted by the last shutdown; resume them with POST /api/sweeps/:id/resume");
  }

  on(l: (s: SweepView) => void): void {
    this.listeners.add(l);
  }

  private publish(id: string): void {
    const view = this.get(id);
    if (view) this.listeners.emit(view);
  }

  activeCount(): number {
    return this.active.size;
  }

  /** Expands a spec in slices, at most MAX_EXPANDING at once, and checks its work against maxSweepEnvSteps. */
  private async expand(spec: unknown): Promise<ExpandedSweep> {
    if (this.expanding >= MAX_EXPANDING) {
      throw new LimitError(
        "maxExpandingSweeps",
        MAX_EXPANDING,
        `${MAX_EXPANDING} sweep specs are being expanded already; try again in a moment`,
      );
    }
    this.expanding++;
    let sweep: ExpandedSweep;
    try {
      sweep = await expandSweepAsync(spec);
    } finally {
      this.expanding--;
    }
    sweep.probePlans.forEach((plan, i) => {
      const steps = probeEnvSteps(plan.jobs, registration(plan.env).maxEpisodeSteps);
      if (steps > LIMITS.maxProbeEnvSteps) {
        throw new LimitError(
          "maxProbeEnvSteps",
          LIMITS.maxProbeEnvSteps,
          `sweep spec /probes/${i} would take about ${steps.toLocaleString("en-US")} env steps; at most ${LIMITS.maxProbeEnvSteps.toLocaleString("en-US")} per probe`,
        );
      }
    });
    const work = sweepEnvSteps(sweep);
    if (work > LIMITS.maxSweepEnvSteps) {
      throw new LimitError(
        "maxSweepEnvSteps",
        LIMITS.maxSweepEnvSteps,
        `sweep ${JSON.stringify(sweep.spec.name)} would take about ${work.toLocaleString("en-US")} env steps; at most ${LIMITS.maxSweepEnvSteps.toLocaleString("en-US")} per sweep (fewer jobs, seeds or steps)`,
      );
    }
    return sweep;
  }

  /** Validates a spec without starting it: its id, job counts and env steps. */
  async check(spec: unknown): Promise<{ id: string; name: string; jobs: number; runs: number; probeJobs: number; envSteps: number }> {
    const sweep = await this.expand(spec);
    const runs = sweep.jobs.filter((j) => j.kind === "run").length;
    return {
      id: sweep.id,
      name: sweep.spec.name,
      jobs: sweep.jobs.length,
      runs,
      probeJobs: sweep.jobs.length - runs,
      envSteps: sweepEnvSteps(sweep),
    };
  }

  /** Validates and starts a sweep in the background; answers with its view once it is stored. */
  async start(spec: unknown): Promise<SweepView> {
    this.admit();
    const sweep = await this.expand(spec);
    if (this.active.has(sweep.id)) return this.get(sweep.id)!;
    // checked again: another start may have begun while this one expanded
    this.admit();
    const progress: SweepProgress = { total: sweep.jobs.length, skipped: 0, done: 0, failed: 0, running: 0, elapsed: 0 };
    const controller = new AbortController();
    let last = 0;
    const done = runExpandedSweep(sweep, {
      store: this.store,
      signal: controller.signal,
      ...(this.opts.queue ? { queue: this.opts.queue } : {}),
      ...(this.opts.workers ? { workers: this.opts.workers } : {}),
      ...(this.opts.userEnvs ? { userEnvs: this.opts.userEnvs } : {}),
      onProgress: (p) => {
        const a = this.active.get(sweep.id);
        if (a) a.progress = p;
        if (Date.now() - last > 500) {
          last = Date.now();
          this.publish(sweep.id);
        }
      },
    })
      .then((s) => log.info({ sweep: s.id, completed: s.completed, failed: s.failed, seconds: s.seconds }, "sweep finished"))
      .catch((e: Error) => {
        if (controller.signal.aborted || e instanceof PoolStopped) {
          const status = this.closing ? "interrupted" : "stopped";
          this.store.finishSweep(sweep.id, status, e.message);
          log.info({ sweep: sweep.id, status, reason: e.message }, "sweep stopped");
        } else {
          this.store.finishSweep(sweep.id, "failed", e.message);
          log.warn({ sweep: sweep.id, reason: e.message }, "sweep failed");
        }
      })
      .finally(() => {
        this.active.delete(sweep.id);
        this.publish(sweep.id);
      })
      .catch((err: unknown) => log.error({ err, sweep: sweep.id }, "could not store the sweep's outcome"));
    this.active.set(sweep.id, { progress, controller, done });
    // its tables change as it runs again
    this.tables.delete(sweep.id);
    log.info({ sweep: sweep.id, jobs: sweep.jobs.length, mode: this.opts.queue ? "queue" : "local" }, "sweep started");
    return this.get(sweep.id) ?? this.placeholder(sweep.id, sweep.spec.name, sweep.jobs.length);
  }

  /** Throws unless one more sweep may start: the server is up, fewer than maxConcurrent run, the active limit has room. */
  private admit(): void {
    if (this.closing) throw new ConflictError("the server is shutting down; no sweeps start");
    const max = this.opts.maxConcurrent ?? 1;
    if (this.active.size >= max)
      throw new LimitError("maxConcurrentSweeps", max, `a sweep is already running (at most ${max} at once); wait for it or stop it`);
    this.opts.checkActive?.();
  }

  /** Resumes a stopped, interrupted or failed sweep: its stored spec runs again, skipping the jobs already stored. */
  async resume(id: string): Promise<SweepView> {
    const p = this.store.sweepProgress(id);
    if (!p) throw new NotFoundError(`no sweep with id ${id}`);
    if (this.active.has(id)) throw new ConflictError(`sweep ${id} is running`);
    if (p.status === "completed") throw new ConflictError(`sweep ${id} is completed; nothing to resume`);
    return this.start(p.spec);
  }

  /** Stops a running sweep: its threads are terminated; resolves with its stored view (status stopped). */
  async stop(id: string, reason = "stopped by request"): Promise<SweepView> {
    await this.active.stop(id, reason, () => this.store.sweepProgress(id)?.status ?? null);
    return this.get(id)!;
  }

  /** Deletes a sweep (stopping it first): its jobs' rows and run folders, except those another sweep shares. */
  async delete(id: string): Promise<void> {
    if (!this.store.sweepProgress(id)) throw new NotFoundError(`no sweep with id ${id}`);
    await this.active.stopIfRunning(id, "deleted");
    const runKeys = await this.store.deleteSweep(id);
    this.tables.delete(id);
    const base = resolve(this.store.dataDir, "runs");
    for (const key of runKeys) {
      const dir = resolve(base, key);
      if (dir.startsWith(base + sep)) await rm(dir, { recursive: true, force: true });
    }
  }

  /** Stops every running sweep (server shutdown): they are stored as interrupted. */
  async shutdown(): Promise<void> {
    this.closing = true;
    await this.active.stopAll("the server shut down while the sweep was running");
  }

  private placeholder(id: string, name: string, total: number): SweepView {
    return {
      id,
      name,
      status: "running",
      mode: this.opts.queue ? "queue" : "local",
      reason: null,
      total,
      completed: 0,
      failed: 0,
      running: 0,
      createdAt: Date.now(),
      updatedAt: Date.now(),
      runs: [],
      probes: [],
    };
  }

  /** The newest 100 sweeps. */
  list(): SweepView[] {
    return this.store
      .listSweeps()
      .map((id) => this.get(id))
      .filter((v): v is SweepView => v !== null);
  }

  /** A sweep's progress, without its probe tables (cheap: counts from the store). */
  get(id: string): SweepView | null {
    const p = this.store.sweepProgress(id);
    if (!p) return null;
    const live = this.active.get(id);
    return {
      id,
      name: p.name,
      status: live ? "running" : p.status,
      mode: p.mode,
      reason: live || p.reason === null ? null : relativePaths(p.reason, this.store.dataDir),
      total: p.total,
      completed: p.completed,
      failed: p.failed,
      running: live?.progress.running ?? 0,
      createdAt: p.createdAt,
      updatedAt: p.updatedAt,
      runs: this.store.sweepRunKeys(id),
      probes: [],
    };
  }

  /**
   * A sweep with its aggregated probe tables once it has finished: its spec
   * expanded in slices (counted with the other expansions), the tables
   * aggregated once and kept for the 16 sweeps viewed last.
   */
  async view(id: string): Promise<SweepView | null> {
    const v = this.get(id);
    if (!v || this.active.has(id)) return v;
    const p = this.store.sweepProgress(id)!;
    if (!(p.spec as { probes?: unknown[] }).probes?.length) return v;
    let probes = this.tables.get(id);
    if (!probes) {
      if (this.expanding >= MAX_EXPANDING) return v;
      this.expanding++;
      try {
        probes = aggregateProbes(this.store, await expandSweepAsync(p.spec));
      } catch (e) {
        log.warn({ sweep: id, reason: (e as Error).message }, "cannot aggregate this sweep's probes");
        return v;
      } finally {
        this.expanding--;
      }
      if (this.tables.size >= 16) this.tables.delete(this.tables.keys().next().value!);
      this.tables.set(id, probes);
    }
    return { ...v, probes };
  }
}
