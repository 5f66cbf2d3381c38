/**
 * The live demo: PPO and the simulator planner on BoatRace-v0, started on a
 * server's first start and opened on the home page as a comparison. It keeps
 * training while someone watches (a client subscribed to either run) and is
 * stopped, with a checkpoint, once nobody has watched for `idleMs`; the next
 * visitor resumes it from there. A demo run a user stopped stays stopped.
 * The demo never keeps a user's run waiting: its runs yield (the manager
 * pauses one to give its slot to a user's run and resumes it when a slot is
 * free) and count against no user limit.
 */
import type { RunManager } from "../experiments/manager.ts";
import { moduleLogger } from "../experiments/log.ts";

const log = moduleLogger("server/demo");

export const DEMO_LABEL = "demo";

/** Whether a run is one of the demo's: those yield their slot to any user's run. */
export const isDemoRun = (spec: { label?: string }): boolean => spec.label === DEMO_LABEL;

export const DEMO_RUNS = [
  // a budget no visit exhausts (hours of training on this kind of machine): the demo is paced by its watchers
  { env: "BoatRace-v0", agent: "ppo", seed: 0, steps: 20_000_000, label: DEMO_LABEL },
  { env: "BoatRace-v0", agent: "planner", seed: 0, steps: 20_000_000, label: DEMO_LABEL, config: { model: "simulator" } },
];

export interface DemoOptions {
  /** Stop the demo once nobody has watched it for this long (default 2 minutes). */
  idleMs?: number;
  /** How often watchers are counted (default 2 s). */
  pollMs?: number;
}

export class DemoKeeper {
  private readonly idleMs: number;
  private readonly timer: NodeJS.Timeout;
  private lastWatched = Date.now();
  /** Runs this keeper stopped (to resume them); any other stop was a user's. */
  private readonly stoppedByKeeper = new Set<string>();
  private readonly stoppedByUser = new Set<string>();

  constructor(
    private readonly manager: RunManager,
    /** Clients watching a run right now. */
    private readonly watchers: (runId: string) => number,
    opts: DemoOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 120_000;
    manager.on((e) => {
      if (e.type !== "status" || e.status !== "stopped" || !this.ids().includes(e.runId)) return;
      if (!this.stoppedByKeeper.has(e.runId)) this.stoppedByUser.add(e.runId);
    });
    this.timer = setInterval(() => this.tick(), opts.pollMs ?? 2000);
    this.timer.unref();
  }

  /** Starts the demo runs (the server's first start). */
  create(): void {
    for (const d of DEMO_RUNS) this.manager.create(d);
    log.info("started the demo comparison (PPO and the simulator planner on BoatRace-v0)");
  }

  /** The demo runs in the store. */
  ids(): string[] {
    return this.manager.store.runIdsLabelled(DEMO_LABEL);
  }

  /** Counts watchers; resumes the demo for a watcher, stops it when nobody has watched for idleMs. */
  tick(now = Date.now()): void {
    const ids = this.ids();
    if (ids.length === 0) return;
    const watched = ids.some((id) => this.watchers(id) > 0);
    if (watched) this.lastWatched = now;
    for (const id of ids) {
      const run = this.manager.store.getRun(id);
      if (!run) continue;
      const live = this.manager.liveState(id) !== null;
      try {
        if (watched && !live && !this.stoppedByUser.has(id) && (run.status === "stopped" || run.status === "interrupted")) {
          if (!this.manager.canResume(run)) continue;
          this.stoppedByKeeper.delete(id);
          this.manager.resume(id);
          log.info({ runId: id }, "demo resumed for a watcher");
        } else if (
          !watched &&
          live &&
          now - this.lastWatched >= this.idleMs &&
          (run.status === "running" || run.status === "queued" || this.manager.isYielded(id))
        ) {
          this.stoppedByKeeper.add(id);
          this.manager.stop(id);
          log.info({ runId: id, idleMs: this.idleMs }, "demo stopped: nobody watching");
        }
      } catch (err) {
        log.warn({ runId: id, err: (err as Error).message }, "demo keeper could not change the run");
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
