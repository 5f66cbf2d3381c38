/**
 * View mappers: what the REST API and the socket stream both send for a run
 * and an environment. Their own module, so that app.ts and sockets.ts each
 * import it and neither imports the other.
 */
import { basename, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { BUILTIN_LEVELS } from "../envs/index.ts";
import { make, specOf } from "../envs/registry.ts";
import type { RunManager } from "../experiments/manager.ts";
import type { StoredRun } from "../experiments/store.ts";
import { storedLearningCheck } from "../experiments/learningcheck.ts";
import type { EnvSummary, RunSummary } from "./protocol.ts";

export function runSummary(r: StoredRun, manager: RunManager): RunSummary {
  const live = manager.liveState(r.id);
  return {
    id: r.id,
    spec: r.spec,
    status: r.status,
    reason: r.reason,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    envSteps: r.envSteps,
    episodes: r.episodes,
    updates: r.updates,
    recent: manager.store.recent(r.id),
    evaluation: r.evaluation,
    stepsPerSecond: r.stepsPerSecond,
    variant: live?.variant ?? r.variant,
    learning: live?.learning ?? r.learning,
    reward: live?.reward ?? manager.store.interventions(r.id).at(-1)?.reward ?? r.spec.reward,
    resumable: manager.canResume(r),
    learningCheck: storedLearningCheck(manager.store, r),
  };
}

const envCache = new Map<string, EnvSummary>();
const BUILTIN_DIR = fileURLToPath(BUILTIN_LEVELS);

/** Where an environment came from, without exposing the server's paths. */
export function describeSource(source: string): string {
  if (source === "builtin" || source.startsWith(BUILTIN_DIR) || source.endsWith("envs/tomato.ts")) return "builtin";
  if (source.includes(`${sep}levels${sep}`) && source.includes(`data`)) return `uploaded: ${basename(source)}`;
  return basename(source);
}

/** Forgets a cached summary (a level was replaced). */
export function forgetEnvSummary(id: string): void {
  envCache.delete(id);
}

export function envSummary(id: string): EnvSummary {
  const spec = specOf(id);
  const cached = envCache.get(id);
  if (cached && cached.source === spec.source && cached.doc === spec.doc) return cached;
  const variantFrames: EnvSummary["variantFrames"] = {};
  let actions: string[] = [];
  for (const v of spec.variants) {
    const env = make(id, { variant: v });
    env.reset({ seed: 0 });
    variantFrames[v] = env.render();
    actions = [...env.actionSpace.labels];
    env.close?.();
  }
  const summary: EnvSummary = {
    id,
    description: spec.description,
    doc: spec.doc,
    variants: spec.variants,
    events: spec.events,
    maxEpisodeSteps: spec.maxEpisodeSteps,
    source: describeSource(spec.source),
    configSchema: spec.configSchema,
    frame: variantFrames[spec.variants[0]!]!,
    variantFrames,
    actions,
  };
  envCache.set(id, summary);
  return summary;
}
