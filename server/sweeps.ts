/** Starts sweeps from the API (local threads, or the server's --queue) and reports their progress and probe tables. */
import type { Store } from "../experiments/store.ts";
import { runSweep, aggregateProbes, type SweepProgress } from "../experiments/sweeps/index.ts";
import { expandSweep } from "../experiments/sweeps/spec.ts";
import { LIMITS, LimitError, probeEnvSteps } from "../experiments/limits.ts";
import { registration } from "../envs/registry.ts";
import { moduleLogger } from "../experiments/log.ts";
import type { UserEnvironments } from "../experiments/plugins.ts";
import type { SweepView } from "./protocol.ts";

const log = moduleLogger("server/sweeps");

export class SweepService {
  private readonly active = new Map<string, SweepProgress>();
  private listeners: ((s: SweepView) => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly opts: { queue?: string; workers?: number; userEnvs?: UserEnvironments; maxConcurrent?: number } = {},
  ) {}

  on(l: (s: SweepView) => void): void {
    this.listeners.push(l);
  }

  private publish(id: string): void {
    const view = this.get(id);
    if (view) for (const l of this.listeners) l(view);
  }

  /** Validates a spec without starting it: its id and job counts. */
  check(spec: unknown): { id: string; name: string; jobs: number; runs: number; probeJobs: number } {
    const sweep = this.expand(spec);
    const runs = sweep.jobs.filter((j) => j.kind === "run").length;
    return { id: sweep.id, name: sweep.spec.name, jobs: sweep.jobs.length, runs, probeJobs: sweep.jobs.length - runs };
  }

  /** Expands a spec (its job count is checked against maxSweepJobs first) and checks each probe's work against maxProbeEnvSteps. */
  private expand(spec: unknown): ReturnType<typeof expandSweep> {
    const sweep = expandSweep(spec);
    sweep.probePlans.forEach((plan, i) => {
      const work = probeEnvSteps(plan.jobs, registration(plan.env).maxEpisodeSteps);
      if (work > LIMITS.maxProbeEnvSteps) {
        throw new LimitError(
          "maxProbeEnvSteps",
          LIMITS.maxProbeEnvSteps,
          `sweep spec /probes/${i} would take about ${work.toLocaleString("en-US")} env steps; at most ${LIMITS.maxProbeEnvSteps.toLocaleString("en-US")} per probe`,
        );
      }
    });
    return sweep;
  }

  /** Validates and starts a sweep in the background; answers at once with its view. */
  start(spec: unknown): SweepView {
    const sweep = this.expand(spec);
    const max = this.opts.maxConcurrent ?? 1;
    if (this.active.has(sweep.id)) return this.get(sweep.id)!;
    if (this.active.size >= max)
      throw new LimitError("maxConcurrentSweeps", max, `a sweep is already running (at most ${max} at once); wait for it to finish`);
    const progress: SweepProgress = { total: sweep.jobs.length, skipped: 0, done: 0, failed: 0, running: 0, elapsed: 0 };
    this.active.set(sweep.id, progress);
    let last = 0;
    runSweep(spec, {
      store: this.store,
      ...(this.opts.queue ? { queue: this.opts.queue } : {}),
      ...(this.opts.workers ? { workers: this.opts.workers } : {}),
      ...(this.opts.userEnvs ? { userEnvs: this.opts.userEnvs } : {}),
      onProgress: (p) => {
        this.active.set(sweep.id, p);
        if (Date.now() - last > 500) {
          last = Date.now();
          this.publish(sweep.id);
        }
      },
    })
      .then((s) => log.info({ sweep: s.id, completed: s.completed, failed: s.failed, seconds: s.seconds }, "sweep finished"))
      .catch((e: Error) => log.warn({ sweep: sweep.id, reason: e.message }, "sweep failed"))
      .finally(() => {
        this.active.delete(sweep.id);
        this.publish(sweep.id);
      });
    log.info({ sweep: sweep.id, jobs: sweep.jobs.length, mode: this.opts.queue ? "queue" : "local" }, "sweep started");
    return this.get(sweep.id) ?? this.placeholder(sweep.id, sweep.spec.name, sweep.jobs.length);
  }

  private placeholder(id: string, name: string, total: number): SweepView {
    return {
      id,
      name,
      status: "running",
      mode: this.opts.queue ? "queue" : "local",
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

  list(): SweepView[] {
    return this.store
      .listSweeps()
      .map((id) => this.get(id, false)!)
      .filter(Boolean);
  }

  get(id: string, withProbes = true): SweepView | null {
    const p = this.store.sweepProgress(id);
    if (!p) return null;
    const live = this.active.get(id);
    let probes: SweepView["probes"] = [];
    if (withProbes && !live) {
      try {
        probes = aggregateProbes(this.store, expandSweep(p.spec));
      } catch (e) {
        log.warn({ sweep: id, reason: (e as Error).message }, "cannot aggregate this sweep's probes");
      }
    }
    return {
      id,
      name: p.name,
      status: live ? "running" : p.status,
      mode: p.mode,
      total: p.total,
      completed: p.completed,
      failed: p.failed,
      running: live?.running ?? 0,
      createdAt: p.createdAt,
      updatedAt: p.updatedAt,
      runs: this.store.sweepRunKeys(id),
      probes,
    };
  }
}
