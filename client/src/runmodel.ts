/**
 * Everything the client keeps about one run, fed by the socket (snapshot,
 * then live events) with REST as a fallback when the socket is down. Chart
 * data are bounded SeriesTables; views read them when they redraw.
 */
import type {
  EpisodeStats,
  EvaluationStats,
  InterventionRecord,
  LedgerDelta,
  RunSummary,
  TrajectoryRecord,
  UpdatePoint,
} from "../../server/protocol.ts";
import { api, isActive } from "./api.ts";
import type { Marker } from "./charts.ts";
import { RollingEventRates, SeriesTable } from "./series.ts";
import { isConnected, watchRun, type RunHandlers } from "./socket.ts";

export const EVENT_WINDOW = 100;
const POINT_CAP = 2000;

export interface FrameMessage {
  episode: number;
  t: number;
  frame: import("../../server/protocol.ts").Frame;
  reward: number;
  performance: number;
  events: string[];
}

export class RunModel {
  readonly runId: string;
  run: RunSummary | null = null;
  /** Columns: return, performance, length. */
  readonly episodes = new SeriesTable(POINT_CAP);
  /** Columns: one per event, the fraction of the last EVENT_WINDOW episodes containing it. */
  readonly eventRates = new SeriesTable(POINT_CAP);
  /** Columns: every update metric ("losses/policy_loss", ...). */
  readonly updates = new SeriesTable(POINT_CAP);
  latestMetrics: Record<string, number> = {};
  interventions: InterventionRecord[] = [];
  evaluation: EvaluationStats | null = null;
  /** Set when the run does not exist (404). */
  missing = false;

  private rates = new RollingEventRates(EVENT_WINDOW);
  /** The last EVENT_WINDOW episodes, for "recent" means that move with the stream. */
  private recentEpisodes: EpisodeStats[] = [];
  private knownEvents: string[] = [];
  private lastEpisode = -1;
  private lastUpdate = -1;
  private listeners = new Set<() => void>();
  private unwatch: (() => void) | null = null;
  private pollTimer = 0;
  private gotSnapshot = false;
  /** Live messages since the last snapshot (bounded), replayed after a backfill. */
  private sinceSnapshot = { episodes: [] as EpisodeStats[], updates: [] as UpdatePoint[], interventions: [] as InterventionRecord[] };

  onFrame: ((f: FrameMessage) => void) | null = null;
  onLedger: ((d: LedgerDelta) => void) | null = null;
  /** Root visit counts of an agent that searches (state key -> per action), one update's worth. */
  onSearch: ((visits: Record<string, number[]>) => void) | null = null;
  onTrajectory: ((t: TrajectoryRecord) => void) | null = null;
  onIntervention: ((i: InterventionRecord) => void) | null = null;

  constructor(runId: string) {
    this.runId = runId;
  }

  /** Events to chart even before they first happen (a rate of 0 is informative). */
  setKnownEvents(events: readonly string[]): void {
    this.knownEvents = [...new Set([...this.knownEvents, ...events])];
    this.rates.addKnown(events);
    this.changed();
  }

  /** Called (synchronously, cheaply) whenever data change; views redraw on their own schedule. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  start(): void {
    const handlers: RunHandlers = {
      snapshot: (e) => {
        this.gotSnapshot = true;
        this.sinceSnapshot = { episodes: [], updates: [], interventions: [] };
        this.run = e.run;
        this.load(e.episodes, e.updates, e.interventions);
        this.evaluation = e.run.evaluation;
        // the snapshot may hold only the latest episodes: fetch the earlier ones
        const first = e.episodes[0];
        if (first && first.index > 0) void this.backfill(first.index, e.episodes, e.updates, e.interventions);
      },
      episode: (e) => {
        for (const ep of e.episodes) this.addEpisode(ep);
        this.remember(this.sinceSnapshot.episodes, e.episodes);
        if (this.run && e.episodes.length) {
          const last = e.episodes[e.episodes.length - 1]!;
          this.run.episodes = Math.max(this.run.episodes, last.index + 1);
          this.run.envSteps = Math.max(this.run.envSteps, last.envSteps);
        }
        this.changed();
      },
      update: (e) => {
        const point = { update: e.update, envSteps: e.envSteps, metrics: e.metrics };
        this.addUpdate(point);
        this.remember(this.sinceSnapshot.updates, [point]);
        if (this.run) {
          this.run.envSteps = Math.max(this.run.envSteps, e.envSteps);
          this.run.updates = Math.max(this.run.updates, e.update);
          this.run.stepsPerSecond = e.stepsPerSecond;
        }
        if (e.ledger) this.onLedger?.(e.ledger);
        if (e.search) this.onSearch?.(e.search);
        this.changed();
      },
      status: (e) => {
        if (this.run) {
          this.run.status = e.status;
          this.run.reason = e.reason ?? this.run.reason;
          if (e.envSteps !== undefined) this.run.envSteps = e.envSteps;
        }
        this.changed();
        if (!isActive(e.status)) void this.refreshSummary();
      },
      evaluation: (e) => {
        this.evaluation = e.evaluation;
        this.changed();
      },
      intervention: (e) => {
        const { runId: _runId, ...rec } = e;
        const seen = this.interventions.some(
          (i) => i.envSteps === rec.envSteps && i.variant === rec.variant && i.learning === rec.learning && i.reward === rec.reward,
        );
        if (seen) return;
        this.interventions.push(rec);
        this.remember(this.sinceSnapshot.interventions, [rec]);
        if (this.run) {
          this.run.variant = rec.variant;
          this.run.learning = rec.learning;
          this.run.reward = rec.reward;
        }
        this.onIntervention?.(rec);
        this.changed();
      },
      frame: (e) => this.onFrame?.(e),
      trajectory: (e) => this.onTrajectory?.(e.trajectory),
    };
    this.unwatch = watchRun(this.runId, handlers);
    void this.refreshSummary();
    // without a socket (or before the snapshot arrives) read the history over REST
    window.setTimeout(() => {
      if (!this.gotSnapshot && this.unwatch) void this.loadOverRest();
    }, 2500);
    this.pollTimer = window.setInterval(() => {
      if (!isConnected() || (this.run && isActive(this.run.status))) void this.refreshSummary();
    }, 4000);
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = null;
    window.clearInterval(this.pollTimer);
    this.listeners.clear();
  }

  async refreshSummary(): Promise<void> {
    try {
      const run = await api.run(this.runId);
      // keep live counters if the socket is ahead of the REST summary
      if (this.run) {
        run.envSteps = Math.max(run.envSteps, isActive(run.status) ? this.run.envSteps : 0);
      }
      this.run = run;
      this.evaluation = run.evaluation ?? this.evaluation;
      this.missing = false;
      this.changed();
    } catch (e) {
      if ((e as { status?: number }).status === 404) {
        this.missing = true;
        this.changed();
      }
    }
  }

  private async loadOverRest(): Promise<void> {
    try {
      const [episodes, updates, interventions] = await Promise.all([
        api.episodes(this.runId, 0, 100000),
        api.updates(this.runId),
        api.interventions(this.runId),
      ]);
      if (this.gotSnapshot) return;
      this.load(episodes, updates, interventions);
    } catch {
      // the socket snapshot or a later poll will fill in
    }
  }

  private async backfill(
    upTo: number,
    episodes: EpisodeStats[],
    updates: UpdatePoint[],
    interventions: InterventionRecord[],
  ): Promise<void> {
    try {
      const earlier: EpisodeStats[] = [];
      for (let from = 0; from < upTo; ) {
        const page = await api.episodes(this.runId, from, Math.min(10000, upTo - from));
        if (page.length === 0) break;
        earlier.push(...page.filter((e) => e.index < upTo));
        from = page[page.length - 1]!.index + 1;
      }
      // episodes and updates that arrived live meanwhile are re-added after the history
      const live = this.sinceSnapshot;
      this.load([...earlier, ...episodes, ...live.episodes], [...updates, ...live.updates], [...interventions, ...live.interventions]);
    } catch {
      // keep what the snapshot gave
    }
  }

  private remember<T>(buf: T[], items: T[]): void {
    if (buf.length < 50000) buf.push(...items);
  }

  /** Replaces all history (a snapshot after (re)subscribing). */
  private load(episodes: EpisodeStats[], updates: UpdatePoint[], interventions: InterventionRecord[]): void {
    this.episodes.clear();
    this.eventRates.clear();
    this.updates.clear();
    this.rates = new RollingEventRates(EVENT_WINDOW, this.knownEvents);
    this.lastEpisode = -1;
    this.lastUpdate = -1;
    this.latestMetrics = {};
    this.recentEpisodes = [];
    for (const e of episodes) this.addEpisode(e);
    for (const u of updates) this.addUpdate(u);
    this.interventions = [...interventions];
    this.changed();
  }

  private addEpisode(e: EpisodeStats): void {
    if (e.index <= this.lastEpisode) return;
    this.lastEpisode = e.index;
    this.recentEpisodes.push(e);
    if (this.recentEpisodes.length > EVENT_WINDOW) this.recentEpisodes.shift();
    this.episodes.push(e.envSteps, { return: e.return, performance: e.performance, length: e.length });
    this.eventRates.push(e.envSteps, this.rates.push(e.events ?? {}));
  }

  private addUpdate(u: UpdatePoint): void {
    if (u.update <= this.lastUpdate) return;
    this.lastUpdate = u.update;
    this.updates.push(u.envSteps, u.metrics);
    Object.assign(this.latestMetrics, u.metrics);
  }

  /** Means over the last (up to) 100 episodes received, like RunSummary.recent: events as the share of episodes with the event. */
  recentStats(): RunSummary["recent"] {
    const w = this.recentEpisodes;
    if (w.length === 0) return null;
    const events: Record<string, number> = {};
    for (const e of w) for (const [k, v] of Object.entries(e.events ?? {})) if (v > 0) events[k] = (events[k] ?? 0) + 1 / w.length;
    const mean = (f: (e: EpisodeStats) => number) => w.reduce((a, e) => a + f(e), 0) / w.length;
    return { return: mean((e) => e.return), performance: mean((e) => e.performance), length: mean((e) => e.length), events };
  }

  get events(): string[] {
    return this.rates.events;
  }

  /** The settings in force before the first intervention. */
  initialSettings(): { variant: string; learning: boolean; reward: string } {
    return { variant: this.run?.spec.variant ?? "", learning: true, reward: this.run?.spec.reward ?? "keep" };
  }

  /** Current reward wrapper (RunSummary.reward; from the last intervention on a server without it). */
  currentReward(): string {
    if (this.run?.reward) return this.run.reward;
    const last = this.interventions[this.interventions.length - 1];
    return last?.reward ?? this.run?.spec.reward ?? "keep";
  }

  /** Chart markers: one per intervention, labelled with what changed. */
  markers(): Marker[] {
    let prev = this.initialSettings();
    const out: Marker[] = [];
    for (const iv of this.interventions) {
      const parts: string[] = [];
      if (iv.variant !== prev.variant) parts.push(`→ ${iv.variant}`);
      if (iv.learning !== prev.learning) parts.push(iv.learning ? "learning on" : "learning off");
      if (iv.reward !== prev.reward) parts.push(`reward ${iv.reward}`);
      out.push({ x: iv.envSteps, label: parts.length ? parts.join(", ") : "intervention" });
      prev = { variant: iv.variant, learning: iv.learning, reward: iv.reward };
    }
    return out;
  }
}
