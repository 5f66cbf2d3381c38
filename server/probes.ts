/** Starts probes in the background (worker threads) and keeps their results in the store. */
import { randomUUID } from "node:crypto";
import { runProbe, planProbe, probeDefinition, probeDefinitions, type ProbeRequest } from "../experiments/probes/index.ts";
import { agentRegistration } from "../agents/registry.ts";
import { registration } from "../envs/registry.ts";
import type { Store, StoredProbe } from "../experiments/store.ts";
import { LimitError } from "../experiments/manager.ts";
import { moduleLogger } from "../experiments/log.ts";
import type { BackendName } from "../experiments/pool.ts";
import type { UserEnvironments } from "../experiments/plugins.ts";
import type { ProbeResult } from "./protocol.ts";

const log = moduleLogger("server/probes");

/** A probe as POST /api/probes takes it: ProbeRequest's user-facing fields, episodes filled by the schema. */
export type ProbeStart = Pick<ProbeRequest, "probe" | "agents" | "seeds" | "steps" | "env" | "configs" | "train" | "test" | "event"> & {
  episodes: number;
};

export class ProbeService {
  private running = 0;
  private listeners: ((p: ProbeResult) => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly opts: { maxConcurrent?: number; workers?: number; backend?: BackendName; userEnvs?: UserEnvironments } = {},
  ) {}

  on(l: (p: ProbeResult) => void): void {
    this.listeners.push(l);
  }

  private publish(p: StoredProbe): void {
    this.store.saveProbe(p);
    const view = toView(p);
    for (const l of this.listeners) l(view);
  }

  start(req: ProbeStart): ProbeResult {
    const def = probeDefinition(req.probe);
    for (const a of req.agents) agentRegistration(a);
    if (req.env) registration(req.env);
    // the whole plan is checked before answering (e.g. an env given to a probe that is specific to one)
    planProbe({
      probe: req.probe,
      agents: req.agents,
      seeds: req.seeds,
      ...(req.env ? { env: req.env } : {}),
      ...(req.configs ? { configs: req.configs } : {}),
      ...shiftFields(req),
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
    this.publish(p);
    this.running++;
    log.info({ probeId: p.id, probe: def.name, agents: req.agents, seeds: req.seeds }, "probe started");
    runProbe({
      probe: req.probe,
      agents: req.agents,
      seeds: req.seeds,
      episodes: req.episodes,
      ...(req.steps ? { steps: req.steps } : {}),
      ...(req.env ? { env: req.env } : {}),
      ...(req.configs ? { configs: req.configs } : {}),
      ...shiftFields(req),
      ...(this.opts.workers ? { workers: this.opts.workers } : {}),
      ...(this.opts.backend ? { backend: this.opts.backend } : {}),
      ...(this.opts.userEnvs ? { userEnvs: this.opts.userEnvs } : {}),
    })
      .then((r) => {
        this.publish({ ...p, env: r.env, status: "completed", results: r.results });
        log.info({ probeId: p.id }, "probe completed");
      })
      .catch((e: Error) => {
        this.publish({ ...p, status: "failed", reason: e.message });
        log.warn({ probeId: p.id, reason: e.message }, "probe failed");
      })
      .finally(() => this.running--);
    return toView(p);
  }

  /** Built-in, plugin and level-declared probes, and the generic shift probe. */
  definitions() {
    return probeDefinitions();
  }

  list(): ProbeResult[] {
    return this.store.listProbes().map(toView);
  }

  get(id: string): ProbeResult | null {
    const p = this.store.getProbe(id);
    return p ? toView(p) : null;
  }
}

/** The train/test variants and event a request names (the shift probe needs them; generic probes take them). */
function shiftFields(req: ProbeStart): Pick<ProbeRequest, "train" | "test" | "event"> {
  return {
    ...(req.train ? { train: req.train } : {}),
    ...(req.test ? { test: req.test } : {}),
    ...(req.event ? { event: req.event } : {}),
  };
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
