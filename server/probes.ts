/**
 * Starts probes in the background (worker threads) and keeps their results
 * in the store. A probe's work is bounded before it starts (LIMITS), counts
 * against the server's active limit, and can be stopped (its threads are
 * terminated) or deleted; probes a dead process left running are marked
 * interrupted when the service starts.
 */
import { randomUUID } from "node:crypto";
import {
  agentLabel,
  aggregateProbe,
  planProbe,
  probeDefinition,
  probeDefinitions,
  type ProbeDefinition,
  type ProbePlan,
  type ProbeRequest,
} from "../experiments/probes/index.ts";
import { registration } from "../envs/registry.ts";
import { PROBE_EXTRAS, type Store, type StoredProbe } from "../experiments/store.ts";
import { NotFoundError } from "../experiments/manager.ts";
import { LIMITS, LimitError, probeEnvSteps } from "../experiments/limits.ts";
import { moduleLogger } from "../experiments/log.ts";
import { PoolStopped, defaultWorkers, type BackendName } from "../experiments/pool.ts";
import { runProbeJobs } from "../experiments/sweeps/probes.ts";
import { ProbeProgressTracker, type ProbeProgress } from "../experiments/progress.ts";
import { keepProbeEpisodes } from "../experiments/probe-episodes.ts";
import type { UserEnvironments } from "../experiments/plugins.ts";
import type { ProbeResult } from "./protocol.ts";
import { relativePaths } from "./views.ts";
import { ActiveJobs, Listeners } from "./jobs.ts";

const log = moduleLogger("server/probes");

/** A probe as POST /api/probes takes it: ProbeRequest's user-facing fields, episodes filled by the schema. */
export type ProbeStart = Pick<
  ProbeRequest,
  "probe" | "agents" | "seeds" | "steps" | "env" | "configs" | "train" | "test" | "event" | "eventRoute" | "reinforcedRoute"
> & {
  episodes: number;
};

interface ActiveProbe {
  stored: StoredProbe;
  controller: AbortController;
  /** Resolves once the probe's threads are gone and its final state is stored. */
  done: Promise<void>;
}

/** A checked probe request: its definition, its plan of jobs and the env steps they cost. */
interface CheckedProbe {
  def: ProbeDefinition;
  plan: ProbePlan;
  work: number;
}

export interface ProbeServiceOptions {
  maxConcurrent?: number;
  workers?: number;
  backend?: BackendName;
  userEnvs?: UserEnvironments;
  /** redis://host:port: probe jobs go to `rewardlab worker`s (serve --queue). */
  queue?: string;
  /** Throws when one more active run or probe would pass the server's limit (RunManager.checkActive). */
  checkActive?: () => void;
}

export class ProbeService {
  private readonly active = new ActiveJobs<ActiveProbe>("probe");
  private readonly listeners = new Listeners<ProbeResult>("probe", log);
  private shuttingDown = false;
  /** Progress of the running probes (not stored: a restart ends them). */
  private readonly progress = new Map<string, ProbeProgress>();

  constructor(
    private readonly store: Store,
    private readonly opts: ProbeServiceOptions = {},
  ) {
    const interrupted = store.markProbesInterrupted();
    if (interrupted.length) log.warn({ probes: interrupted }, "probes interrupted by the last shutdown (start them again)");
  }

  on(l: (p: ProbeResult) => void): void {
    this.listeners.add(l);
  }

  private publish(p: StoredProbe): void {
    this.store.saveProbe(p);
    this.emit(p);
  }

  private emit(p: StoredProbe): void {
    this.listeners.emit(this.view(p));
  }

  /** The stored probe (its chance row with it, kept by the store beside the rows), with its progress while it runs. */
  private view(p: StoredProbe): ProbeResult {
    const progress = this.progress.get(p.id);
    // a worker's error may name files: relative to the data folder in every answer
    const reason = p.reason === null ? null : relativePaths(p.reason, this.store.dataDir);
    return { ...toView(p), reason, ...(progress && p.status === "running" ? { progress } : {}) };
  }

  activeCount(): number {
    return this.active.size;
  }

  /** Checks a probe request against the limits and starts its jobs in the background; answers with its stored view. */
  start(req: ProbeStart): ProbeResult {
    const { def, plan, work } = this.check(req);
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
    const controller = new AbortController();
    log.info({ probeId: p.id, probe: def.name, agents: req.agents, seeds: req.seeds, envSteps: work }, "probe started");
    const done = this.run(p, plan, tracker, controller);
    this.active.set(p.id, { stored: p, controller, done });
    return toView(p);
  }

  /** The whole plan, checked before answering (e.g. an env given to a probe specific to one), then the limits: jobs, env steps, probes at once, active work. */
  private check(req: ProbeStart): CheckedProbe {
    const def = probeDefinition(req.probe);
    if (req.env) registration(req.env);
    const plan = planProbe(probeRequestOf(req));
    if (plan.jobs.length > LIMITS.maxProbeJobs) {
      throw new LimitError(
        "maxProbeJobs",
        LIMITS.maxProbeJobs,
        `this probe is ${plan.jobs.length} jobs (agents x arms x seeds); at most ${LIMITS.maxProbeJobs} per probe`,
      );
    }
    const work = probeEnvSteps(plan.jobs, registration(plan.env).maxEpisodeSteps);
    if (work > LIMITS.maxProbeEnvSteps) {
      throw new LimitError(
        "maxProbeEnvSteps",
        LIMITS.maxProbeEnvSteps,
        `this probe would take about ${work.toLocaleString("en-US")} env steps (jobs x (steps + episodes x episode length)); at most ${LIMITS.maxProbeEnvSteps.toLocaleString("en-US")}: fewer seeds or steps`,
      );
    }
    const max = this.opts.maxConcurrent ?? LIMITS.maxConcurrentProbes;
    if (this.active.size >= max) {
      throw new LimitError("maxConcurrentProbes", max, `a probe is already running (at most ${max} at once); wait for it or stop it`);
    }
    this.opts.checkActive?.();
    return { def, plan, work };
  }

  /** Runs the probe's jobs (on the server's --queue, under keys of this probe's own), storing progress, episodes and the outcome. */
  private run(p: StoredProbe, plan: ProbePlan, tracker: ProbeProgressTracker, controller: AbortController): Promise<void> {
    return (
      runProbeJobs(plan.jobs, {
        ...(this.opts.queue ? { queue: this.opts.queue, salt: p.id } : {}),
        ...(this.opts.workers ? { workers: this.opts.workers } : {}),
        ...(this.opts.backend ? { backend: this.opts.backend } : {}),
        ...(this.opts.userEnvs ? { userEnvs: this.opts.userEnvs } : {}),
        signal: controller.signal,
        onResult: (job) => {
          keepProbeEpisodes(this.store.dataDir, p.id, job, plan.event);
          this.progress.set(p.id, tracker.finished(job));
          this.emit(p);
        },
      })
        .then((results) => {
          const { probe: _p, env, results: rows, ...beside } = aggregateProbe(plan, results);
          this.publish({ ...p, ...beside, env, status: "completed", results: rows });
          log.info({ probeId: p.id }, "probe completed");
        })
        .catch((e: Error) => {
          if (controller.signal.aborted || e instanceof PoolStopped) {
            const interrupted = this.shuttingDown || !controller.signal.aborted;
            this.publish({ ...p, status: interrupted ? "interrupted" : "stopped", reason: e.message });
            log.info({ probeId: p.id, reason: e.message }, "probe stopped");
          } else {
            this.publish({ ...p, status: "failed", reason: e.message });
            log.warn({ probeId: p.id, reason: e.message }, "probe failed");
          }
        })
        .finally(() => {
          this.active.delete(p.id);
          this.progress.delete(p.id);
        })
        // storing the outcome itself failed (e.g. the store closed): logged, never an unhandled rejection
        .catch((err: unknown) => log.error({ err, probeId: p.id }, "could not store the probe's outcome"))
    );
  }

  /** Stops a running probe: its worker threads are terminated; resolves with its stored view (status stopped). */
  async stop(id: string, reason = "stopped by request"): Promise<ProbeResult> {
    await this.active.stop(id, reason, () => this.store.getProbe(id)?.status ?? null);
    return this.view(this.store.getProbe(id)!);
  }

  /** Deletes a probe, stopping it first if it runs. */
  async delete(id: string): Promise<void> {
    if (!this.store.getProbe(id)) throw new NotFoundError(`no probe with id ${id}`);
    await this.active.stopIfRunning(id, "deleted");
    this.store.deleteProbe(id);
  }

  /** Stops every running probe (server shutdown): they are stored as interrupted. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    await this.active.stopAll("the server shut down while the probe was running");
    for (const id of this.store.markProbesInterrupted()) log.info({ probeId: id }, "probe interrupted by shutdown");
  }

  /** Built-in, plugin and level-declared probes, and the generic shift probe. */
  definitions() {
    return probeDefinitions();
  }

  list(): ProbeResult[] {
    return this.store.listProbes().map((p) => this.view(p));
  }

  get(id: string): ProbeResult | null {
    const p = this.store.getProbe(id);
    return p ? this.view(p) : null;
  }
}

/** The optional fields of a probe start that its plan takes (the shift probe needs train, test and event; generic probes take them; routes for the knowledge columns). */
const OPTIONAL_START_FIELDS = ["steps", "env", "configs", "train", "test", "event", "eventRoute", "reinforcedRoute"] as const;

/** The probe request a start plans: its required fields and those optional ones it sets. */
function probeRequestOf(req: ProbeStart): ProbeRequest {
  const set = OPTIONAL_START_FIELDS.filter((k) => req[k]).map((k) => [k, req[k]]);
  return { probe: req.probe, agents: req.agents, seeds: req.seeds, episodes: req.episodes, ...Object.fromEntries(set) };
}

function toView(p: StoredProbe): ProbeResult {
  return {
    id: p.id,
    probe: p.probe,
    env: p.env,
    status: p.status,
    reason: p.reason,
    createdAt: p.createdAt,
    // the table's parts beside its rows, as the store keeps them (the chance row among them)
    ...Object.fromEntries(PROBE_EXTRAS.filter((k) => p[k]).map((k) => [k, p[k]])),
    // rows stored before rows carried their label get it here: the client draws labels, it does not make them
    results: (p.results as ProbeResult["results"]).map((r) => (r.label ? r : { ...r, label: agentLabel(r) })),
  };
}
