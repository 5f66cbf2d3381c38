/**
 * What the probe and sweep services share about their background work: the
 * jobs running now by id, each stoppable (an AbortController, and a promise
 * that settles once its threads are gone and its outcome is stored), and the
 * listeners told of every change (one that throws is logged, never stops the
 * others).
 */
import type { Logger } from "pino";
import { ConflictError, NotFoundError } from "../experiments/manager.ts";
import { PoolStopped } from "../experiments/pool.ts";

export interface ActiveJob {
  controller: AbortController;
  /** Settles once the job's threads are gone and its final state is stored. */
  done: Promise<void>;
}

/** The running jobs of one kind ("probe", "sweep"), by id. */
export class ActiveJobs<J extends ActiveJob> extends Map<string, J> {
  constructor(private readonly kind: string) {
    super();
  }

  /**
   * Stops a running job (its threads are terminated) and waits until it is
   * gone; `storedStatus` names the status of one not running (null: unknown
   * id, a 404; else a 409 naming the status).
   */
  async stop(id: string, reason: string, storedStatus: () => string | null): Promise<void> {
    const a = this.get(id);
    if (!a) {
      const status = storedStatus();
      if (status === null) throw new NotFoundError(`no ${this.kind} with id ${id}`);
      throw new ConflictError(`${this.kind} ${id} is ${status}; only a running ${this.kind} can be stopped`);
    }
    await abortAndWait(a, reason);
  }

  /** Stops the job if it runs (before deleting it), and waits until it is gone. */
  async stopIfRunning(id: string, reason: string): Promise<void> {
    const a = this.get(id);
    if (a) await abortAndWait(a, reason);
  }

  /** Stops every running job (server shutdown) and waits until all are gone. */
  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.values()].map((a) => abortAndWait(a, reason)));
  }
}

async function abortAndWait(a: ActiveJob, reason: string): Promise<void> {
  a.controller.abort(new PoolStopped(reason));
  await a.done;
}

/** Listeners of one kind of view; `emit` calls each, logging on the service's logger (not rethrowing) what one throws. */
export class Listeners<V> {
  private readonly list: ((v: V) => void)[] = [];

  constructor(
    private readonly kind: string,
    private readonly log: Logger,
  ) {}

  add(l: (v: V) => void): void {
    this.list.push(l);
  }

  emit(view: V): void {
    for (const l of this.list) {
      try {
        l(view);
      } catch (err) {
        this.log.error({ err }, `${this.kind} listener threw`);
      }
    }
  }
}
