/**
 * View mappers: what the REST API and the socket stream both send for a run
 * and an environment. Their own module, so that app.ts and sockets.ts each
 * import it and neither imports the other.
 */
import { basename, sep } from "node:path";
import { homedir, tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { BUILTIN_LEVELS } from "../envs/index.ts";
import { type EnvRegistration, make, registration, specOf } from "../envs/registry.ts";
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
    reason: r.reason === null ? null : relativePaths(r.reason, manager.store.dataDir),
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

/** Summaries by registration: a replaced or re-registered env is a new registration, so its stale summary is never hit. */
let envCache = new WeakMap<EnvRegistration, EnvSummary>();
const BUILTIN_DIR = fileURLToPath(BUILTIN_LEVELS);
const REPO_DIR = fileURLToPath(new URL("..", import.meta.url));

/**
 * A text for a client with every absolute path of this machine made
 * relative: the data folder's files named from it ("runs/<id>/checkpoint"),
 * rewardlab's own from its folder, temporary and home files by their tail.
 */
export function relativePaths(text: string, dataDir: string): string {
  let out = text
    .split(dataDir + sep)
    .join("")
    .split(dataDir)
    .join("<data folder>");
  out = out.split(REPO_DIR).join("");
  for (const root of [tmpdir(), homedir()]) out = out.split(root + sep).join("");
  return out;
}

/** Where an environment came from, without exposing the server's paths. */
export function describeSource(source: string): string {
  if (source === "builtin" || source.startsWith(BUILTIN_DIR) || source.endsWith("envs/tomato.ts")) return "builtin";
  if (source.includes(`${sep}levels${sep}`) && source.includes(`data`)) return `uploaded: ${basename(source)}`;
  return basename(source);
}

/** Forgets every cached summary. */
export function forgetEnvSummaries(): void {
  envCache = new WeakMap();
}

export function envSummary(id: string): EnvSummary {
  const reg = registration(id);
  const cached = envCache.get(reg);
  if (cached) return cached;
  const draw = drawVariants(id);
  let step = draw.next();
  while (!step.done) step = draw.next();
  return summarize(id, reg, step.value);
}

/**
 * envSummary with the event loop free between variants (a level has up to
 * 32; drawing each builds the env): what the API's handlers call.
 */
export async function envSummaryAsync(id: string): Promise<EnvSummary> {
  const reg = registration(id);
  const cached = envCache.get(reg);
  if (cached) return cached;
  const draw = drawVariants(id);
  let step = draw.next();
  while (!step.done) {
    await new Promise((r) => setImmediate(r));
    step = draw.next();
  }
  return envCache.get(reg) ?? summarize(id, reg, step.value);
}

interface Drawn {
  variantFrames: EnvSummary["variantFrames"];
  actions: string[];
}

/** Builds each variant of an env at seed 0 and draws it, one variant per step. */
function* drawVariants(id: string): Generator<void, Drawn, void> {
  const variantFrames: EnvSummary["variantFrames"] = {};
  let actions: string[] = [];
  for (const v of specOf(id).variants) {
    const env = make(id, { variant: v });
    env.reset({ seed: 0 });
    variantFrames[v] = env.render();
    actions = [...env.actionSpace.labels];
    env.close?.();
    yield;
  }
  return { variantFrames, actions };
}

function summarize(id: string, reg: EnvRegistration, { variantFrames, actions }: Drawn): EnvSummary {
  const spec = specOf(id);
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
  envCache.set(reg, summary);
  return summary;
}
