/** A one-line progress bar on stderr: steps, steps/s, ETA and a caller's note. */
export class Progress {
  private readonly start = performance.now();
  private lastDraw = 0;
  private last = "";

  constructor(
    public total: number,
    private readonly enabled = true,
    private readonly label = "",
  ) {}

  /** `eta`: the caller's own estimate of seconds left (default: from the rate so far). */
  update(done: number, note = "", eta?: number | null): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const secs = (now - this.start) / 1000;
    const rate = done / Math.max(secs, 1e-9);
    const frac = Math.min(1, done / this.total);
    const width = 24;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
    const left = eta === undefined ? (rate > 0 ? (this.total - done) / rate : Infinity) : (eta ?? Infinity);
    this.last = `${this.label}[${bar}] ${done}/${this.total}  ${rate < 10 ? rate.toFixed(2) : rate.toFixed(0)}/s  eta ${fmt(left)}  ${note}`;
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${this.last}`);
  }

  done(): void {
    if (!this.enabled) return;
    if (process.stderr.isTTY) process.stderr.write("\n");
    else if (this.last) process.stderr.write(this.last + "\n");
  }
}

function fmt(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** A probe's progress: jobs done of the total, per agent and seed, and an estimate of the time left. */
export interface ProbeProgress {
  done: number;
  total: number;
  /** Seconds since the probe started. */
  elapsed: number;
  /** Estimated seconds left (null until a job has finished). */
  eta: number | null;
  agents: {
    agent: string;
    done: number;
    total: number;
    /** One entry per job (seed, and arm for multi-arm probes); seconds once done. */
    jobs: { seed: number; arm: string; done: boolean; seconds?: number }[];
  }[];
}

/**
 * Follows a probe's jobs as they finish. The estimate of time left sums, for
 * every job still to run, the mean duration of that agent's finished jobs
 * (agents train at very different speeds: a planner's job takes seconds, a
 * PPO job minutes), else of all finished jobs, over the worker threads.
 */
export class ProbeProgressTracker {
  private readonly started = performance.now();
  private readonly state: ProbeProgress;

  constructor(
    jobs: readonly { agent: string; entry?: string; seed: number; arm: string }[],
    private readonly workers: number,
  ) {
    // a probe's entries (an agent, or agent:tag for a second config of it) are what the user counts
    const agents = [...new Set(jobs.map((j) => j.entry ?? j.agent))];
    this.state = {
      done: 0,
      total: jobs.length,
      elapsed: 0,
      eta: null,
      agents: agents.map((agent) => {
        const mine = jobs.filter((j) => (j.entry ?? j.agent) === agent);
        return { agent, done: 0, total: mine.length, jobs: mine.map((j) => ({ seed: j.seed, arm: j.arm, done: false })) };
      }),
    };
  }

  /** Records a finished job; returns the progress after it. */
  finished(r: { agent: string; entry?: string; seed: number; arm: string; seconds: number }): ProbeProgress {
    const a = this.state.agents.find((x) => x.agent === (r.entry ?? r.agent));
    const job = a?.jobs.find((j) => j.seed === r.seed && j.arm === r.arm && !j.done);
    if (a && job) {
      job.done = true;
      job.seconds = r.seconds;
      a.done++;
      this.state.done++;
    }
    return this.view();
  }

  view(): ProbeProgress {
    const s = this.state;
    s.elapsed = (performance.now() - this.started) / 1000;
    const all = s.agents.flatMap((a) => a.jobs.filter((j) => j.done).map((j) => j.seconds ?? 0));
    if (all.length === 0) s.eta = null;
    else {
      const overall = all.reduce((x, y) => x + y, 0) / all.length;
      let work = 0;
      for (const a of s.agents) {
        const mine = a.jobs.filter((j) => j.done).map((j) => j.seconds ?? 0);
        const mean = mine.length ? mine.reduce((x, y) => x + y, 0) / mine.length : overall;
        work += mean * (a.total - a.done);
      }
      const left = s.total - s.done;
      s.eta = left === 0 ? 0 : work / Math.max(1, Math.min(this.workers, left));
    }
    return structuredClone(s);
  }

  /** One line for the CLI's progress bar: "ppo 3/5 · planner 5/5". */
  static summary(p: ProbeProgress): string {
    return p.agents.map((a) => `${a.agent} ${a.done}/${a.total}`).join(" · ");
  }
}
