/**
 * `rewardlab serve` (and `npm start`): the store, the run manager, the
 * express app and socket.io on one HTTP server, bound to 127.0.0.1 unless
 * told otherwise (then a token is required). Starts a demo comparison on
 * first start; shuts down gracefully on SIGINT/SIGTERM.
 */
import { createServer } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { basename, join, resolve } from "node:path";
import { mkdirSync } from "node:fs";
import { loadLevelDir } from "../envs/levelregistrar.ts";
import { RewardlabError } from "../envs/errors.ts";
import { Store } from "../experiments/store.ts";
import { RunManager } from "../experiments/manager.ts";
import { moduleLogger } from "../experiments/log.ts";
import type { BackendName } from "../experiments/pool.ts";
import type { UserEnvironments } from "../experiments/plugins.ts";
import { createApp } from "./app.ts";
import { Broadcaster } from "./sockets.ts";
import { ProbeService } from "./probes.ts";
import { SweepService } from "./sweeps.ts";
import { DemoKeeper, isDemoRun } from "./demo.ts";
import { type DataLock, lockDataFolder } from "./lock.ts";

const log = moduleLogger("server/main");

export interface ServeOptions {
  port?: number;
  host?: string;
  dataDir?: string;
  /** Required for non-loopback binds; generated when absent. */
  token?: string;
  demo?: boolean;
  /** Stop the demo once nobody has watched it this long (default 2 minutes); the next visitor resumes it. */
  demoIdleMs?: number;
  maxConcurrentRuns?: number;
  maxActiveRuns?: number;
  backend?: BackendName;
  userEnvs?: UserEnvironments;
  fps?: number;
  /** Packets a client may have waiting before it is cut off (default 512). */
  maxStalled?: number;
  clientDir?: string;
  /** redis://host:port: sweeps started from the API go to BullMQ workers. */
  queue?: string;
  /** Print the listening line to stdout (the CLI does; tests read it). */
  announce?: boolean;
}

export interface RunningServer {
  url: string;
  port: number;
  token: string | undefined;
  manager: RunManager;
  broadcaster: Broadcaster;
  close(reason?: string): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

export { DEMO_RUNS } from "./demo.ts";

export async function startServer(opts: ServeOptions = {}): Promise<RunningServer> {
  const host = opts.host ?? "127.0.0.1";
  // an empty token means none: on a non-loopback bind one is generated, so such a server is never open
  const token = LOOPBACK.has(host) ? opts.token || undefined : opts.token || randomBytes(18).toString("base64url");
  if (token !== undefined && (token.length < 8 || token.length > 1024)) throw new RewardlabError("--token must be 8 to 1024 characters");
  const dataDir = resolve(opts.dataDir ?? process.env.REWARDLAB_DATA ?? "data");
  // before anything of the folder is opened or marked: a second server on it stops here
  const lock = lockDataFolder(dataDir);
  try {
    return await startLocked(opts, host, token, dataDir, lock);
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** The store's services over a locked data folder: uploaded levels loaded, unfinished work marked interrupted. */
function openServices(opts: ServeOptions, dataDir: string) {
  const store = new Store(dataDir);
  // uploaded levels live in the data folder; workers load them like any --levels folder
  const levelsDir = join(dataDir, "levels");
  mkdirSync(levelsDir, { recursive: true });
  const loadedUploads = loadLevelDir(levelsDir, { replace: true });
  for (const e of loadedUploads.errors) log.warn({ file: basename(e.file), problems: e.problems }, "an uploaded level no longer loads");
  const userEnvs: UserEnvironments = { levels: [...(opts.userEnvs?.levels ?? []), levelsDir], plugins: opts.userEnvs?.plugins ?? [] };
  const interrupted = store.markInterrupted();
  if (interrupted.length)
    log.warn({ runs: interrupted }, "runs interrupted by the last shutdown; resume them with POST /api/runs/:id/resume");
  const firstStart = store.countRuns() === 0;
  const manager = new RunManager({
    store,
    maxConcurrent: opts.maxConcurrentRuns ?? 2,
    maxActive: opts.maxActiveRuns ?? 16,
    // the demo never keeps a user's run waiting
    yields: isDemoRun,
    ...(opts.backend ? { backend: opts.backend } : {}),
    userEnvs,
  });
  const checkActive = () => manager.checkActive();
  const probes = new ProbeService(store, {
    ...(opts.backend ? { backend: opts.backend } : {}),
    ...(opts.queue ? { queue: opts.queue } : {}),
    userEnvs,
    checkActive,
  });
  const sweeps = new SweepService(store, { ...(opts.queue ? { queue: opts.queue } : {}), userEnvs, checkActive });
  // running probes and sweeps count against the active limit too
  manager.otherActive = () => probes.activeCount() + sweeps.activeCount();
  const levelErrors = loadedUploads.errors.map((e) => ({ file: basename(e.file), problems: e.problems }));
  return { store, levelsDir, manager, probes, sweeps, levelErrors, firstStart };
}

/** The event loop's delay since start (or the last ?resetDelay=1): how long a request could have been kept waiting. */
function eventLoopMonitor() {
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const figures = (reset: boolean) => {
    const f = {
      maxStallMs: +(loopDelay.max / 1e6).toFixed(1),
      p99Ms: +(loopDelay.percentile(99) / 1e6).toFixed(1),
      meanMs: +(loopDelay.mean / 1e6).toFixed(2),
    };
    if (reset) loopDelay.reset();
    return f;
  };
  return { figures, disable: () => loopDelay.disable() };
}

/** Listens, or throws a one-line RewardlabError for a port in use or refused. */
async function listen(http: ReturnType<typeof createServer>, port: number, host: string): Promise<void> {
  try {
    await new Promise<void>((res, rej) => {
      http.once("error", rej);
      http.listen(port, host, () => res());
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new RewardlabError(`port ${port} on ${host} is in use; choose another --port`);
    if (code === "EACCES") throw new RewardlabError(`no permission to listen on port ${port} on ${host}`);
    throw e;
  }
}

/** The URL the server listens on, logged, and printed (with the token, if any) where `opts.announce` asks. */
function announceListening(
  http: ReturnType<typeof createServer>,
  opts: ServeOptions,
  host: string,
  token: string | undefined,
  dataDir: string,
): { url: string; port: number } {
  const address = http.address();
  const port = typeof address === "object" && address ? address.port : (opts.port ?? 3000);
  const shownHost = host.includes(":") ? `[${host}]` : host;
  const url = `http://${shownHost}:${port}`;
  log.info({ url, dataDir, auth: token ? "token" : "none (loopback only)" }, "server listening");
  if (opts.announce) {
    process.stdout.write(`rewardlab listening on ${url}\n`);
    if (token) process.stdout.write(`token: ${token}  (send it as "Authorization: Bearer <token>"; open ${url}/#token=${token})\n`);
  }
  return { url, port };
}

async function startLocked(
  opts: ServeOptions,
  host: string,
  token: string | undefined,
  dataDir: string,
  lock: DataLock,
): Promise<RunningServer> {
  const { store, levelsDir, manager, probes, sweeps, levelErrors, firstStart } = openServices(opts, dataDir);
  const clientDir = opts.clientDir ?? fileURLToPath(new URL("../client/dist", import.meta.url));
  // called per request, by which time the broadcaster below exists
  const streamStats = () => broadcaster.stats();
  const loop = eventLoopMonitor();
  const app = createApp({
    manager,
    probes,
    ...(token ? { token } : {}),
    clientDir,
    levelsDir,
    sweeps,
    streamStats,
    levelErrors,
    eventLoop: loop.figures,
  });
  const http = createServer(app);
  const broadcaster = new Broadcaster(http, manager, {
    ...(token ? { token } : {}),
    ...(opts.fps ? { fps: opts.fps } : {}),
    ...(opts.maxStalled ? { maxStalled: opts.maxStalled } : {}),
  });
  probes.on((p) => broadcaster.broadcastProbe(p));
  sweeps.on((s) => broadcaster.io.emit("sweep", s));

  try {
    await listen(http, opts.port ?? 3000, host);
  } catch (e) {
    // nothing listens: undo what was started
    await Promise.all([manager.shutdown(), probes.shutdown(), sweeps.shutdown()]);
    await broadcaster.close("the server could not listen");
    store.close();
    loop.disable();
    throw e;
  }
  const { url, port } = announceListening(http, opts, host, token, dataDir);

  // the demo trains while someone watches it (a client subscribed to one of its runs)
  const demo =
    (opts.demo ?? true)
      ? new DemoKeeper(manager, (id) => broadcaster.io.sockets.adapter.rooms.get(id)?.size ?? 0, {
          ...(opts.demoIdleMs ? { idleMs: opts.demoIdleMs } : {}),
        })
      : null;
  if (demo && firstStart) demo.create();

  let closing: Promise<void> | null = null;
  const close = (reason = "the server is shutting down") => {
    closing ??= (async () => {
      log.info({ reason }, "shutting down");
      demo?.close();
      broadcaster.announceShutdown(reason);
      await Promise.all([manager.shutdown(), probes.shutdown(), sweeps.shutdown()]);
      await broadcaster.close(reason);
      const closed = new Promise<void>((r) => http.close(() => r()));
      // keep-alive connections would otherwise hold the process open
      http.closeAllConnections();
      await closed;
      store.close();
      loop.disable();
      lock.release();
      log.info("shutdown complete");
    })();
    return closing;
  };
  return { url, port, token, manager, broadcaster, close };
}

/** Runs until SIGINT/SIGTERM, then checkpoints the runs, flushes the store, tells the clients. */
export async function serveForever(opts: ServeOptions): Promise<number> {
  // last resort only: every handler catches its own errors; this logs what slipped through instead of dying silently
  process.on("uncaughtException", (err) => log.fatal({ err }, "uncaught exception (a handler let an error through); still serving"));
  process.on("unhandledRejection", (err) => log.fatal({ err }, "unhandled rejection (a handler let an error through); still serving"));
  const server = await startServer({ ...opts, announce: true });
  await new Promise<void>((res) => {
    const stop = (sig: string) => {
      process.stdout.write(`\n${sig}: stopping runs (they checkpoint), flushing the store...\n`);
      void server.close(`received ${sig}`).then(res);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  return 0;
}
