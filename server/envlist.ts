/**
 * GET /api/envs as one cached body: built once per change of the registry,
 * one environment per slice of the event loop (a level's summary builds
 * every variant), and sent as the same serialized bytes until the registry
 * changes. Environments whose summary fails are skipped and remembered for
 * GET /api/levels/errors.
 */
import { registered, type EnvRegistration } from "../envs/registry.ts";
import { moduleLogger } from "../experiments/log.ts";
import type { EnvSummary } from "./protocol.ts";
import { envSummaryAsync } from "./views.ts";

const log = moduleLogger("server/envlist");

export class EnvListing {
  /** The registrations the cached body describes, in order (identity: a replaced level is a new registration). */
  private builtFrom: EnvRegistration[] = [];
  private cached: Promise<Buffer> | null = null;
  /** Env id -> why its summary fails. */
  readonly broken = new Map<string, string>();

  private stale(): boolean {
    const now = registered();
    return now.length !== this.builtFrom.length || now.some((r, i) => r !== this.builtFrom[i]);
  }

  /** The JSON body of GET /api/envs, as bytes (sent as they are to every client until the registry changes). */
  body(): Promise<Buffer> {
    if (!this.cached || this.stale()) {
      const regs = registered();
      this.builtFrom = regs;
      this.cached = this.build(regs).catch((e: unknown) => {
        this.cached = null;
        throw e;
      });
    }
    return this.cached;
  }

  /** Each env described and serialized in its own slice of the event loop, then joined once. */
  private async build(regs: EnvRegistration[]): Promise<Buffer> {
    const out: string[] = [];
    for (const r of regs) {
      try {
        out.push(JSON.stringify((await envSummaryAsync(r.id)) satisfies EnvSummary));
        this.broken.delete(r.id);
      } catch (e) {
        const reason = (e as Error).message;
        if (this.broken.get(r.id) !== reason) log.warn({ env: r.id, reason }, "environment skipped: its summary fails");
        this.broken.set(r.id, reason);
      }
      await new Promise((res) => setImmediate(res));
    }
    return Buffer.from(`[${out.join(",")}]`);
  }
}
