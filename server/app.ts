/**
 * The express app: the JSON REST API under /api and the built client at /.
 * Every body, query and path parameter is validated by ajv before use; every
 * error answers as JSON `{error, details?}`, never with a stack trace.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import helmet from "helmet";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { levelSchema } from "../envs/levels.ts";
import { registered } from "../envs/registry.ts";
import { RewardlabError, UnknownIdError, ValidationError, LevelError } from "../envs/errors.ts";
import { validate, defaults } from "../envs/schema.ts";
import { agentRegistrations } from "../agents/registry.ts";
import { ConflictError, LimitError, NotFoundError, type RunManager } from "../experiments/manager.ts";
import type { StoredRun } from "../experiments/store.ts";
import { moduleLogger } from "../experiments/log.ts";
import { LIMITS } from "../experiments/limits.ts";
import type { AgentSummary, ApiError, LedgerTotals } from "./protocol.ts";
import {
  emptyQuerySchema,
  healthQuerySchema,
  episodesQuerySchema,
  idParamsSchema,
  interveneSchema,
  probeRequestSchema,
  runRequestSchema,
  runsQuerySchema,
  trajectoryParamsSchema,
} from "./schemas.ts";
import type { ProbeService, ProbeStart } from "./probes.ts";
import type { SweepService } from "./sweeps.ts";
import type { Intervention } from "../experiments/run.ts";
import { describeSource, envSummary, relativePaths, runSummary } from "./views.ts";
import { EnvListing } from "./envlist.ts";
import { mountLevelRoutes, mountSweepRoutes } from "./routes.ts";
import { boundedError, checkBodyShape } from "./bounds.ts";
import { loopbackHostOk, originProblem, requestToken, tokenMatches } from "./origin.ts";
import { steerRoutes } from "./steer.ts";
import { resultsRouter } from "./results.ts";

const log = moduleLogger("server/app");

export interface AppOptions {
  manager: RunManager;
  probes: ProbeService;
  /** Required on every /api request when set (non-local binds); without it only loopback Host names are answered. */
  token?: string;
  /** Folder of the built client (client/dist). */
  clientDir?: string;
  /** Largest JSON body accepted. */
  bodyLimit?: string;
  sweeps?: SweepService;
  /** Where uploaded levels are kept (data/levels); uploads are refused without it. */
  levelsDir?: string;
  /** Largest level upload, in bytes. */
  levelLimit?: number;
  /** Streaming figures for /api/health (the sockets exist only once the HTTP server does). */
  streamStats?: () => object;
  /** Event-loop delay figures for /api/health (reset after reading when asked). */
  eventLoop?: (reset: boolean) => object;
  /** Level files that failed to load at start (listed by GET /api/levels/errors). */
  levelErrors?: { file: string; problems: string[] }[];
}

function check<T>(schema: object, data: unknown, what: string): T {
  return validate<T>(schema, data ?? {}, what);
}

/** Maps items a few at a time, yielding to the event loop between slices (a page of summaries reads the store per run). */
async function inSlices<T, R>(items: T[], f: (item: T) => R, size = 10): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    if (i > 0) await new Promise((r) => setImmediate(r));
    for (const item of items.slice(i, i + size)) out.push(f(item));
  }
  return out;
}

export function createApp(opts: AppOptions): express.Express {
  const { manager, probes } = opts;
  const store = manager.store;
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          "script-src": ["'self'"],
          "connect-src": ["'self'", "ws:", "wss:"],
          "img-src": ["'self'", "data:"],
          "upgrade-insecure-requests": null,
        },
      },
    }),
  );
  // request log
  app.use((req, res, next) => {
    const start = performance.now();
    res.on("finish", () => {
      if (req.path.startsWith("/api")) {
        log.info({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(performance.now() - start) }, "request");
      }
    });
    next();
  });
  // without a token the server trusts its own machine only: a foreign Host is a DNS-rebound name
  app.use((req, res, next) => {
    if (!opts.token && !loopbackHostOk(req.headers.host, req.socket.localPort)) {
      res.status(403).json({
        error: `this server answers loopback host names only (127.0.0.1, localhost, [::1] with its port); got Host ${JSON.stringify(String(req.headers.host ?? "").slice(0, 100))}`,
      } satisfies ApiError);
      return;
    }
    next();
  });
  app.use("/api", (req, res, next) => {
    if (opts.token && !tokenMatches(requestToken(req), opts.token)) {
      res.status(401).json({
        error:
          "missing or wrong token: send `Authorization: Bearer <token>` or `x-rewardlab-token: <token>` (the token is printed when the server starts)",
      } satisfies ApiError);
      return;
    }
    // same-origin only for requests that change state: a cross-site page cannot drive the server
    const problem = req.method !== "GET" && req.method !== "HEAD" ? originProblem(req) : null;
    if (problem) {
      res.status(403).json({ error: problem } satisfies ApiError);
      return;
    }
    next();
  });
  const levelLimit = opts.levelLimit ?? 64 * 1024;
  app.use("/api/levels", express.json({ limit: levelLimit, strict: true }));
  app.use("/api", express.json({ limit: opts.bodyLimit ?? "256kb", strict: true }));
  app.use("/api", (req, _res, next) => {
    checkBodyShape(req.body);
    next();
  });

  const api = express.Router();

  api.get("/health", (req, res) => {
    const q = check<{ gc?: "1"; resetDelay?: "1" }>(healthQuerySchema, { ...req.query }, "query");
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
    check(emptyQuerySchema, req.query, "query");
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
    check(emptyQuerySchema, req.query, "query");
    const list: AgentSummary[] = agentRegistrations().map((a) => ({
      name: a.name,
      description: a.description,
      kind: a.kind,
      configSchema: a.configSchema,
      defaults: defaults<Record<string, unknown>>(a.configSchema),
    }));
    res.json(list);
  });

  api.post("/runs", (req, res) => {
    const body = check<Record<string, unknown>>(runRequestSchema, req.body, "run request");
    const run = manager.create(body);
    res.status(201).json(runSummary(run, manager));
  });

  // a page at a time, newest first: the x-next-cursor header names the next page (absent on the last)
  api.get("/runs", async (req, res) => {
    const q = check<{ limit?: string; cursor?: string; sweep?: string }>(runsQuerySchema, { ...req.query }, "query");
    const limit = Math.min(Number(q.limit ?? 50), LIMITS.maxRunPage);
    if (limit < 1) throw new ValidationError(`limit must be 1 to ${LIMITS.maxRunPage}`, [{ path: "/limit", message: "out of range" }]);
    const page = store.runPage(limit, q.cursor ?? null, q.sweep ?? null);
    if (page.next) res.setHeader("x-next-cursor", page.next);
    res.json(await inSlices(page.runs, (r) => runSummary(r, manager)));
  });

  const runParam = (req: Request): string => check<{ id: string }>(idParamsSchema, { ...req.params }, "path").id;
  const requireRun = (id: string): StoredRun => {
    const r = store.getRun(id);
    if (!r) throw new NotFoundError(`no run with id ${id}`);
    return r;
  };

  api.get("/runs/:id", (req, res) => {
    res.json(runSummary(requireRun(runParam(req)), manager));
  });

  for (const action of ["pause", "resume", "stop"] as const) {
    api.post(`/runs/:id/${action}`, (req, res) => {
      const id = runParam(req);
      if (req.body !== undefined && req.body !== null && Object.keys(req.body).length > 0) {
        throw new ValidationError(`POST /runs/:id/${action} takes no body`, [{ path: "/", message: "must be empty" }]);
      }
      manager[action](id);
      res.json(runSummary(requireRun(id), manager));
    });
  }

  api.post("/runs/:id/intervene", (req, res) => {
    const id = runParam(req);
    const change = check<Intervention>(interveneSchema, req.body, "intervention");
    manager.intervene(id, change);
    res.json(runSummary(requireRun(id), manager));
  });

  api.delete("/runs/:id", async (req, res) => {
    const id = runParam(req);
    await manager.delete(id);
    res.status(204).end();
  });

  api.get("/runs/:id/episodes", (req, res) => {
    const id = runParam(req);
    requireRun(id);
    const q = check<{ from?: string; limit?: string }>(episodesQuerySchema, { ...req.query }, "query");
    res.json(store.episodes(id, Number(q.from ?? 0), Math.min(Number(q.limit ?? 10000), 100000)));
  });

  api.get("/runs/:id/updates", (req, res) => {
    const id = runParam(req);
    requireRun(id);
    // a long run has 10^5 updates: at most about 20,000 points, spread over the whole run (all of them below that)
    res.json(store.updatesOverview(id, 20_000));
  });

  api.get("/runs/:id/interventions", (req, res) => {
    const id = runParam(req);
    requireRun(id);
    res.json(store.interventions(id));
  });

  api.get("/runs/:id/trajectories", (req, res) => {
    const id = runParam(req);
    requireRun(id);
    res.json(store.trajectories(id));
  });

  api.get("/runs/:id/trajectories/:episode", (req, res) => {
    const p = check<{ id: string; episode: string }>(trajectoryParamsSchema, { ...req.params }, "path");
    requireRun(p.id);
    const t = store.trajectory(p.id, Number(p.episode));
    if (!t)
      throw new NotFoundError(
        `run ${p.id} has no stored trajectory for episode ${p.episode}; GET /api/runs/${p.id}/trajectories lists them`,
      );
    res.json(t);
  });

  api.get("/runs/:id/ledger", (req, res) => {
    const id = runParam(req);
    const r = requireRun(id);
    const env = envSummary(r.spec.env);
    const frame = env.variantFrames[r.variant] ?? env.frame;
    const { entries, visits } = store.ledger(id);
    const body: LedgerTotals = { envId: r.spec.env, width: frame.width, height: frame.height, actions: env.actions, entries, visits };
    res.json(body);
  });

  api.get("/levels/schema", (_req, res) => {
    res.json(levelSchema);
  });

  // a level is data: validated by its JSON Schema, size-limited, stored in the data folder, never executed
  if (opts.levelsDir) mountLevelRoutes(api, { levelsDir: opts.levelsDir, store });
  else {
    api.post("/levels", () => {
      throw new ConflictError("level uploads are disabled on this server");
    });
  }

  api.post("/probes", (req, res) => {
    const body = check<ProbeStart>(probeRequestSchema, req.body, "probe request");
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
    const id = runParam(req);
    const p = probes.get(id);
    if (!p) throw new NotFoundError(`no probe with id ${id}`);
    res.json(p);
  });

  api.post("/probes/:id/stop", async (req, res) => {
    const id = runParam(req);
    if (req.body !== undefined && req.body !== null && Object.keys(req.body).length > 0) {
      throw new ValidationError("POST /probes/:id/stop takes no body", [{ path: "/", message: "must be empty" }]);
    }
    res.json(await probes.stop(id));
  });

  api.delete("/probes/:id", async (req, res) => {
    await probes.delete(runParam(req));
    res.status(204).end();
  });

  if (opts.sweeps) mountSweepRoutes(api, opts.sweeps);
  else {
    api.all(/^\/sweeps/, () => {
      throw new ConflictError("sweeps are disabled on this server");
    });
  }

  app.use("/api", api, steerRoutes(store));
  app.use("/api", resultsRouter(store.dataDir));
  app.use("/api", (req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.originalUrl}; see the API list in the README` } satisfies ApiError);
  });

  if (opts.clientDir && existsSync(join(opts.clientDir, "index.html"))) {
    app.use(express.static(opts.clientDir, { index: "index.html", maxAge: "1h" }));
    app.get(/^\/(?!api\/|socket\.io\/).*/, (_req, res) => res.sendFile(join(opts.clientDir!, "index.html")));
  } else {
    app.get("/", (_req, res) => {
      res.type("text").send("rewardlab API is running, but the client is not built: run `npm run build:client` (npm start does it).");
    });
  }

  app.use((req, res) => {
    res.status(404).json({ error: `not found: ${req.method} ${req.path}` } satisfies ApiError);
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { status, body } = toHttpError(err);
    if (status >= 500) log.error({ err, path: req.path }, "request failed");
    // no answer names a path of this machine: the data folder's files are named from it
    res.status(status).json(boundedError({ ...body, error: relativePaths(body.error, store.dataDir) }));
  });

  return app;
}

/** Maps an error to a status and a JSON body that says what to fix (no stack traces). */
export function toHttpError(err: unknown): { status: number; body: ApiError } {
  if (err instanceof ValidationError) return { status: 400, body: { error: err.message, details: err.errors } };
  if (err instanceof LevelError)
    return { status: 400, body: { error: err.message, details: err.problems.map((p) => ({ path: "/", message: p })) } };
  if (err instanceof NotFoundError) return { status: 404, body: { error: err.message } };
  if (err instanceof ConflictError) return { status: 409, body: { error: err.message } };
  if (err instanceof LimitError)
    return { status: 429, body: { error: err.message, details: [{ path: `/${err.limit}`, message: `limit is ${err.value}` }] } };
  if (err instanceof UnknownIdError) return { status: 400, body: { error: err.message } };
  if (err instanceof RewardlabError) return { status: 400, body: { error: err.message } };
  const e = err as { type?: string; code?: string; status?: number; statusCode?: number; message?: string; limit?: number };
  if (e?.code && /^(ENOSPC|EDQUOT|EIO|EROFS|SQLITE_FULL|SQLITE_IOERR|SQLITE_READONLY)/.test(e.code)) {
    return {
      status: 507,
      body: { error: `the server could not write to its data folder (${e.code}: ${e.message ?? ""}); free some space and try again` },
    };
  }
  if (e?.type === "entity.too.large") {
    return { status: 413, body: { error: `request body too large: the limit is ${e.limit} bytes` } };
  }
  if (e?.type === "entity.parse.failed") return { status: 400, body: { error: "request body is not valid JSON" } };
  const status = e?.status ?? e?.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) return { status, body: { error: e.message ?? "bad request" } };
  return { status: 500, body: { error: "internal error; the server log has the details" } };
}
