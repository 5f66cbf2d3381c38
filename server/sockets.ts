/**
 * socket.io streaming: one room per run. Frames are paced (at most `fps` per
 * run, whole episodes, excess dropped) and sent volatile, so a slow client
 * loses frames and never slows training; episode statistics are batched.
 * Every client message is validated and rate-limited; every handler and
 * middleware catches its own errors, so nothing a client sends can end the
 * process. A client's backlog is bounded in bytes, a snapshot is built once
 * for everyone who asks within SNAPSHOT_REUSE_MS, and a client that has not
 * read its last snapshot gets no second one.
 */
import type { Server as HttpServer } from "node:http";
import { Server, type Socket } from "socket.io";
import { cloneInput, validate } from "../envs/schema.ts";
import { ValidationError } from "../envs/errors.ts";
import type { RunManager } from "../experiments/manager.ts";
import type { EpisodeStats, RunEvent, RunEventOf } from "../experiments/events.ts";
import { moduleLogger } from "../experiments/log.ts";
import { relativePaths, runSummary } from "./views.ts";
import { loopbackHostOk, originProblem, tokenMatches } from "./origin.ts";
import type { ClientToServerEvents, ProbeResult, ServerToClientEvents } from "./protocol.ts";
import { subscribeSchema } from "./schemas.ts";

const log = moduleLogger("server/sockets");

export interface SocketOptions {
  /** Frames per second per run (default 30). */
  fps?: number;
  token?: string;
  /** Messages per second a client may send (default 20, bursts of 40). */
  messageRate?: number;
  /** Episode statistics flush interval (ms). */
  batchMs?: number;
  /** Packets a client may have waiting before it is cut off (default MAX_STALLED). */
  maxStalled?: number;
  /** Bytes a client may have waiting before it is cut off (default MAX_BACKLOG_BYTES). */
  maxBacklogBytes?: number;
}

type Io = Server<ClientToServerEvents, ServerToClientEvents>;
type Snapshot = Parameters<ServerToClientEvents["snapshot"]>[0];
interface CachedSnapshot {
  at: number;
  version: number;
  value: Snapshot;
  /** socket.io's encoding of the snapshot event (EVENT packets of the main namespace). */
  encoded: string[];
  bytes: number;
}
/** socket.io-parser's packet type of an event. */
const PACKET_EVENT = 2;

/** Packets waiting on a client's connection beyond which its frames are dropped. */
const MAX_BACKLOG = 16;
/**
 * Packets waiting beyond which a client is cut off: statistics are never
 * dropped, so a client that reads slower than they arrive would otherwise
 * buffer without bound. It reconnects and gets a fresh snapshot. (A client
 * that stops reading altogether misses its pings and is dropped by the
 * heartbeat, pingInterval + pingTimeout = 18 s, usually first.)
 */
export const MAX_STALLED = 512;

/**
 * Bytes waiting on a client's connection beyond which it is cut off: a
 * snapshot is ~650 kB, so a few clients that ask for them and never read
 * would otherwise take gigabytes (they did: 2.2 GB in 25 s).
 */
export const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;
/** A run's snapshot is built once and reused for everyone who subscribes within this window. */
export const SNAPSHOT_REUSE_MS = 250;

/** Runs a `runs` event carries (the newest), and how often it is sent at most. */
export const RUNS_BROADCAST_PAGE = 100;
const RUNS_BROADCAST_MS = 250;

/** Episodes (and updates) a snapshot carries at most, about. */
const SNAPSHOT_POINTS = 5000;

type EngineConn = {
  writeBuffer?: { data?: unknown }[];
  transport?: {
    name?: string;
    socket?: { bufferedAmount?: number; ping?: () => void; once?: (event: "pong", listener: () => void) => void };
  };
};

const backlogOf = (socket: Socket): number => (socket.conn as unknown as EngineConn).writeBuffer?.length ?? 0;

/** Bytes waiting for a client: packets engine.io holds, plus what the websocket has not yet handed to the kernel. */
export function backlogBytes(socket: Socket): number {
  const conn = socket.conn as unknown as EngineConn;
  let n = 0;
  for (const p of conn.writeBuffer ?? []) {
    const d = p.data;
    if (typeof d === "string") n += d.length;
    else if (d && typeof (d as ArrayBufferLike).byteLength === "number") n += (d as ArrayBufferLike).byteLength;
  }
  if (conn.transport?.name === "websocket") n += conn.transport.socket?.bufferedAmount ?? 0;
  return n;
}

/** Runs a socket callback so that a throw is logged, never left to end the process. */
function guarded<A extends unknown[]>(what: string, fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      log.error({ err, what }, "socket handler threw (caught)");
    }
  };
}

/** What the streaming layer has done, for /api/health and the soak benchmark. */
export interface StreamStats {
  clients: number;
  framesDropped: number;
  /** Clients cut off because their backlog passed MAX_STALLED packets. */
  stalledCut: number;
  /** The longest backlog (packets waiting) of any client now. */
  maxBacklog: number;
  /** The largest backlog in bytes of any client now. */
  maxBacklogBytes: number;
  /** Subscribes answered with an error because the client had not read its previous snapshot. */
  snapshotsRefused: number;
  /** Snapshots built (the rest of those sent were reused). */
  snapshotsBuilt: number;
  /** Snapshots sent to subscribers. */
  snapshotsSent: number;
}

/** Plays recorded episodes to a room at a steady pace; drops whole episodes when behind. */
class FramePacer {
  private queue: RunEventOf<"frame">[] = [];
  private accepting = false;
  /** Frames dropped because the viewers were behind (observable in tests and the bench). */
  dropped = 0;
  constructor(private readonly capacity: number) {}

  push(f: RunEventOf<"frame">): void {
    if (f.t === 0) this.accepting = this.queue.length < this.capacity / 4;
    if (this.accepting && this.queue.length < this.capacity) this.queue.push(f);
    else this.dropped++;
  }

  next(): RunEventOf<"frame"> | undefined {
    return this.queue.shift();
  }

  get size(): number {
    return this.queue.length;
  }
}

export class Broadcaster {
  readonly io: Io;
  private readonly pacers = new Map<string, FramePacer>();
  private readonly episodeBatches = new Map<string, EpisodeStats[]>();
  private readonly timers: NodeJS.Timeout[] = [];
  private stalledCut = 0;
  private snapshotsRefused = 0;
  private snapshotsBuilt = 0;
  private snapshotsSent = 0;
  private readonly snapshots = new Map<string, CachedSnapshot>();
  /** Per socket, the runs whose last snapshot it has not yet taken (no pong since it was sent). */
  private readonly unread = new Map<string, Set<string>>();
  /** Per run, a count of the events that change its snapshot (a cached snapshot of the same count is current). */
  private readonly versions = new Map<string, number>();
  /** Frames dropped by pacers of runs that have ended. */
  private droppedBefore = 0;

  constructor(
    http: HttpServer,
    private readonly manager: RunManager,
    private readonly opts: SocketOptions = {},
  ) {
    this.io = new Server(http, {
      serveClient: false,
      maxHttpBufferSize: 16 * 1024,
      cors: { origin: false },
      pingInterval: 10_000,
      pingTimeout: 8_000,
      // before any socket exists: a loopback server answers loopback Host names only, and only same-origin (or no-Origin) pages
      allowRequest: (req, callback) => {
        try {
          if (!opts.token && !loopbackHostOk(req.headers.host, req.socket.localPort)) {
            callback("this server answers loopback host names only", false);
            return;
          }
          const problem = originProblem(req);
          callback(problem, problem === null);
        } catch (err) {
          log.error({ err }, "allowRequest threw (caught)");
          callback("bad request", false);
        }
      },
    });
    const token = opts.token;
    if (token) {
      this.io.use((socket, next) => {
        try {
          // the handshake is network data: only a string token is ever looked at
          const auth: unknown = socket.handshake.auth;
          const given = auth && typeof auth === "object" ? (auth as Record<string, unknown>).token : undefined;
          if (tokenMatches(given, token)) next();
          else next(new Error("missing or wrong token: connect with auth: {token: string}"));
        } catch (err) {
          log.error({ err }, "socket auth threw (caught)");
          next(new Error("bad handshake"));
        }
      });
    }
    this.io.engine.on("connection_error", (err: { code?: number; message?: string }) => {
      log.debug({ code: err.code, message: err.message }, "socket connection refused");
    });
    this.io.on(
      "connection",
      guarded("connection", (s: Socket<ClientToServerEvents, ServerToClientEvents>) => this.onConnection(s)),
    );
    manager.on((e) => this.onRunEvent(e));
    manager.onDelete((runId) => this.forget(runId));
    const fps = opts.fps ?? 30;
    this.timers.push(
      setInterval(
        guarded("frames", () => this.tickFrames()),
        1000 / fps,
      ),
    );
    this.timers.push(
      setInterval(
        guarded("episodes", () => this.flushEpisodes()),
        opts.batchMs ?? 250,
      ),
    );
    this.timers.push(
      setInterval(
        guarded("stalled", () => this.cutStalled()),
        1000,
      ),
    );
  }

  /** A deleted run: its pacer, batches and cached snapshot go. */
  private forget(runId: string): void {
    this.pacers.delete(runId);
    this.episodeBatches.delete(runId);
    this.snapshots.delete(runId);
    this.versions.delete(runId);
  }

  private cutStalled(): void {
    for (const socket of this.io.sockets.sockets.values()) this.cutIfStalled(socket);
  }

  /** Cuts a client whose backlog passed the packet or byte bound; returns whether it did. */
  private cutIfStalled(socket: Socket): boolean {
    const backlog = backlogOf(socket);
    const bytes = backlogBytes(socket);
    if (backlog <= (this.opts.maxStalled ?? MAX_STALLED) && bytes <= (this.opts.maxBacklogBytes ?? MAX_BACKLOG_BYTES)) return false;
    this.stalledCut++;
    log.warn(
      { socket: socket.id, backlog, bytes },
      "client reads too slowly: cutting its connection (it reconnects with a fresh snapshot)",
    );
    socket.conn.close(true);
    return true;
  }

  private onConnection(socket: Socket<ClientToServerEvents, ServerToClientEvents>): void {
    socket.on("disconnect", () => this.unread.delete(socket.id));
    // a transport upgrade starts a new websocket: a pong owed by the old transport never comes
    socket.conn.on("upgrade", () => this.unread.delete(socket.id));
    const rate = this.opts.messageRate ?? 20;
    let tokens = rate * 2;
    let last = Date.now();
    const allow = (): boolean => {
      const now = Date.now();
      tokens = Math.min(rate * 2, tokens + ((now - last) / 1000) * rate);
      last = now;
      if (tokens < 1) return false;
      tokens--;
      return true;
    };
    const guard =
      <T>(name: string, handler: (msg: T) => void) =>
      (msg: unknown) => {
        if (!allow()) {
          socket.emit("error", { error: `too many messages: the limit is ${rate} per second` });
          return;
        }
        try {
          handler(validate<T>(subscribeSchema, cloneInput(msg ?? {}, `${name} message`), `${name} message`));
        } catch (e) {
          const details = e instanceof ValidationError ? e.errors : undefined;
          socket.emit("error", { error: (e as Error).message, ...(details ? { details } : {}) });
        }
      };
    socket.on(
      "subscribe",
      guard<{ runId: string }>("subscribe", ({ runId }) => {
        // one unread snapshot of a run at most: a client that has not taken the last one gets an error, not a second copy
        if (this.unread.get(socket.id)?.has(runId)) {
          this.snapshotsRefused++;
          throw new ValidationError(`busy: your previous snapshot of run ${runId} has not arrived yet; subscribe again once it has`, [
            { path: "/runId", message: "previous snapshot unread" },
          ]);
        }
        const snapshot = this.snapshot(runId);
        if (!snapshot) throw new ValidationError(`no run with id ${runId}`, [{ path: "/runId", message: "unknown run" }]);
        void socket.join(runId);
        this.sendSnapshot(socket, runId, snapshot);
        this.cutIfStalled(socket);
      }),
    );
    socket.on(
      "unsubscribe",
      guard<{ runId: string }>("unsubscribe", ({ runId }) => void socket.leave(runId)),
    );
    // anything else a client sends is refused with a clear error
    socket.onAny(
      guarded("onAny", (event: unknown) => {
        if (event !== "subscribe" && event !== "unsubscribe") {
          if (!allow()) return;
          const name = typeof event === "string" ? event.slice(0, 64) : typeof event;
          socket.emit("error", { error: `unknown message "${name}"; the client may send subscribe or unsubscribe` });
        }
      }),
    );
  }

  /**
   * A run's summary and history, as a subscriber receives it first, with
   * its socket.io encoding. Built once for everyone who asks: reused while
   * the run has had no event since (a finished run: until it changes), and
   * for SNAPSHOT_REUSE_MS while it trains.
   */
  private snapshot(runId: string, fresh = false): CachedSnapshot | null {
    const cached = this.snapshots.get(runId);
    const now = Date.now();
    const version = this.versions.get(runId) ?? 0;
    if (!fresh && cached && (cached.version === version || now - cached.at < SNAPSHOT_REUSE_MS)) return cached;
    // what the run has emitted so far is in the store before it is read
    this.manager.store.flush();
    const run = this.manager.store.getRun(runId);
    if (!run) {
      this.snapshots.delete(runId);
      return null;
    }
    // long runs have 10^5 episodes and updates or more: a snapshot carries about 5,000 of each,
    // spread over the whole run, with the last (the charts cannot show more; REST serves them all)
    const value: Snapshot = {
      run: runSummary(run, this.manager),
      episodes: this.manager.store.episodesOverview(runId, SNAPSHOT_POINTS),
      updates: this.manager.store.updatesOverview(runId, SNAPSHOT_POINTS),
      interventions: this.manager.store.interventions(runId),
    };
    this.snapshotsBuilt++;
    // encoded once too: JSON of a 1 MB snapshot costs more than building it when many ask
    const encoded = this.io.encoder.encode({ type: PACKET_EVENT, nsp: "/", data: ["snapshot", value] }) as string[];
    const entry: CachedSnapshot = { at: now, version, value, encoded, bytes: encoded.reduce((n, p) => n + p.length, 0) };
    // the map holds one entry per run asked for; entries of quiet runs go when it grows
    if (this.snapshots.size > 64) for (const [id, c] of this.snapshots) if (now - c.at >= 10_000) this.snapshots.delete(id);
    this.snapshots.set(runId, entry);
    return entry;
  }

  /**
   * Sends a cached snapshot to one client as socket.io would, without
   * encoding it again. Over a websocket it is followed by a protocol-level
   * ping: the client's pong (sent by its websocket stack once it has taken
   * the bytes before it) marks the snapshot read. Until then the client gets
   * no other snapshot. (A polling client reads by polling: its unsent bytes
   * show in backlogBytes.)
   */
  private sendSnapshot(socket: Socket, runId: string, snap: CachedSnapshot): void {
    if (socket.nsp.name !== "/") socket.emit("snapshot", snap.value);
    else for (const packet of snap.encoded) socket.conn.write(packet);
    this.snapshotsSent++;
    let pending = this.unread.get(socket.id);
    if (!pending) this.unread.set(socket.id, (pending = new Set()));
    pending.add(runId);
    const read = () => pending.delete(runId);
    const transport = (socket.conn as unknown as EngineConn).transport;
    const ws = transport?.socket;
    if (transport?.name === "websocket" && ws?.ping && ws.once) {
      ws.once("pong", read);
      try {
        ws.ping();
      } catch {
        read();
      }
    } else {
      // polling: the buffer drains when the client polls, that is, reads
      socket.conn.once("drain", read);
    }
  }

  private pacer(runId: string): FramePacer {
    let p = this.pacers.get(runId);
    if (!p) {
      p = new FramePacer(400);
      this.pacers.set(runId, p);
    }
    return p;
  }

  private onRunEvent(e: RunEvent): void {
    try {
      this.routeRunEvent(e);
    } catch (err) {
      log.error({ err, runId: e.runId, type: e.type }, "streaming a run event failed (caught)");
    }
  }

  private routeRunEvent(e: RunEvent): void {
    if (e.type !== "frame" && e.type !== "trajectory") this.versions.set(e.runId, (this.versions.get(e.runId) ?? 0) + 1);
    const room = this.io.to(e.runId);
    switch (e.type) {
      case "frame":
        if ((this.io.sockets.adapter.rooms.get(e.runId)?.size ?? 0) > 0) this.pacer(e.runId).push(e);
        break;
      case "episode": {
        let batch = this.episodeBatches.get(e.runId);
        if (!batch) this.episodeBatches.set(e.runId, (batch = []));
        if (batch.length < 2000) batch.push(e.episode);
        break;
      }
      case "update":
        room.emit("update", {
          runId: e.runId,
          update: e.update,
          envSteps: e.envSteps,
          stepsPerSecond: e.stepsPerSecond,
          metrics: e.metrics,
          ...(e.ledger ? { ledger: e.ledger } : {}),
          ...(e.search ? { search: e.search } : {}),
        });
        break;
      case "status":
        this.flushEpisodes();
        room.emit("status", {
          runId: e.runId,
          status: e.status,
          ...(e.reason ? { reason: relativePaths(e.reason, this.manager.store.dataDir) } : {}),
          ...(e.envSteps !== undefined ? { envSteps: e.envSteps } : {}),
        });
        if (e.status === "queued") {
          // a run resumed from a checkpoint has had its history rewound: watchers start again from a fresh snapshot
          const snap = this.snapshot(e.runId, true);
          if (snap) room.emit("snapshot", snap.value);
        }
        if (e.status === "completed" || e.status === "failed" || e.status === "stopped") {
          this.droppedBefore += this.pacers.get(e.runId)?.dropped ?? 0;
          this.pacers.delete(e.runId);
        }
        this.broadcastRuns();
        break;
      case "evaluation":
        room.emit("evaluation", { runId: e.runId, evaluation: e.evaluation });
        break;
      case "intervention":
        room.emit("intervention", {
          runId: e.runId,
          envSteps: e.envSteps,
          variant: e.variant,
          learning: e.learning,
          reward: e.reward,
          time: Date.now(),
        });
        break;
      case "trajectory":
        room.volatile.emit("trajectory", { runId: e.runId, trajectory: e.trajectory });
        break;
      default:
        break;
    }
  }

  private tickFrames(): void {
    for (const [runId, p] of this.pacers) {
      const f = p.next();
      if (!f) continue;
      const msg = { runId, episode: f.episode, t: f.t, frame: f.frame, reward: f.reward, performance: f.performance, events: f.events };
      // per client, not volatile: a client watching several runs gets each run's frame in the same tick;
      // one whose connection is backed up skips the frame, so its buffer stays bounded
      for (const id of this.io.sockets.adapter.rooms.get(runId) ?? []) {
        const socket = this.io.sockets.sockets.get(id);
        if (!socket) continue;
        if (backlogOf(socket) > MAX_BACKLOG) {
          p.dropped++;
          continue;
        }
        socket.emit("frame", msg);
      }
    }
  }

  private flushEpisodes(): void {
    for (const [runId, episodes] of this.episodeBatches) {
      if (episodes.length) this.io.to(runId).emit("episode", { runId, episodes });
    }
    this.episodeBatches.clear();
  }

  /**
   * Sends the newest runs to everyone, at most every RUNS_BROADCAST_MS
   * (a burst of status events is one read): one indexed page of the store,
   * whatever the number of runs stored.
   */
  broadcastRuns(): void {
    if (this.runsTimer) return;
    const since = Date.now() - this.runsSentAt;
    this.runsTimer = setTimeout(
      guarded("runs", () => {
        this.runsTimer = null;
        this.runsSentAt = Date.now();
        const page = this.manager.store.runPage(RUNS_BROADCAST_PAGE);
        this.io.emit("runs", { runs: page.runs.map((r) => runSummary(r, this.manager)) });
      }),
      Math.max(0, RUNS_BROADCAST_MS - since),
    );
  }

  private runsTimer: NodeJS.Timeout | null = null;
  private runsSentAt = 0;

  broadcastProbe(p: ProbeResult): void {
    this.io.emit("probe", p);
  }

  droppedFrames(): number {
    let n = this.droppedBefore;
    for (const p of this.pacers.values()) n += p.dropped;
    return n;
  }

  stats(): StreamStats {
    let maxBacklog = 0;
    for (const socket of this.io.sockets.sockets.values()) maxBacklog = Math.max(maxBacklog, backlogOf(socket));
    let maxBytes = 0;
    for (const socket of this.io.sockets.sockets.values()) maxBytes = Math.max(maxBytes, backlogBytes(socket));
    return {
      clients: this.io.engine.clientsCount,
      framesDropped: this.droppedFrames(),
      stalledCut: this.stalledCut,
      maxBacklog,
      maxBacklogBytes: maxBytes,
      snapshotsRefused: this.snapshotsRefused,
      snapshotsBuilt: this.snapshotsBuilt,
      snapshotsSent: this.snapshotsSent,
    };
  }

  /** Tells every client the server is going away (they reconnect by themselves later). */
  announceShutdown(reason: string): void {
    this.io.emit("shutdown", { reason });
  }

  async close(reason: string): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    if (this.runsTimer) clearTimeout(this.runsTimer);
    this.flushEpisodes();
    this.io.emit("shutdown", { reason });
    // let the last messages leave before the sockets are cut
    await new Promise((r) => setTimeout(r, 150));
    await new Promise<void>((r) => this.io.close(() => r()));
    log.info("sockets closed");
  }
}
