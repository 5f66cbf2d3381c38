/** Starts probes in the background (worker threads) and keeps their results in the store. */
import { randomUUID } from "node:crypto";
import { runProbe, planProbe, probeDefinition, probes as probeDefinitions, type ProbeRequest } from "../experiments/probes/index.ts";
import { agentRegistration } from "../agents/registry.ts";
import { registration } from "../envs/registry.ts";
import type { Store, StoredProbe } from "../experiments/store.ts";
import { LimitError } from "../experiments/manager.ts";
import { moduleLogger } from "../experiments/log.ts";
import { defaultWorkers, type BackendName } from "../experiments/pool.ts";
import { ProbeProgressTracker, type ProbeProgress } from "../experiments/progress.ts";
import type { UserEnvironments } from "../experiments/plugins.ts";
import type { ProbeResult } from "./protocol.ts";

const log = moduleLogger("server/probes");

/** A probe as POST /api/probes takes it: ProbeRequest's user-facing fields, episodes filled by the schema. */
export type ProbeStart = Pick<ProbeRequest, "probe" | "agents" | "seeds" | "steps" | "env" | "configs"> & { episodes: number };

export class ProbeService {
  private running = 0;
  private listeners: ((p: ProbeResult) => void)[] = [];
  /** Progress of the running probes (not stored: a restart ends them). */
  private readonly progress = new Map<string, ProbeProgress>();

  constructor(
    private readonly store: Store,
    private readonly opts: { maxConcurrent?: number; workers?: number; backend?: BackendName; userEnvs?: UserEnvironments } = {},
  ) {}

  on(l: (p: ProbeResult) => void): void {
    this.listeners.push(l);
  }

  private publish(p: StoredProbe): void {
    this.store.saveProbe(p);
    this.emit(p);
  }

  private emit(p: StoredProbe): void {
    const view = this.view(p);
    for (const l of this.listeners) l(view);
  }

  /** The stored probe, with its progress while it runs. */
  private view(p: StoredProbe): ProbeResult {
    const progress = this.progress.get(p.id);
    return { ...toView(p), ...(progress && p.status === "running" ? { progress } : {}) };
  }

  start(req: ProbeStart): ProbeResult {
    const def = probeDefinition(req.probe);
    for (const a of req.agents) agentRegistration(a);
    if (req.env) registration(req.env);
    // the whole plan is checked before answering (e.g. an env given to a probe that is specific to one)
    const plan = planProbe({
      probe: req.probe,
      agents: req.agents,
      seeds: req.seeds,
      ...(req.env ? { env: req.env } : {}),
      ...(req.configs ? { configs: req.configs } : {}),
    });
    const max = this.opts.maxConcurrent ?? 1;
    if (this.running >= max) {
      throw new LimitError("maxConcurrentProbes", max, `a probe is already running (at most ${max} at once); wait for it to finish`);
    }
    const p: StoredProbe = {
      id: randomUUID(),
      probe: def.name,
      env: req.env ?? def.env,
      status: "running",
      reason: null,
      createdAt: Date.now(),
      request: req,
      results: [],
    };
    const tracker = new ProbeProgressTracker(plan.jobs, this.opts.workers ?? defaultWorkers());
    this.progress.set(p.id, tracker.view());
    this.publish(p);
    this.running++;
    log.info({ probeId: p.id, probe: def.name, agents: req.agents, seeds: req.seeds }, "probe started");
    runProbe(
      {
        probe: req.probe,
        agents: req.agents,
        seeds: req.seeds,
        episodes: req.episodes,
        ...(req.steps ? { steps: req.steps } : {}),
        ...(req.env ? { env: req.env } : {}),
        ...(req.configs ? { configs: req.configs } : {}),
        ...(this.opts.workers ? { workers: this.opts.workers } : {}),
        ...(this.opts.backend ? { backend: this.opts.backend } : {}),
        ...(this.opts.userEnvs ? { userEnvs: this.opts.userEnvs } : {}),
      },
      (_done, _total, job) => {
        this.progress.set(p.id, tracker.finished(job));
        this.emit(p);
      },
    )
      .then((r) => {
        this.publish({ ...p, env: r.env, status: "completed", results: r.results });
        log.info({ probeId: p.id }, "probe completed");
      })
      .catch((e: Error) => {
        this.publish({ ...p, status: "failed", reason: e.message });
        log.warn({ probeId: p.id, reason: e.message }, "probe failed");
      })
      .finally(() => {
        this.running--;
        this.progress.delete(p.id);
      });
    return toView(p);
  }

  definitions() {
    return probeDefinitions;
  }

  list(): ProbeResult[] {
    return this.store.listProbes().map((p) => this.view(p));
  }

  get(id: string): ProbeResult | null {
    const p = this.store.getProbe(id);
    return p ? this.view(p) : null;
  }
}

function toView(p: StoredProbe): ProbeResult {
  return {
    id: p.id,
    probe: p.probe,
    env: p.env,
    status: p.status,
    reason: p.reason,
    createdAt: p.createdAt,
    results: p.results as ProbeResult["results"],
  };
}
