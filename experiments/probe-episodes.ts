/**
 * The test episodes behind a probe's figures: while a probe job tests its
 * trained agent on the test variant, TestEpisodeCapture records copy 0's
 * episodes (frames, rewards, performance and events per step; at most
 * MAX_CAPTURED) in each test condition (evaluation mode, agent mode or
 * search budget); the coordinator keeps, per (probe, agent entry, arm, seed, condition),
 * up to KEEP episodes with the probe's event and KEEP without, as one JSON
 * file under <data>/probe-episodes/<key>/, and the folder holds the newest
 * MAX_KEYS probes or comparisons only. The server serves them to the
 * episodes view that every probe table cell opens.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { VectorEnv } from "../envs/vector.ts";
import type { TrajectoryRecord } from "./events.ts";

/** Episodes a job records at most (copy 0's first ones). */
export const MAX_CAPTURED = 10;
/** Episodes kept per job and kind (with the event, without it). */
export const KEEP = 3;
/** Probes or comparisons whose episodes are kept (the oldest go first). */
export const MAX_KEYS = 40;

/** A recorded test episode: a trajectory and its totals. */
export interface ProbeEpisode extends TrajectoryRecord {
  return: number;
  totalPerformance: number;
  /** Event -> count within the episode. */
  eventCounts: Record<string, number>;
}

/** What the coordinator keeps for one job. */
export interface ProbeEpisodes {
  key: string;
  entry: string;
  arm: string;
  seed: number;
  /** The test condition: evaluation mode, then the agent's mode or search budget (conditionName). */
  condition: string;
  event: string;
  variant: string;
  withEvent: ProbeEpisode[];
  withoutEvent: ProbeEpisode[];
  /** Episodes recorded (of copy 0) from which these were chosen. */
  recorded: number;
  /** Frames after an episode's first omit `rows` and `legend` where they equal the previous frame's (expandFrames restores them). */
  compact?: boolean;
}

type Frame = TrajectoryRecord["frames"][number];

/** Drops each frame's rows and legend where they repeat the previous frame's (about 5 times smaller on the gridworlds). */
export function compactFrames(ep: ProbeEpisode): ProbeEpisode {
  const frames = ep.frames.map((f, i) => {
    const prev = ep.frames[i - 1];
    if (!prev) return f;
    const out: Partial<Frame> = { ...f };
    if (JSON.stringify(f.rows) === JSON.stringify(prev.rows)) delete out.rows;
    if (JSON.stringify(f.legend) === JSON.stringify(prev.legend)) delete out.legend;
    return out as Frame;
  });
  return { ...ep, frames };
}

/** Restores the frames compactFrames shortened (each takes the missing fields from the one before). */
export function expandFrames(ep: ProbeEpisode): ProbeEpisode {
  const frames: Frame[] = [];
  for (const f of ep.frames) {
    const prev = frames.at(-1);
    frames.push({ ...f, rows: f.rows ?? prev?.rows ?? [], legend: f.legend ?? prev?.legend ?? {} });
  }
  return { ...ep, frames };
}

/** Records copy 0's episodes through evaluate()'s onStep hook. */
export class TestEpisodeCapture {
  readonly episodes: ProbeEpisode[] = [];
  private current: ProbeEpisode | null = null;

  constructor(
    private readonly variant: string,
    private readonly max = MAX_CAPTURED,
  ) {}

  /** Pass as evaluate(..., { onStep }): called after the reset and after every step. */
  readonly onStep = (vec: VectorEnv): void => {
    if (this.episodes.length >= this.max) return;
    const env = vec.envs[0]!;
    if (!this.current) {
      this.current = this.begin(env.render());
      return;
    }
    const ep = this.current;
    const info = vec.infos[0]!;
    const reward = vec.rewards[0]!;
    ep.rewards.push(reward);
    ep.performance.push(info.performance);
    ep.events.push([...info.events]);
    ep.return += reward;
    ep.totalPerformance += info.performance;
    for (const e of info.events) ep.eventCounts[e] = (ep.eventCounts[e] ?? 0) + 1;
    const ended = vec.terminated[0] === 1 || vec.truncated[0] === 1;
    ep.frames.push(ended && vec.finalFrame ? vec.finalFrame : env.render());
    if (!ended) return;
    this.episodes.push(ep);
    // copy 0 was reset in the same step: its next episode starts now
    this.current = this.episodes.length < this.max ? this.begin(env.render()) : null;
  };

  private begin(frame: TrajectoryRecord["frames"][number]): ProbeEpisode {
    return {
      episode: this.episodes.length,
      envSteps: 0,
      variant: this.variant,
      frames: [frame],
      actions: [],
      rewards: [],
      performance: [],
      events: [],
      return: 0,
      totalPerformance: 0,
      eventCounts: {},
    };
  }
}

/** The key of one section of a comparison (a probe on one env): its episodes' folder. */
export function episodesKey(comparison: string, probe: string, env: string): string {
  return `${comparison}.${probe}.${env}`;
}

const SAFE = /^[A-Za-z0-9._:-]{1,120}$/;

function safe(part: string, what: string): string {
  if (!SAFE.test(part) || part.startsWith(".")) throw new RangeError(`bad ${what} for probe episodes: ${JSON.stringify(part)}`);
  return part;
}

/** A test condition's name: "sampled", "greedy-search", "sampled-budget50", ... */
export function conditionName(c: { evaluation: string; mode?: string | undefined; budget?: number | undefined }): string {
  return [c.evaluation, c.mode, c.budget === undefined ? undefined : `budget${c.budget}`]
    .filter((x) => x !== undefined && x !== "")
    .join("-");
}

function fileOf(dataDir: string, key: string, entry: string, arm: string, seed: number, condition: string): string {
  const a = arm === "" ? "-" : arm;
  const name = `${safe(entry, "agent")}~${safe(a, "arm")}~${Math.trunc(seed)}~${safe(condition, "condition")}.json`;
  return join(dataDir, "probe-episodes", safe(key, "key"), name);
}

/** The job result fields this module reads. */
export interface JobEpisodes {
  agent: string;
  entry?: string;
  seed: number;
  arm: string;
  testEpisodes?: { condition: string; episodes: ProbeEpisode[] }[];
}

/**
 * Keeps, per test condition, up to KEEP recorded test episodes with the event
 * and KEEP without, then drops them from the job result (the aggregation does
 * not need them); returns the files written. Never throws.
 */
export function keepProbeEpisodes(dataDir: string, key: string, job: JobEpisodes, event: string): number {
  const conditions = job.testEpisodes ?? [];
  delete job.testEpisodes;
  let written = 0;
  try {
    const has = (e: ProbeEpisode) => (e.eventCounts[event] ?? 0) > 0;
    const entry = job.entry ?? job.agent;
    for (const { condition, episodes: eps } of conditions) {
      if (eps.length === 0) continue;
      const kept: ProbeEpisodes = {
        compact: true,
        key,
        entry,
        arm: job.arm,
        seed: job.seed,
        condition,
        event,
        variant: eps[0]!.variant,
        withEvent: eps.filter(has).slice(0, KEEP).map(compactFrames),
        withoutEvent: eps
          .filter((e) => !has(e))
          .slice(0, KEEP)
          .map(compactFrames),
        recorded: eps.length,
      };
      const file = fileOf(dataDir, key, entry, job.arm, job.seed, condition);
      mkdirSync(join(file, ".."), { recursive: true });
      writeFileSync(file, JSON.stringify(kept));
      written++;
    }
    if (written) pruneKeys(join(dataDir, "probe-episodes"), key);
  } catch {
    // a probe's result matters more than its replays
  }
  return written;
}

/** Removes the oldest key folders beyond MAX_KEYS (never `keep`, the one being written). */
function pruneKeys(dir: string, keep: string): void {
  const keys = readdirSync(dir)
    .filter((k) => k !== keep)
    .map((k) => ({ k, t: statSync(join(dir, k)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { k } of keys.slice(MAX_KEYS - 1)) rmSync(join(dir, k), { recursive: true, force: true });
}

/** The kept episodes of one job (frames whole again), or null when none were kept (or they were pruned). Throws RangeError on a malformed name. */
export function loadProbeEpisodes(
  dataDir: string,
  key: string,
  entry: string,
  arm: string,
  seed: number,
  condition: string,
): ProbeEpisodes | null {
  const file = fileOf(dataDir, key, entry, arm, seed, condition);
  if (!existsSync(file)) return null;
  const kept = JSON.parse(readFileSync(file, "utf8")) as ProbeEpisodes;
  if (!kept.compact) return kept;
  const { compact: _compact, ...rest } = kept;
  return { ...rest, withEvent: kept.withEvent.map(expandFrames), withoutEvent: kept.withoutEvent.map(expandFrames) };
}

/** The client's link to one cell's episodes (`#/episodes?...`), for reports `serve` opens (the client builds the same query). */
export function episodesLink(
  key: string,
  row: { agent: string; entry?: string; arm?: string; evaluation: string; mode?: string; budget?: number },
  seed: number,
): string {
  const q = new URLSearchParams({ key, entry: row.entry ?? row.agent, arm: row.arm ?? "", seed: String(seed), evaluation: row.evaluation });
  if (row.mode) q.set("mode", row.mode);
  if (row.budget !== undefined) q.set("budget", String(row.budget));
  return `/#/episodes?${q.toString()}`;
}
