/**
 * The level, probe and sweep routes of the REST API (mounted by app.ts): the
 * level schema, uploading, replacing and deleting levels in the data folder;
 * the probe definitions, starting, listing, stopping and deleting probes;
 * starting, checking, stopping, resuming and deleting sweeps.
 */
import type { Response, Router } from "express";
import { resolve, sep } from "node:path";
import { rm } from "node:fs/promises";
import { registerLevel, registeredLevel, unregisterLevel } from "../envs/levelregistrar.ts";
import { levelSchema, parseLevel, type Level } from "../envs/levels.ts";
import { configSchemaOf, GridEnv } from "../envs/gridworld.ts";
import { registered, type EnvConfig } from "../envs/registry.ts";
import { LevelError, ValidationError } from "../envs/errors.ts";
import { validate } from "../envs/schema.ts";
import { ConflictError, NotFoundError } from "../experiments/manager.ts";
import { LIMITS, LimitError } from "../experiments/limits.ts";
import { moduleLogger } from "../experiments/log.ts";
import type { Store } from "../experiments/store.ts";
import { levelParamsSchema, probeRequestSchema, sweepQuerySchema } from "./schemas.ts";
import type { SweepService } from "./sweeps.ts";
import type { ProbeService, ProbeStart } from "./probes.ts";
import { noBody, pathId } from "./params.ts";
import { levelFileCount, writeFileAtomic } from "./levelfiles.ts";
import { describeSource, envSummaryAsync } from "./views.ts";

const log = moduleLogger("server/routes");

/**
 * Builds every variant of a parsed level with its config defaults, as make()
 * would, one variant per slice of the event loop; a level that cannot be
 * built is a 400.
 */
async function checkLevelBuilds(level: Level): Promise<void> {
  try {
    const schema = configSchemaOf(level);
    for (const v of level.variants) {
      const config = validate<EnvConfig>(schema, { variant: v.name }, `config of ${level.id}`);
      const env = new GridEnv(level, config, { maxEpisodeSteps: level.maxEpisodeSteps });
      env.reset({ seed: 0 });
      JSON.stringify(env.render());
      await new Promise((r) => setImmediate(r));
    }
  } catch (e) {
    throw new LevelError("uploaded level", [`cannot be built: ${(e as Error).message}`]);
  }
}

/** The file of an uploaded level, inside the levels folder or refused. */
function levelFile(levelsDir: string, id: string): string {
  const file = resolve(levelsDir, `${id}.json`);
  if (!file.startsWith(resolve(levelsDir) + sep)) throw new ValidationError(`level id ${id} is not a safe file name`);
  return file;
}

/**
 * GET /api/levels/schema; with a levels folder POST /api/levels (create, or
 * replace a level uploaded before) and DELETE /api/levels/:id, without one a
 * 409 on POST. A level is data: validated by its JSON Schema, size-limited,
 * stored in the data folder, never executed.
 */
export function mountLevelRoutes(api: Router, opts: { levelsDir?: string; store: Store }): void {
  api.get("/levels/schema", (_req, res) => {
    res.json(levelSchema);
  });
  const { levelsDir, store } = opts;
  if (!levelsDir) {
    api.post("/levels", () => {
      throw new ConflictError("level uploads are disabled on this server");
    });
    return;
  }
  mountLevelUploads(api, levelsDir, store);
}

function mountLevelUploads(api: Router, levelsDir: string, store: Store): void {
  // ids being checked and written: a second upload of one waits its turn (409), and counts toward the folder's limit
  const uploading = new Set<string>();
  api.post("/levels", async (req, res) => {
    const level = parseLevel(req.body, "uploaded level");
    if (uploading.has(level.id)) throw new ConflictError(`level ${level.id} is being uploaded by another request; try again in a moment`);
    uploading.add(level.id);
    try {
      await upload(level, req.body, res);
    } finally {
      uploading.delete(level.id);
    }
  });

  const upload = async (level: Level, body: unknown, res: Response) => {
    const existing = registered().find((r) => r.id === level.id);
    const file = levelFile(levelsDir, level.id);
    if (existing && existing.source !== file) {
      throw new ConflictError(
        `environment ${level.id} already exists (${describeSource(existing.source ?? "builtin") === "builtin" ? "built into rewardlab" : `from ${describeSource(existing.source ?? "")}`}); choose another id, e.g. ${level.id.replace(/-v(\d+)$/, (_m, v) => `-v${Number(v) + 1}`)}`,
      );
    }
    if (!existing && (await levelFileCount(levelsDir)) + uploading.size - 1 >= LIMITS.maxUploadedLevels) {
      throw new LimitError(
        "maxUploadedLevels",
        LIMITS.maxUploadedLevels,
        `this server keeps at most ${LIMITS.maxUploadedLevels} uploaded levels; delete one first (DELETE /api/levels/:id)`,
      );
    }
    // built in full (every variant, with its config defaults) before anything is written or registered
    await checkLevelBuilds(level);
    await writeFileAtomic(file, JSON.stringify(body, null, 2));
    registerLevel({ ...level, file }, { replace: true });
    log.info({ env: level.id, file: `levels/${level.id}.json` }, existing ? "level replaced" : "level uploaded");
    res.status(existing ? 200 : 201).json(await envSummaryAsync(level.id));
  };

  api.delete("/levels/:id", async (req, res) => {
    const { id } = validate<{ id: string }>(levelParamsSchema, { ...req.params }, "path");
    const file = levelFile(levelsDir, id);
    const reg = registered().find((r) => r.id === id);
    if (!reg || !registeredLevel(id)) throw new NotFoundError(`no level with id ${id}`);
    if (reg.source !== file)
      throw new ConflictError(
        `environment ${id} was not uploaded over the API (${describeSource(reg.source ?? "builtin")}); it cannot be deleted here`,
      );
    const users = store.activeRunIdsOfEnv(id);
    if (users.length)
      throw new ConflictError(`level ${id} is used by ${users.length} active run(s) (${users.slice(0, 3).join(", ")}); stop them first`);
    await rm(file, { force: true });
    unregisterLevel(id);
    log.info({ env: id }, "level deleted");
    res.status(204).end();
  });
}

/** GET /api/probes/definitions, POST /api/probes, GET /api/probes[/:id], POST /api/probes/:id/stop, DELETE /api/probes/:id. */
export function mountProbeRoutes(api: Router, probes: ProbeService): void {
  api.post("/probes", (req, res) => {
    const body = validate<ProbeStart>(probeRequestSchema, req.body ?? {}, "probe request");
    res.status(202).json(probes.start(body));
  });

  api.get("/probes/definitions", (_req, res) => {
    res.json(
      Object.values(probes.definitions()).map((d) => ({
        name: d.name,
        description: d.description,
        env: d.env,
        generic: d.generic,
        train: d.train.variant,
        test: d.test.variant,
        testReward: d.test.reward,
        event: d.event,
        arms: (d.arms ?? []).map((a) => a.name),
        tests: [d.test, ...(d.moreTests ?? [])].map((t) => t.variant),
        declaredBy: d.declaredBy ?? null,
        // the shift probe takes these from the request
        needs: d.shift ? ["env", "train", "test", "event"] : [],
      })),
    );
  });

  api.get("/probes", (_req, res) => {
    res.json(probes.list());
  });

  api.get("/probes/:id", (req, res) => {
    const id = pathId(req.params);
    const p = probes.get(id);
    if (!p) throw new NotFoundError(`no probe with id ${id}`);
    res.json(p);
  });

  api.post("/probes/:id/stop", async (req, res) => {
    const id = pathId(req.params);
    noBody(req.body, "POST /probes/:id/stop");
    res.json(await probes.stop(id));
  });

  api.delete("/probes/:id", async (req, res) => {
    await probes.delete(pathId(req.params));
    res.status(204).end();
  });
}

/**
 * POST /api/sweeps (?dryRun=1 checks only), GET /api/sweeps[/:id], POST
 * /api/sweeps/:id/stop|resume, DELETE /api/sweeps/:id; without a sweep
 * service, a 409 on every /api/sweeps route.
 */
export function mountSweepRoutes(api: Router, sweeps: SweepService | undefined): void {
  if (!sweeps) {
    api.all(/^\/sweeps/, () => {
      throw new ConflictError("sweeps are disabled on this server");
    });
    return;
  }
  api.post("/sweeps", async (req, res) => {
    const q = validate<{ dryRun?: string }>(sweepQuerySchema, { ...req.query }, "query");
    if (q.dryRun === "1" || q.dryRun === "true") {
      res.json(await sweeps.check(req.body));
      return;
    }
    res.status(202).json(await sweeps.start(req.body));
  });
  api.get("/sweeps", (_req, res) => {
    res.json(sweeps.list());
  });
  api.get("/sweeps/:id", async (req, res) => {
    const id = pathId(req.params);
    const s = await sweeps.view(id);
    if (!s) throw new NotFoundError(`no sweep with id ${id}`);
    res.json(s);
  });
  api.post("/sweeps/:id/stop", async (req, res) => {
    noBody(req.body, "POST /sweeps/:id/stop");
    res.json(await sweeps.stop(pathId(req.params)));
  });
  api.post("/sweeps/:id/resume", async (req, res) => {
    noBody(req.body, "POST /sweeps/:id/resume");
    res.status(202).json(await sweeps.resume(pathId(req.params)));
  });
  api.delete("/sweeps/:id", async (req, res) => {
    await sweeps.delete(pathId(req.params));
    res.status(204).end();
  });
}
