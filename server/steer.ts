/**
 * The steering routes of a Maze-v0 run (experiments/steerview.ts):
 *   GET  /api/runs/:id/steer   the policy's layers (its last checkpoint, loaded)
 *   POST /api/runs/:id/steer   {seed, layer, vector, coeff, target?, play}:
 *                              arrows, path probabilities and a played episode
 * The work per request is bounded by the maze (at most 25 x 25 squares in one
 * batched forward, one episode of at most Maze-v0's time limit); loaded
 * policies are kept for the last two runs asked about.
 */
import { Router } from "express";
import type { Agent } from "../agents/core.ts";
import { loadAgent } from "../agents/registry.ts";
import { initBackend } from "../agents/shared/backend.ts";
import { MAZE_ID } from "../envs/maze.ts";
import { validate } from "../envs/schema.ts";
import { ConflictError, NotFoundError } from "../experiments/manager.ts";
import { agentEnvInfo } from "../experiments/run.ts";
import { SteerSession, type SteerViewRequest, steerViewRequestSchema } from "../experiments/steerview.ts";
import type { Store } from "../experiments/store.ts";
import { idParamsSchema } from "./schemas.ts";

const KEEP = 2;

/** Loaded sessions by run id and checkpoint, the most recent last. */
class Sessions {
  private readonly map = new Map<string, { steps: number; session: SteerSession }>();

  constructor(private readonly store: Store) {}

  async get(id: string): Promise<SteerSession> {
    const run = this.store.getRun(id);
    if (!run) throw new NotFoundError(`no run with id ${id}`);
    if (run.spec.env !== MAZE_ID) throw new ConflictError(`run ${id} is on ${run.spec.env}; steering works on ${MAZE_ID} runs`);
    if (!run.checkpointDir) throw new ConflictError(`run ${id} has no checkpoint yet; steering loads the policy from its checkpoint`);
    const have = this.map.get(id);
    if (have && have.steps === run.checkpointSteps) {
      this.map.delete(id);
      this.map.set(id, have);
      return have.session;
    }
    await initBackend();
    const agent: Agent = await loadAgent(run.checkpointDir, agentEnvInfo(run.spec));
    let session: SteerSession;
    try {
      session = new SteerSession(agent, { ...run.spec.envConfig });
    } catch (e) {
      agent.dispose();
      throw new ConflictError(`run ${id}: ${(e as Error).message}`);
    }
    have?.session.agent.dispose();
    this.map.delete(id);
    this.map.set(id, { steps: run.checkpointSteps, session });
    while (this.map.size > KEEP) {
      const [oldest, entry] = this.map.entries().next().value!;
      entry.session.agent.dispose();
      this.map.delete(oldest);
    }
    return session;
  }
}

/** The router, mounted under /api by server/app.ts. */
export function steerRoutes(store: Store): Router {
  const sessions = new Sessions(store);
  const router = Router();
  const runId = (params: unknown) => validate<{ id: string }>(idParamsSchema, { ...(params as object) }, "path").id;
  router.get("/runs/:id/steer", async (req, res) => {
    const session = await sessions.get(runId(req.params));
    res.json({ layers: session.layers() });
  });
  router.post("/runs/:id/steer", async (req, res) => {
    const id = runId(req.params);
    const body = validate<SteerViewRequest>(steerViewRequestSchema, req.body ?? {}, "steer request");
    const session = await sessions.get(id);
    res.json(session.view(body));
  });
  return router;
}
