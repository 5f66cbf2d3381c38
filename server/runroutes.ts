/**
 * The run routes of the REST API (mounted by app.ts): starting a run, its
 * list a page at a time, one run, pause/resume/stop, interventions,
 * deletion, and what the store keeps of a run (episodes, updates,
 * interventions, trajectories, the reinforcement ledger).
 */
import type { Router } from "express";
import { ValidationError } from "../envs/errors.ts";
import { validate } from "../envs/schema.ts";
import { LIMITS } from "../experiments/limits.ts";
import { NotFoundError, type RunManager } from "../experiments/manager.ts";
import type { Intervention } from "../experiments/run.ts";
import type { StoredRun } from "../experiments/store.ts";
import { noBody, pathId } from "./params.ts";
import type { LedgerTotals } from "./protocol.ts";
import { episodesQuerySchema, interveneSchema, runRequestSchema, runsQuerySchema, trajectoryParamsSchema } from "./schemas.ts";
import { envSummary, runSummary } from "./views.ts";

/** Maps items a few at a time, yielding to the event loop between slices (a page of summaries reads the store per run). */
async function inSlices<T, R>(items: T[], f: (item: T) => R, size = 10): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    if (i > 0) await new Promise((r) => setImmediate(r));
    for (const item of items.slice(i, i + size)) out.push(f(item));
  }
  return out;
}

/** POST /runs, GET /runs, GET and DELETE /runs/:id, POST /runs/:id/pause|resume|stop|intervene. */
export function mountRunRoutes(api: Router, manager: RunManager): void {
  const store = manager.store;
  const requireRun = (id: string): StoredRun => {
    const r = store.getRun(id);
    if (!r) throw new NotFoundError(`no run with id ${id}`);
    return r;
  };

  api.post("/runs", (req, res) => {
    const body = validate<Record<string, unknown>>(runRequestSchema, req.body ?? {}, "run request");
    const run = manager.create(body);
    res.status(201).json(runSummary(run, manager));
  });

  // a page at a time, newest first: the x-next-cursor header names the next page (absent on the last)
  api.get("/runs", async (req, res) => {
    const q = validate<{ limit?: string; cursor?: string; sweep?: string }>(runsQuerySchema, { ...req.query }, "query");
    const limit = Math.min(Number(q.limit ?? 50), LIMITS.maxRunPage);
    if (limit < 1) throw new ValidationError(`limit must be 1 to ${LIMITS.maxRunPage}`, [{ path: "/limit", message: "out of range" }]);
    const page = store.runPage(limit, q.cursor ?? null, q.sweep ?? null);
    if (page.next) res.setHeader("x-next-cursor", page.next);
    res.json(await inSlices(page.runs, (r) => runSummary(r, manager)));
  });

  api.get("/runs/:id", (req, res) => {
    res.json(runSummary(requireRun(pathId(req.params)), manager));
  });

  for (const action of ["pause", "resume", "stop"] as const) {
    api.post(`/runs/:id/${action}`, (req, res) => {
      const id = pathId(req.params);
      noBody(req.body, `POST /runs/:id/${action}`);
      manager[action](id);
      res.json(runSummary(requireRun(id), manager));
    });
  }

  api.post("/runs/:id/intervene", (req, res) => {
    const id = pathId(req.params);
    const change = validate<Intervention>(interveneSchema, req.body ?? {}, "intervention");
    manager.intervene(id, change);
    res.json(runSummary(requireRun(id), manager));
  });

  api.delete("/runs/:id", async (req, res) => {
    const id = pathId(req.params);
    await manager.delete(id);
    res.status(204).end();
  });

  mountRunRecordRoutes(api, manager, requireRun);
}

/** GET /runs/:id/episodes, updates, interventions, trajectories[/:episode] and ledger: what the store keeps of a run. */
function mountRunRecordRoutes(api: Router, manager: RunManager, requireRun: (id: string) => StoredRun): void {
  const store = manager.store;
  api.get("/runs/:id/episodes", (req, res) => {
    const id = pathId(req.params);
    requireRun(id);
    const q = validate<{ from?: string; limit?: string }>(episodesQuerySchema, { ...req.query }, "query");
    res.json(store.episodes(id, Number(q.from ?? 0), Math.min(Number(q.limit ?? 10000), 100000)));
  });

  api.get("/runs/:id/updates", (req, res) => {
    const id = pathId(req.params);
    requireRun(id);
    // a long run has 10^5 updates: at most about 20,000 points, spread over the whole run (all of them below that)
    res.json(store.updatesOverview(id, 20_000));
  });

  api.get("/runs/:id/interventions", (req, res) => {
    const id = pathId(req.params);
    requireRun(id);
    res.json(store.interventions(id));
  });

  api.get("/runs/:id/trajectories", (req, res) => {
    const id = pathId(req.params);
    requireRun(id);
    res.json(store.trajectories(id));
  });

  api.get("/runs/:id/trajectories/:episode", (req, res) => {
    const p = validate<{ id: string; episode: string }>(trajectoryParamsSchema, { ...req.params }, "path");
    requireRun(p.id);
    const t = store.trajectory(p.id, Number(p.episode));
    if (!t)
      throw new NotFoundError(
        `run ${p.id} has no stored trajectory for episode ${p.episode}; GET /api/runs/${p.id}/trajectories lists them`,
      );
    res.json(t);
  });

  api.get("/runs/:id/ledger", (req, res) => {
    const id = pathId(req.params);
    const r = requireRun(id);
    const env = envSummary(r.spec.env);
    const frame = env.variantFrames[r.variant] ?? env.frame;
    const { entries, visits } = store.ledger(id);
    const body: LedgerTotals = { envId: r.spec.env, width: frame.width, height: frame.height, actions: env.actions, entries, visits };
    res.json(body);
  });
}
