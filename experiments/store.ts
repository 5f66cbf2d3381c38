/**
 * The store: SQLite (better-sqlite3, WAL) in the data folder. Runs and their
 * configs, per-episode and per-update statistics, sampled trajectories, the
 * ledger's running totals, interventions, evaluations and probe results.
 *
 * It is a consumer of the run event stream: `record(event)` queues writes and
 * flushes them in one transaction at most every `flushMs` (and at once for
 * status changes), so a killed process keeps everything up to its last flush.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { EpisodeStats, EvaluationStats, RunEvent, RunSpec, RunStatus, TrajectoryRecord } from "./events.ts";
import type { ProbeResult } from "./probes/result.ts";
import { ValidationError } from "../envs/errors.ts";

/** A run as every reader sees it (the REST summary extends this one record; server/protocol.ts). */
export interface RunRecord {
  id: string;
  spec: RunSpec;
  status: RunStatus;
  reason: string | null;
  createdAt: number;
  updatedAt: number;
  envSteps: number;
  episodes: number;
  updates: number;
  evaluation: EvaluationStats | null;
  /** Current variant (differs from spec.variant after an intervention). */
  variant: string;
  learning: boolean;
  stepsPerSecond: number | null;
}

/** A run as stored: the record plus where its last checkpoint is (an absolute path: never sent to a client). */
export interface StoredRun extends RunRecord {
  checkpointDir: string | null;
  checkpointSteps: number;
}

/** A page of runs, newest first: `next` is the cursor of the following page (null on the last). */
export interface RunPage {
  runs: StoredRun[];
  next: string | null;
}

/** A probe as stored: its result's fields, the request it was started with, and its rows as JSON. */
export interface StoredProbe extends Omit<ProbeResult, "results"> {
  request: unknown;
  results: unknown[];
}

/** The fields of a probe's table beside its rows, kept in the `extras` column (the chance row among them). */
export const PROBE_EXTRAS = ["chance", "ranges", "routes", "maze"] as const;

/**
 * How long a write waits for another process's (a server and `compare` on
 * one data folder): SQLite's busy timeout, in ms.
 */
export const BUSY_TIMEOUT_MS = 15_000;

/** Versioned migrations: index i takes the schema from version i to i+1. */
const MIGRATIONS: string[] = [
  `CREATE TABLE runs (
     id TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
     env_steps INTEGER NOT NULL DEFAULT 0, episodes INTEGER NOT NULL DEFAULT 0, updates INTEGER NOT NULL DEFAULT 0,
     evaluation TEXT, variant TEXT NOT NULL, learning INTEGER NOT NULL DEFAULT 1, steps_per_second REAL,
     checkpoint_dir TEXT, checkpoint_steps INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE episodes (
     run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, idx INTEGER NOT NULL, env_steps INTEGER NOT NULL,
     return REAL NOT NULL, performance REAL NOT NULL, length INTEGER NOT NULL, terminated INTEGER NOT NULL,
     events TEXT NOT NULL, variant TEXT NOT NULL, PRIMARY KEY (run_id, idx));
   CREATE TABLE updates (
     run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, idx INTEGER NOT NULL, env_steps INTEGER NOT NULL,
     metrics TEXT NOT NULL, PRIMARY KEY (run_id, idx));
   CREATE TABLE trajectories (
     run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, episode INTEGER NOT NULL, env_steps INTEGER NOT NULL,
     variant TEXT NOT NULL, length INTEGER NOT NULL, return REAL NOT NULL, performance REAL NOT NULL, data TEXT NOT NULL,
     PRIMARY KEY (run_id, episode));
   CREATE TABLE ledger (
     run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, state_key INTEGER NOT NULL,
     reinforcement TEXT NOT NULL, visits INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, state_key));
   CREATE TABLE interventions (
     run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, env_steps INTEGER NOT NULL, variant TEXT NOT NULL,
     learning INTEGER NOT NULL, reward TEXT NOT NULL, time INTEGER NOT NULL);
   CREATE TABLE probes (
     id TEXT PRIMARY KEY, probe TEXT NOT NULL, env TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
     created_at INTEGER NOT NULL, request TEXT NOT NULL, results TEXT NOT NULL);`,
  // 2: sweeps, their runs (by key) and probe-job results
  `CREATE TABLE sweeps (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
     status TEXT NOT NULL, total INTEGER NOT NULL, mode TEXT NOT NULL);
   ALTER TABLE runs ADD COLUMN sweep TEXT;
   ALTER TABLE runs ADD COLUMN host TEXT;
   CREATE TABLE probe_jobs (
     key TEXT PRIMARY KEY, sweep TEXT NOT NULL, probe TEXT NOT NULL, agent TEXT NOT NULL, arm TEXT NOT NULL,
     seed INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT, result TEXT, host TEXT, written_at INTEGER NOT NULL);
   CREATE TABLE sweep_jobs (sweep TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (sweep, key));`,
  // 3: why a sweep stopped; runs listed a page at a time, newest first
  `ALTER TABLE sweeps ADD COLUMN reason TEXT;
   CREATE INDEX runs_by_age ON runs (created_at DESC, id DESC);
   CREATE INDEX sweep_jobs_by_key ON sweep_jobs (key);`,
  // 4: what a probe's table holds beside its rows (the chance row, the ranges, the routes, the maze analysis)
  "ALTER TABLE probes ADD COLUMN extras TEXT;",
];

/** Keep at most this many trajectories per run (the newest), so long runs stay small. */
const MAX_TRAJECTORIES = 200;

/** A sweep's stored progress: the part of GET /api/sweeps/:id the store answers (server/protocol.ts SweepView adds the rest). */
export interface SweepProgress {
  id: string;
  name: string;
  status: string;
  /** Why it stopped, failed or was interrupted (null while it runs or once completed). */
  reason: string | null;
  mode: string;
  total: number;
  completed: number;
  failed: number;
  createdAt: number;
  updatedAt: number;
}

export class Store {
  readonly db: Database.Database;
  private queue: { runId: string | null; write: () => void }[] = [];
  /**
   * Told about a queued write that failed (e.g. its run was deleted
   * meanwhile); the other writes of the batch are kept. Without a listener
   * the failure is rethrown by flush().
   */
  onWriteError: ((runId: string | null, err: Error) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /**
   * Status changes not yet on disk (a full disk refused them): reads see
   * them, and every flush tries to write them again. A run that failed
   * because nothing could be written reads as failed, not as running with
   * no worker behind it.
   */
  private readonly unsaved = new Map<string, { status: RunStatus; reason: string | null; updatedAt: number; envSteps: number }>();
  private readonly stmts;

  constructor(
    readonly dataDir: string,
    private readonly flushMs = 100,
  ) {
    mkdirSync(dataDir, { recursive: true });
    // two processes may share the folder (a server and `compare`): a write waits up to BUSY_TIMEOUT_MS for the
    // other's, and every transaction below takes the write lock when it begins (tx), so one that reads before it
    // writes never fails at once with "database is locked" when the other process wrote in between (WAL snapshots)
    this.db = new Database(join(dataDir, "rewardlab.sqlite"), { timeout: BUSY_TIMEOUT_MS });
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("foreign_keys = ON");
    this.migrate();
    const d = this.db;
    this.stmts = {
      insertRun: d.prepare(`INSERT INTO runs (id, spec, status, created_at, updated_at, variant, learning) VALUES (?, ?, ?, ?, ?, ?, 1)`),
      status: d.prepare(`UPDATE runs SET status = ?, reason = ?, updated_at = ?, env_steps = max(env_steps, ?) WHERE id = ?`),
      episode: d.prepare(
        `INSERT OR REPLACE INTO episodes (run_id, idx, env_steps, return, performance, length, terminated, events, variant)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      runProgress: d.prepare(`UPDATE runs SET env_steps = max(env_steps, ?), episodes = max(episodes, ?), updated_at = ? WHERE id = ?`),
      update: d.prepare(`INSERT OR REPLACE INTO updates (run_id, idx, env_steps, metrics) VALUES (?, ?, ?, ?)`),
      runUpdate: d.prepare(`UPDATE runs SET updates = ?, env_steps = max(env_steps, ?), steps_per_second = ?, updated_at = ? WHERE id = ?`),
      ledgerGet: d.prepare(`SELECT reinforcement, visits FROM ledger WHERE run_id = ? AND state_key = ?`),
      ledgerPut: d.prepare(`INSERT OR REPLACE INTO ledger (run_id, state_key, reinforcement, visits) VALUES (?, ?, ?, ?)`),
      trajectory: d.prepare(
        `INSERT OR REPLACE INTO trajectories (run_id, episode, env_steps, variant, length, return, performance, data)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      trimTrajectories: d.prepare(
        `DELETE FROM trajectories WHERE run_id = ? AND episode NOT IN
           (SELECT episode FROM trajectories WHERE run_id = ? ORDER BY episode DESC LIMIT ${MAX_TRAJECTORIES})`,
      ),
      evaluation: d.prepare(`UPDATE runs SET evaluation = ?, updated_at = ? WHERE id = ?`),
      intervention: d.prepare(`INSERT INTO interventions (run_id, env_steps, variant, learning, reward, time) VALUES (?, ?, ?, ?, ?, ?)`),
      runVariant: d.prepare(`UPDATE runs SET variant = ?, learning = ?, updated_at = ? WHERE id = ?`),
      checkpoint: d.prepare(`UPDATE runs SET checkpoint_dir = ?, checkpoint_steps = ?, updated_at = ? WHERE id = ?`),
    };
  }

  /** Runs `fn` in a transaction that takes the write lock at BEGIN (IMMEDIATE): see the constructor. */
  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  private migrate(): void {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(
        `store ${this.dataDir} has schema version ${version}, newer than this rewardlab (${MIGRATIONS.length}); upgrade rewardlab`,
      );
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.tx(() => {
        // another process opening the folder at once may have taken this step while this one waited for the lock
        if ((this.db.pragma("user_version", { simple: true }) as number) > v) return;
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      });
    }
  }

  // ------------------------------------------------------------ writes

  createRun(id: string, spec: RunSpec, status: RunStatus = "queued"): void {
    const now = Date.now();
    this.stmts.insertRun.run(id, JSON.stringify(spec), status, now, now, spec.variant);
  }

  /** Consumes one run event; writes are batched except status changes, which flush at once. */
  record(e: RunEvent): void {
    if (this.closed) return;
    const now = Date.now();
    const s = this.stmts;
    switch (e.type) {
      case "episode": {
        const ep = e.episode;
        this.enqueue(e.runId, () => {
          this.insertEpisode(e.runId, ep);
          s.runProgress.run(ep.envSteps, ep.index + 1, now, e.runId);
        });
        break;
      }
      case "update":
        this.enqueue(e.runId, () => {
          s.update.run(e.runId, e.update, e.envSteps, JSON.stringify(e.metrics));
          s.runUpdate.run(e.update, e.envSteps, e.stepsPerSecond, now, e.runId);
          if (e.ledger || e.visits) this.addLedger(e.runId, e.ledger?.entries ?? {}, e.visits ?? {});
        });
        break;
      case "trajectory": {
        const t = e.trajectory;
        const ret = t.rewards.reduce((a, b) => a + b, 0);
        const perf = t.performance.reduce((a, b) => a + b, 0);
        this.enqueue(e.runId, () => {
          s.trajectory.run(e.runId, t.episode, t.envSteps, t.variant, t.actions.length, ret, perf, JSON.stringify(t));
          s.trimTrajectories.run(e.runId, e.runId);
        });
        break;
      }
      case "evaluation":
        this.enqueue(e.runId, () => s.evaluation.run(JSON.stringify(e.evaluation), now, e.runId));
        break;
      case "intervention":
        this.enqueue(e.runId, () => {
          s.intervention.run(e.runId, e.envSteps, e.variant, e.learning ? 1 : 0, e.reward, now);
          s.runVariant.run(e.variant, e.learning ? 1 : 0, now, e.runId);
        });
        break;
      case "checkpoint":
        this.enqueue(e.runId, () => s.checkpoint.run(e.dir, e.envSteps, now, e.runId));
        break;
      case "status":
        this.unsaved.set(e.runId, { status: e.status, reason: e.reason ?? null, updatedAt: now, envSteps: e.envSteps ?? 0 });
        this.enqueue(e.runId, () => this.writeStatus(e.runId));
        this.flush();
        break;
      case "visits":
        this.enqueue(e.runId, () => this.addLedger(e.runId, {}, e.visits));
        break;
      case "started":
      case "frame":
        break;
    }
  }

  /** Writes a run's latest unsaved status (a no-op once it is saved). */
  private writeStatus(runId: string): void {
    const u = this.unsaved.get(runId);
    if (u) this.stmts.status.run(u.status, u.reason, u.updatedAt, u.envSteps, runId);
  }

  /** A stored run as reads must see it: with a status change the disk has not taken yet. */
  private withUnsaved(r: StoredRun): StoredRun {
    const u = this.unsaved.get(r.id);
    return u ? { ...r, status: u.status, reason: u.reason, updatedAt: u.updatedAt, envSteps: Math.max(r.envSteps, u.envSteps) } : r;
  }

  /** The one episode insert (live runs and sweep outcomes). */
  private insertEpisode(runId: string, ep: EpisodeStats): void {
    const t = ep.terminated ? 1 : 0;
    this.stmts.episode.run(runId, ep.index, ep.envSteps, ep.return, ep.performance, ep.length, t, JSON.stringify(ep.events), ep.variant);
  }

  private addLedger(runId: string, entries: Record<string, number[]>, visits: Record<string, number>): void {
    const keys = new Set([...Object.keys(entries), ...Object.keys(visits)]);
    for (const k of keys) {
      const row = this.stmts.ledgerGet.get(runId, Number(k)) as { reinforcement: string; visits: number } | undefined;
      const total: number[] = row ? JSON.parse(row.reinforcement) : [];
      const delta = entries[k] ?? [];
      for (let a = 0; a < delta.length; a++) total[a] = (total[a] ?? 0) + delta[a]!;
      this.stmts.ledgerPut.run(runId, Number(k), JSON.stringify(total), (row?.visits ?? 0) + (visits[k] ?? 0));
    }
  }

  private enqueue(runId: string | null, write: () => void): void {
    this.queue.push({ runId, write });
    if (!this.timer) this.timer = setTimeout(() => this.flush(), this.flushMs);
  }

  /** Drops the writes queued for a run (it is being deleted). */
  discard(runId: string): void {
    this.queue = this.queue.filter((q) => q.runId !== runId);
    this.unsaved.delete(runId);
  }

  /**
   * Writes everything queued in one transaction. If that transaction fails,
   * each write is retried in its own, so one bad write (a run deleted
   * meanwhile) costs only itself; failures go to onWriteError.
   */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.closed) return;
    // status changes a full disk refused before are tried again with this batch
    for (const id of this.unsaved.keys()) {
      if (!this.queue.some((q) => q.runId === id)) this.queue.push({ runId: id, write: () => this.writeStatus(id) });
    }
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    try {
      this.tx(() => {
        for (const q of batch) q.write();
      });
      this.unsaved.clear();
      return;
    } catch {
      // fall through: find the writes that fail
    }
    const failed = new Map<string | null, Error>();
    for (const q of batch) {
      if (failed.has(q.runId)) continue;
      try {
        this.tx(q.write);
      } catch (e) {
        failed.set(q.runId, e instanceof Error ? e : new Error(String(e)));
      }
    }
    for (const id of [...this.unsaved.keys()]) if (!failed.has(id)) this.unsaved.delete(id);
    for (const [runId, err] of failed) {
      if (!this.onWriteError) throw err;
      this.onWriteError(runId, err);
    }
  }

  /** Marks runs that were running when the process died; returns their ids. */
  markInterrupted(reason = "the server stopped while the run was in progress"): string[] {
    const rows = this.db.prepare(`SELECT id FROM runs WHERE status IN ('running', 'paused', 'queued')`).all() as { id: string }[];
    const upd = this.db.prepare(`UPDATE runs SET status = 'interrupted', reason = ?, updated_at = ? WHERE id = ?`);
    for (const r of rows) upd.run(reason, Date.now(), r.id);
    return rows.map((r) => r.id);
  }

  /**
   * Rewinds a run's history to a checkpoint taken at `envSteps`, before it is
   * resumed from there: episodes, updates and stored trajectories recorded
   * after the checkpoint belong to a stretch of training the resumed agent
   * never had, so they are deleted (with the interventions made in it), and
   * the run's counters, variant and learning flag set back. The
   * ledger's reinforcement is reset to the checkpoint's own running total
   * when given (visit counts cannot be rewound and keep the discarded
   * stretch). Returns where the resumed run continues and what was discarded.
   */
  rewindTo(
    id: string,
    envSteps: number,
    ledger: Record<string, number[]> | null,
    state?: { variant: string; learning: boolean },
  ): { episodes: number; updates: number; discardedEpisodes: number; discardedUpdates: number } {
    this.flush();
    return this.tx(() => {
      const d = this.db;
      const discardedEpisodes = d.prepare(`DELETE FROM episodes WHERE run_id = ? AND env_steps > ?`).run(id, envSteps).changes;
      const discardedUpdates = d.prepare(`DELETE FROM updates WHERE run_id = ? AND env_steps > ?`).run(id, envSteps).changes;
      d.prepare(`DELETE FROM trajectories WHERE run_id = ? AND env_steps > ?`).run(id, envSteps);
      d.prepare(`DELETE FROM interventions WHERE run_id = ? AND env_steps > ?`).run(id, envSteps);
      if (state) d.prepare(`UPDATE runs SET variant = ?, learning = ? WHERE id = ?`).run(state.variant, state.learning ? 1 : 0, id);
      const episodes = (d.prepare(`SELECT coalesce(max(idx) + 1, 0) AS n FROM episodes WHERE run_id = ?`).get(id) as { n: number }).n;
      const updates = (d.prepare(`SELECT coalesce(max(idx), 0) AS n FROM updates WHERE run_id = ?`).get(id) as { n: number }).n;
      if (ledger) {
        const visits = new Map(
          (d.prepare(`SELECT state_key, visits FROM ledger WHERE run_id = ?`).all(id) as { state_key: number; visits: number }[]).map(
            (r) => [r.state_key, r.visits],
          ),
        );
        d.prepare(`DELETE FROM ledger WHERE run_id = ?`).run(id);
        for (const [k, v] of Object.entries(ledger)) this.stmts.ledgerPut.run(id, Number(k), JSON.stringify(v), visits.get(Number(k)) ?? 0);
        for (const [k, n] of visits) if (!(String(k) in ledger)) this.stmts.ledgerPut.run(id, k, "[]", n);
      }
      d.prepare(`UPDATE runs SET env_steps = ?, episodes = ?, updates = ?, updated_at = ? WHERE id = ?`).run(
        envSteps,
        episodes,
        updates,
        Date.now(),
        id,
      );
      return { episodes, updates, discardedEpisodes, discardedUpdates };
    });
  }

  deleteRun(id: string): boolean {
    this.flush();
    return this.db.prepare(`DELETE FROM runs WHERE id = ?`).run(id).changes > 0;
  }

  // ------------------------------------------------------------ reads

  getRun(id: string): StoredRun | null {
    const r = this.db.prepare(`SELECT * FROM runs WHERE id = ?`).get(id) as Record<string, unknown> | undefined;
    return r ? this.withUnsaved(rowToRun(r)) : null;
  }

  listRuns(): StoredRun[] {
    return (this.db.prepare(`SELECT * FROM runs ORDER BY created_at DESC, id DESC`).all() as Record<string, unknown>[]).map((r) =>
      this.withUnsaved(rowToRun(r)),
    );
  }

  /**
   * At most `limit` runs, newest first, after `cursor` (the `next` of the
   * previous page), of one sweep when `sweep` is given: one indexed range
   * read, whatever the number of runs.
   */
  runPage(limit: number, cursor: string | null = null, sweep: string | null = null): RunPage {
    const after = cursor ? parseCursor(cursor) : null;
    const where = [
      ...(after ? ["(created_at, id) < (@at, @id)"] : []),
      ...(sweep ? ["id IN (SELECT key FROM sweep_jobs WHERE sweep = @sweep)"] : []),
    ];
    const rows = this.db
      .prepare(`SELECT * FROM runs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id DESC LIMIT @n`)
      .all({ n: limit + 1, ...(after ? { at: after.createdAt, id: after.id } : {}), ...(sweep ? { sweep } : {}) }) as Record<
      string,
      unknown
    >[];
    const runs = rows.slice(0, limit).map((r) => this.withUnsaved(rowToRun(r)));
    const last = runs.at(-1);
    return { runs, next: rows.length > limit && last ? `${last.createdAt}.${last.id}` : null };
  }

  countRuns(): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM runs`).get() as { n: number }).n;
  }

  /** Ids of the queued, running or paused runs of an environment. */
  activeRunIdsOfEnv(env: string): string[] {
    return (
      this.db
        .prepare(`SELECT id FROM runs WHERE status IN ('queued', 'running', 'paused') AND json_extract(spec, '$.env') = ?`)
        .all(env) as { id: string }[]
    ).map((r) => r.id);
  }

  /** Ids of the runs whose spec carries this label (the demo's), read by SQLite alone. */
  runIdsLabelled(label: string): string[] {
    return (
      this.db.prepare(`SELECT id FROM runs WHERE json_extract(spec, '$.label') = ? ORDER BY created_at`).all(label) as { id: string }[]
    ).map((r) => r.id);
  }

  episodes(runId: string, from = 0, limit = 100000): EpisodeStats[] {
    const rows = this.db
      .prepare(`SELECT * FROM episodes WHERE run_id = ? AND idx >= ? ORDER BY idx LIMIT ?`)
      .all(runId, from, limit) as Record<string, unknown>[];
    return rows.map(rowToEpisode);
  }

  /** At most about `max` episodes spread evenly over the whole run (the first, every k-th, and the last): an overview of a long run. */
  episodesOverview(runId: string, max: number): EpisodeStats[] {
    return this.overview("episodes", runId, max).map(rowToEpisode);
  }

  private overview(table: "episodes" | "updates", runId: string, max: number): Record<string, unknown>[] {
    const n = (this.db.prepare(`SELECT count(*) AS n FROM ${table} WHERE run_id = ?`).get(runId) as { n: number }).n;
    const k = Math.max(1, Math.ceil(n / Math.max(1, max)));
    return this.db
      .prepare(
        `SELECT * FROM ${table} WHERE run_id = ? AND (idx % ? = 0 OR idx IN ((SELECT min(idx) FROM ${table} WHERE run_id = ?), (SELECT max(idx) FROM ${table} WHERE run_id = ?))) ORDER BY idx`,
      )
      .all(runId, k, runId, runId) as Record<string, unknown>[];
  }

  /** Means over the last n episodes. */
  recent(runId: string, n = 100): { return: number; performance: number; length: number; events: Record<string, number> } | null {
    const rows = this.db
      .prepare(`SELECT return, performance, length, events FROM episodes WHERE run_id = ? ORDER BY idx DESC LIMIT ?`)
      .all(runId, n) as { return: number; performance: number; length: number; events: string }[];
    if (rows.length === 0) return null;
    const events: Record<string, number> = {};
    let ret = 0,
      perf = 0,
      len = 0;
    for (const r of rows) {
      ret += r.return;
      perf += r.performance;
      len += r.length;
      for (const [k, v] of Object.entries(JSON.parse(r.events) as Record<string, number>)) if (v > 0) events[k] = (events[k] ?? 0) + 1;
    }
    for (const k of Object.keys(events)) events[k]! /= rows.length;
    return { return: ret / rows.length, performance: perf / rows.length, length: len / rows.length, events };
  }

  updates(runId: string): { update: number; envSteps: number; metrics: Record<string, number> }[] {
    const rows = this.db.prepare(`SELECT * FROM updates WHERE run_id = ? ORDER BY idx`).all(runId) as Record<string, unknown>[];
    return rows.map(rowToUpdate);
  }

  /** At most about `max` updates spread evenly over the whole run (the first, every k-th, and the last). */
  updatesOverview(runId: string, max: number): { update: number; envSteps: number; metrics: Record<string, number> }[] {
    return this.overview("updates", runId, max).map(rowToUpdate);
  }

  trajectories(
    runId: string,
  ): { episode: number; envSteps: number; variant: string; length: number; return: number; performance: number }[] {
    return (
      this.db
        .prepare(`SELECT episode, env_steps, variant, length, return, performance FROM trajectories WHERE run_id = ? ORDER BY episode`)
        .all(runId) as Record<string, unknown>[]
    ).map((r) => ({
      episode: r.episode as number,
      envSteps: r.env_steps as number,
      variant: r.variant as string,
      length: r.length as number,
      return: r.return as number,
      performance: r.performance as number,
    }));
  }

  trajectory(runId: string, episode: number): TrajectoryRecord | null {
    const r = this.db.prepare(`SELECT data FROM trajectories WHERE run_id = ? AND episode = ?`).get(runId, episode) as
      | { data: string }
      | undefined;
    return r ? JSON.parse(r.data) : null;
  }

  ledger(runId: string): { entries: Record<string, number[]>; visits: Record<string, number> } {
    const rows = this.db.prepare(`SELECT state_key, reinforcement, visits FROM ledger WHERE run_id = ?`).all(runId) as {
      state_key: number;
      reinforcement: string;
      visits: number;
    }[];
    const entries: Record<string, number[]> = {};
    const visits: Record<string, number> = {};
    for (const r of rows) {
      entries[r.state_key] = JSON.parse(r.reinforcement);
      visits[r.state_key] = r.visits;
    }
    return { entries, visits };
  }

  interventions(runId: string): { envSteps: number; variant: string; learning: boolean; reward: RunSpec["reward"]; time: number }[] {
    return (this.db.prepare(`SELECT * FROM interventions WHERE run_id = ? ORDER BY rowid`).all(runId) as Record<string, unknown>[]).map(
      (r) => ({
        envSteps: r.env_steps as number,
        variant: r.variant as string,
        learning: r.learning === 1,
        reward: r.reward as RunSpec["reward"],
        time: r.time as number,
      }),
    );
  }

  // ------------------------------------------------------------ probes

  saveProbe(p: StoredProbe): void {
    const extras = Object.fromEntries(PROBE_EXTRAS.filter((k) => p[k] !== undefined).map((k) => [k, p[k]]));
    this.db
      .prepare(
        `INSERT OR REPLACE INTO probes (id, probe, env, status, reason, created_at, request, results, extras) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        p.id,
        p.probe,
        p.env,
        p.status,
        p.reason,
        p.createdAt,
        JSON.stringify(p.request),
        JSON.stringify(p.results),
        JSON.stringify(extras),
      );
  }

  deleteProbe(id: string): boolean {
    return this.db.prepare(`DELETE FROM probes WHERE id = ?`).run(id).changes > 0;
  }

  /** Marks probes left running by a process that died; returns their ids. */
  markProbesInterrupted(reason = "the server stopped while the probe was running"): string[] {
    const rows = this.db.prepare(`SELECT id FROM probes WHERE status = 'running'`).all() as { id: string }[];
    this.db.prepare(`UPDATE probes SET status = 'interrupted', reason = ? WHERE status = 'running'`).run(reason);
    return rows.map((r) => r.id);
  }

  getProbe(id: string): StoredProbe | null {
    const r = this.db.prepare(`SELECT * FROM probes WHERE id = ?`).get(id) as Record<string, unknown> | undefined;
    return r ? rowToProbe(r) : null;
  }

  /** The newest `limit` probes (each carries its result rows). */
  listProbes(limit = 100): StoredProbe[] {
    return (this.db.prepare(`SELECT * FROM probes ORDER BY created_at DESC LIMIT ?`).all(limit) as Record<string, unknown>[]).map(
      rowToProbe,
    );
  }

  // ------------------------------------------------------------ sweeps

  createSweep(id: string, name: string, spec: unknown, keys: { key: string; kind: string }[], mode: string): void {
    const now = Date.now();
    this.tx(() => {
      this.db
        .prepare(`INSERT INTO sweeps (id, name, spec, created_at, updated_at, status, total, mode) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)
                  ON CONFLICT(id) DO UPDATE SET status = 'running', updated_at = excluded.updated_at, mode = excluded.mode`)
        .run(id, name, JSON.stringify(spec), now, now, keys.length, mode);
      const ins = this.db.prepare(`INSERT OR IGNORE INTO sweep_jobs (sweep, key, kind) VALUES (?, ?, ?)`);
      for (const k of keys) ins.run(id, k.key, k.kind);
    });
  }

  finishSweep(id: string, status: "completed" | "failed" | "interrupted" | "stopped", reason: string | null = null): void {
    this.db.prepare(`UPDATE sweeps SET status = ?, reason = ?, updated_at = ? WHERE id = ?`).run(status, reason, Date.now(), id);
  }

  /** Marks sweeps left running by a process that stopped; returns their ids. */
  markSweepsInterrupted(reason = "the server stopped while the sweep was running; resume it to run the jobs not yet stored"): string[] {
    const rows = this.db.prepare(`SELECT id FROM sweeps WHERE status = 'running'`).all() as { id: string }[];
    this.db
      .prepare(`UPDATE sweeps SET status = 'interrupted', reason = ?, updated_at = ? WHERE status = 'running'`)
      .run(reason, Date.now());
    return rows.map((r) => r.id);
  }

  /**
   * Deletes a sweep a slice at a time (a sweep of 10,000 runs with their
   * episodes is seconds of SQLite work): its runs and probe-job results that
   * no other sweep lists, `batch` keys per transaction with the event loop
   * free between them, then its job list and itself. Resolves with the keys
   * of the runs deleted (their folders are the caller's to remove).
   */
  async deleteSweep(id: string, batch = 100): Promise<string[]> {
    this.flush();
    const d = this.db;
    const own = (
      d
        .prepare(
          `SELECT key FROM sweep_jobs j WHERE j.sweep = ? AND NOT EXISTS (SELECT 1 FROM sweep_jobs o WHERE o.key = j.key AND o.sweep <> ?)`,
        )
        .all(id, id) as { key: string }[]
    ).map((r) => r.key);
    const deleteRun = d.prepare(`DELETE FROM runs WHERE id = ?`);
    const deleteProbeJob = d.prepare(`DELETE FROM probe_jobs WHERE key = ?`);
    const runs: string[] = [];
    for (let i = 0; i < own.length; i += batch) {
      this.tx(() => {
        for (const key of own.slice(i, i + batch)) {
          if (deleteRun.run(key).changes > 0) runs.push(key);
          deleteProbeJob.run(key);
        }
      });
      await new Promise((r) => setImmediate(r));
    }
    this.tx(() => {
      d.prepare(`DELETE FROM sweep_jobs WHERE sweep = ?`).run(id);
      d.prepare(`DELETE FROM sweeps WHERE id = ?`).run(id);
    });
    return runs;
  }

  /** Keys whose outcome is already stored (completed or failed for its own reason). */
  doneKeys(keys: string[]): Set<string> {
    const done = new Set<string>();
    const run = this.db.prepare(`SELECT 1 FROM runs WHERE id = ? AND sweep IS NOT NULL AND status IN ('completed', 'failed')`);
    const probe = this.db.prepare(`SELECT 1 FROM probe_jobs WHERE key = ?`);
    for (const k of keys) if (run.get(k) || probe.get(k)) done.add(k);
    return done;
  }

  /**
   * Writes one job's outcome exactly once: a second write of the same key
   * (a retried or duplicated job) is ignored and returns false.
   */
  writeOutcome(sweepId: string, o: import("./jobs.ts").JobOutcome, checkpointDir: string | null): boolean {
    this.flush();
    return this.tx(() => {
      if (this.doneKeys([o.key]).size > 0) return false;
      const now = Date.now();
      this.db.prepare(`UPDATE sweeps SET updated_at = ? WHERE id = ?`).run(now, sweepId);
      if (o.kind === "probe") {
        this.db
          .prepare(
            `INSERT INTO probe_jobs (key, sweep, probe, agent, arm, seed, status, reason, result, host, written_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            o.key,
            sweepId,
            o.probe,
            o.result?.agent ?? "",
            o.result?.arm ?? "",
            o.result?.seed ?? -1,
            o.status,
            o.reason,
            o.result ? JSON.stringify(o.result) : null,
            o.host,
            now,
          );
        return true;
      }
      this.db.prepare(`DELETE FROM runs WHERE id = ?`).run(o.key);
      this.db
        .prepare(
          `INSERT INTO runs (id, spec, status, reason, created_at, updated_at, env_steps, episodes, updates, evaluation, variant, learning, checkpoint_dir, checkpoint_steps, sweep, host)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`,
        )
        .run(
          o.key,
          JSON.stringify(o.spec),
          o.status,
          o.reason,
          now,
          now,
          o.envSteps,
          o.episodes.length,
          o.updates.length,
          o.evaluation ? JSON.stringify(o.evaluation) : null,
          o.spec.variant,
          checkpointDir,
          checkpointDir ? o.envSteps : 0,
          sweepId,
          o.host,
        );
      for (const ep of o.episodes) this.insertEpisode(o.key, ep);
      for (const u of o.updates) this.stmts.update.run(o.key, u.update, u.envSteps, JSON.stringify(u.metrics));
      return true;
    });
  }

  /** The keys of a sweep's runs, in job order (the first `limit`). */
  sweepRunKeys(sweepId: string, limit = 200): string[] {
    return (
      this.db.prepare(`SELECT key FROM sweep_jobs WHERE sweep = ? AND kind = 'run' ORDER BY rowid LIMIT ?`).all(sweepId, limit) as {
        key: string;
      }[]
    ).map((r) => r.key);
  }

  probeJobResults(keys: string[]): Map<string, unknown> {
    const out = new Map<string, unknown>();
    const q = this.db.prepare(`SELECT result FROM probe_jobs WHERE key = ? AND result IS NOT NULL`);
    for (const k of keys) {
      const r = q.get(k) as { result: string } | undefined;
      if (r) out.set(k, JSON.parse(r.result));
    }
    return out;
  }

  sweepProgress(id: string): (SweepProgress & { spec: unknown }) | null {
    const sw = this.db.prepare(`SELECT * FROM sweeps WHERE id = ?`).get(id) as Record<string, unknown> | undefined;
    if (!sw) return null;
    const counts = this.db
      .prepare(
        `SELECT
           (SELECT count(*) FROM sweep_jobs j JOIN runs r ON r.id = j.key WHERE j.sweep = ? AND r.status = 'completed')
         + (SELECT count(*) FROM sweep_jobs j JOIN probe_jobs p ON p.key = j.key WHERE j.sweep = ? AND p.status = 'completed') AS completed,
           (SELECT count(*) FROM sweep_jobs j JOIN runs r ON r.id = j.key WHERE j.sweep = ? AND r.status = 'failed')
         + (SELECT count(*) FROM sweep_jobs j JOIN probe_jobs p ON p.key = j.key WHERE j.sweep = ? AND p.status = 'failed') AS failed`,
      )
      .get(id, id, id, id) as { completed: number; failed: number };
    return {
      id,
      name: sw.name as string,
      status: sw.status as string,
      reason: (sw.reason as string | null) ?? null,
      mode: sw.mode as string,
      total: sw.total as number,
      completed: counts.completed,
      failed: counts.failed,
      createdAt: sw.created_at as number,
      updatedAt: sw.updated_at as number,
      spec: JSON.parse(sw.spec as string),
    };
  }

  /** Ids of the newest `limit` sweeps. */
  listSweeps(limit = 100): string[] {
    return (this.db.prepare(`SELECT id FROM sweeps ORDER BY created_at DESC LIMIT ?`).all(limit) as { id: string }[]).map((r) => r.id);
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }
}

/** A page cursor, `createdAt.id`, as runPage made it; anything else is a ValidationError. */
function parseCursor(cursor: string): { createdAt: number; id: string } {
  const m = /^(\d{1,15})\.([A-Za-z0-9-]{1,64})$/.exec(cursor);
  if (!m)
    throw new ValidationError(`invalid cursor "${cursor.slice(0, 80)}": pass the \`next\` of the previous page`, [
      { path: "/cursor", message: "not a cursor" },
    ]);
  return { createdAt: Number(m[1]), id: m[2]! };
}

function rowToEpisode(r: Record<string, unknown>): EpisodeStats {
  return {
    index: r.idx as number,
    envSteps: r.env_steps as number,
    return: r.return as number,
    performance: r.performance as number,
    length: r.length as number,
    terminated: r.terminated === 1,
    events: JSON.parse(r.events as string),
    variant: r.variant as string,
  };
}

function rowToUpdate(r: Record<string, unknown>): { update: number; envSteps: number; metrics: Record<string, number> } {
  return { update: r.idx as number, envSteps: r.env_steps as number, metrics: JSON.parse(r.metrics as string) };
}

function rowToRun(r: Record<string, unknown>): StoredRun {
  return {
    id: r.id as string,
    spec: JSON.parse(r.spec as string),
    status: r.status as RunStatus,
    reason: (r.reason as string | null) ?? null,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    envSteps: r.env_steps as number,
    episodes: r.episodes as number,
    updates: r.updates as number,
    evaluation: r.evaluation ? JSON.parse(r.evaluation as string) : null,
    variant: r.variant as string,
    learning: r.learning === 1,
    stepsPerSecond: (r.steps_per_second as number | null) ?? null,
    checkpointDir: (r.checkpoint_dir as string | null) ?? null,
    checkpointSteps: r.checkpoint_steps as number,
  };
}

function rowToProbe(r: Record<string, unknown>): StoredProbe {
  return {
    id: r.id as string,
    probe: r.probe as string,
    env: r.env as string,
    status: r.status as StoredProbe["status"],
    reason: (r.reason as string | null) ?? null,
    createdAt: r.created_at as number,
    request: JSON.parse(r.request as string),
    results: JSON.parse(r.results as string),
    ...(typeof r.extras === "string" ? (JSON.parse(r.extras) as Partial<StoredProbe>) : {}),
  };
}
