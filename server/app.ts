/**
 * The express app: the JSON REST API under /api and the built client at /.
 * Every body, query and path parameter is validated by ajv before use; every
 * error answers as JSON `{error, details?}`, never with a stack trace.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import helmet from "helmet";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RewardlabError, UnknownIdError, ValidationError, LevelError } from "../envs/errors.ts";
import { ConflictError, LimitError, NotFoundError, type RunManager } from "../experiments/manager.ts";
import { moduleLogger } from "../experiments/log.ts";
import type { ApiError } from "./protocol.ts";
import type { ProbeService } from "./probes.ts";
import type { SweepService } from "./sweeps.ts";
import { relativePaths } from "./views.ts";
import { mountInfoRoutes } from "./inforoutes.ts";
import { mountRunRoutes } from "./runroutes.ts";
import { mountLevelRoutes, mountProbeRoutes, mountSweepRoutes } from "./routes.ts";
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

/**
 * The app, in the order a request meets it: the guards (headers, request log,
 * Host, token and origin, body parsing and shape), the API's routes by
 * resource, an /api 404, the client, a 404 and the error answer.
 */
export function createApp(opts: AppOptions): express.Express {
  const store = opts.manager.store;
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  useGuards(app, opts);
  app.use("/api", apiRouter(opts), steerRoutes(store));
  app.use("/api", resultsRouter(store.dataDir));
  app.use("/api", (req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.originalUrl}; see the API list in the README` } satisfies ApiError);
  });
  serveClient(app, opts.clientDir);
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

/** The routes under /api, one group per resource, in the order they are matched. */
function apiRouter(opts: AppOptions): express.Router {
  const api = express.Router();
  mountInfoRoutes(api, opts);
  mountRunRoutes(api, opts.manager);
  mountLevelRoutes(api, { levelsDir: opts.levelsDir, store: opts.manager.store });
  mountProbeRoutes(api, opts.probes);
  mountSweepRoutes(api, opts.sweeps);
  return api;
}

/** Security headers, the request log, the Host check, the token and origin checks, then the body parsers and the body's shape. */
function useGuards(app: express.Express, opts: AppOptions): void {
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
  app.use(hostGuard(opts.token));
  app.use("/api", tokenAndOriginGuard(opts.token));
  app.use("/api/levels", express.json({ limit: opts.levelLimit ?? 64 * 1024, strict: true }));
  app.use("/api", express.json({ limit: opts.bodyLimit ?? "256kb", strict: true }));
  app.use("/api", (req, _res, next) => {
    checkBodyShape(req.body);
    next();
  });
}

/** Without a token the server trusts its own machine only: a foreign Host is a DNS-rebound name. */
function hostGuard(token: string | undefined): express.RequestHandler {
  return (req, res, next) => {
    if (!token && !loopbackHostOk(req.headers.host, req.socket.localPort)) {
      res.status(403).json({
        error: `this server answers loopback host names only (127.0.0.1, localhost, [::1] with its port); got Host ${JSON.stringify(String(req.headers.host ?? "").slice(0, 100))}`,
      } satisfies ApiError);
      return;
    }
    next();
  };
}

/** With a token, every /api request carries it; a request that changes state comes from the same origin. */
function tokenAndOriginGuard(token: string | undefined): express.RequestHandler {
  return (req, res, next) => {
    if (token && !tokenMatches(requestToken(req), token)) {
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
  };
}

/** The built client at / (any path outside /api and /socket.io gets its index.html), or a line saying how to build it. */
function serveClient(app: express.Express, clientDir: string | undefined): void {
  if (clientDir && existsSync(join(clientDir, "index.html"))) {
    app.use(express.static(clientDir, { index: "index.html", maxAge: "1h" }));
    app.get(/^\/(?!api\/|socket\.io\/).*/, (_req, res) => res.sendFile(join(clientDir, "index.html")));
  } else {
    app.get("/", (_req, res) => {
      res.type("text").send("rewardlab API is running, but the client is not built: run `npm run build:client` (npm start does it).");
    });
  }
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
