/**
 * The routes that describe the server (mounted by app.ts): its health and
 * limits, the environments and what did not load of them, and the agents
 * with their config schemas and defaults.
 */
import type { Router } from "express";
import { RewardlabError } from "../envs/errors.ts";
import { registered } from "../envs/registry.ts";
import { defaults, validate } from "../envs/schema.ts";
import { agentRegistrations } from "../agents/registry.ts";
import { LIMITS } from "../experiments/limits.ts";
import { ConflictError, type RunManager } from "../experiments/manager.ts";
import { EnvListing } from "./envlist.ts";
import type { ProbeService } from "./probes.ts";
import type { AgentSummary } from "./protocol.ts";
import { emptyQuerySchema, healthQuerySchema } from "./schemas.ts";
import { describeSource, envSummary } from "./views.ts";

export interface InfoOptions {
  manager: RunManager;
  probes: ProbeService;
  /** Streaming figures for /api/health. */
  streamStats?: () => object;
  /** Event-loop delay figures for /api/health (reset after reading when asked). */
  eventLoop?: (reset: boolean) => object;
  /** Level files that failed to load at start. */
  levelErrors?: { file: string; problems: string[] }[];
}

/** GET /health, /envs, /envs/:id, /levels/errors, /agents. */
export function mountInfoRoutes(api: Router, opts: InfoOptions): void {
  const { manager, probes } = opts;
  api.get("/health", (req, res) => {
    const q = validate<{ gc?: "1"; resetDelay?: "1" }>(healthQuerySchema, { ...req.query }, "query");
    if (q.gc && typeof global.gc === "function") global.gc();
    const m = process.memoryUsage();
    res.json({
      ok: true,
      activeRuns: manager.activeCount(),
      activeProbes: probes.activeCount(),
      limits: { ...LIMITS, maxActiveRuns: manager.maxActive, maxConcurrentRuns: manager.maxConcurrent },
      memory: { heapUsedMiB: +(m.heapUsed / 2 ** 20).toFixed(1), rssMiB: +(m.rss / 2 ** 20).toFixed(1) },
      ...(opts.streamStats ? { stream: opts.streamStats() } : {}),
      ...(opts.eventLoop ? { eventLoop: opts.eventLoop(q.resetDelay === "1") } : {}),
    });
  });

  const envList = new EnvListing();
  api.get("/envs", async (req, res) => {
    validate(emptyQuerySchema, req.query ?? {}, "query");
    res.type("json").send(await envList.body());
  });

  api.get("/envs/:id", (req, res) => {
    const id = String(req.params.id);
    try {
      res.json(envSummary(id));
    } catch (e) {
      if (e instanceof RewardlabError) throw e;
      throw new ConflictError(`environment ${id} is registered but cannot be built: ${(e as Error).message}`);
    }
  });

  // what did not load: level files refused at start, environments whose summary fails
  api.get("/levels/errors", async (_req, res) => {
    await envList.body();
    res.json([
      ...(opts.levelErrors ?? []),
      ...[...envList.broken].map(([env, reason]) => ({
        file: describeSource(registered().find((r) => r.id === env)?.source ?? env),
        problems: [reason],
      })),
    ]);
  });

  api.get("/agents", (req, res) => {
    validate(emptyQuerySchema, req.query ?? {}, "query");
    const list: AgentSummary[] = agentRegistrations().map((a) => ({
      name: a.name,
      description: a.description,
      kind: a.kind,
      configSchema: a.configSchema,
      defaults: defaults<Record<string, unknown>>(a.configSchema),
    }));
    res.json(list);
  });
}
