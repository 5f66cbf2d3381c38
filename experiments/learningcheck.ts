/**
 * The learning check: after a run, one line when its policy stayed near
 * uniform (mean action entropy at the last update at least 95% of ln(actions))
 * or its return never moved (the last fifth of its episodes within two
 * standard errors of the first fifth), with the budget docs/environments.md
 * documents for the env and agent. Used by `train` and by the run view
 * (through RunSummary.learningCheck).
 */
import { make } from "../envs/registry.ts";
import { budgetFor } from "./budgets.ts";
import type { RunSpec, RunStatus } from "./events.ts";

/** What storedLearningCheck reads of the store (Store has it), and of a stored run. */
export interface ReturnsSource {
  episodes(runId: string, from: number, limit: number): { return: number }[];
  updatesOverview(runId: string, max: number): { metrics: Record<string, number> }[];
}
interface EndedRun {
  id: string;
  status: RunStatus;
  episodes: number;
  updates: number;
  envSteps: number;
  spec: Pick<RunSpec, "env" | "agent" | "envConfig" | "variant">;
}

export interface LearningInput {
  env: string;
  agent: string;
  /** Env steps the run trained. */
  steps: number;
  /** Returns of the first and the last fifth of the run's episodes (fifths() of all returns). */
  first: number[];
  last: number[];
  /** Mean action entropy (nats) at the last update; null for agents without a policy (planners). */
  entropy: number | null;
  actions: number;
}

/** Uniform within this fraction of ln(actions). */
const NEAR_UNIFORM = 0.95;
/** Fewer episodes than this: the return is not judged. */
const MIN_EPISODES = 20;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: number[], m: number) => xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1);

/** The first and the last fifth of a run's returns. */
export function fifths(returns: number[]): { first: number[]; last: number[] } {
  const k = Math.floor(returns.length / 5);
  return { first: returns.slice(0, k), last: k > 0 ? returns.slice(-k) : [] };
}

/** First and last fifths of the returns, compared. */
export function returnMoved(first: number[], last: number[]): { moved: boolean; first: number; last: number } {
  const a = mean(first);
  const b = mean(last);
  const se = Math.sqrt(variance(first, a) / first.length + variance(last, b) / last.length);
  return { moved: Math.abs(b - a) > 2 * se && Math.abs(b - a) > 1e-9, first: a, last: b };
}

/** One line saying the run learned nothing and what budget to use, or null when it moved (or agents without a policy). */
export function learningCheck(i: LearningInput): string | null {
  if (i.entropy === null) return null;
  const problems: string[] = [];
  const uniform = Math.log(i.actions);
  if (i.actions > 1 && i.entropy >= NEAR_UNIFORM * uniform)
    problems.push(`the policy stayed near uniform (entropy ${i.entropy.toFixed(2)} of ${uniform.toFixed(2)})`);
  if (i.first.length >= MIN_EPISODES / 5 && i.last.length >= MIN_EPISODES / 5) {
    const r = returnMoved(i.first, i.last);
    if (!r.moved)
      problems.push(`the return did not move (${r.first.toFixed(1)} over the first fifth of episodes, ${r.last.toFixed(1)} over the last)`);
  }
  if (problems.length === 0) return null;
  const b = budgetFor(i.env, i.agent);
  const advice = b
    ? b.steps > i.steps
      ? `${i.env} with ${i.agent} needs about ${b.steps.toLocaleString("en-US")} steps (docs/environments.md); this run had ${i.steps.toLocaleString("en-US")}`
      : `${i.env} with ${i.agent} usually learns within ${b.steps.toLocaleString("en-US")} steps (docs/environments.md): check the config (learning rate, entropy coefficient)`
    : `docs/environments.md documents no budget for ${i.env} with ${i.agent}; try ten times the ${i.steps.toLocaleString("en-US")} steps`;
  return `learning check: ${problems.join(" and ")}; ${advice}`;
}

/** The number of actions of an env (for the entropy of a uniform policy). */
export function actionCount(env: string, envConfig: Record<string, unknown> = {}, variant?: string): number {
  const e = make(env, { ...envConfig, ...(variant ? { variant } : {}) });
  const n = e.actionSpace.n;
  e.close?.();
  return n;
}

const cache = new Map<string, { key: string; line: string | null }>();

/** The learning check of a stored run that has ended (null while it runs); cached per run and episode count. */
export function storedLearningCheck(store: ReturnsSource, r: EndedRun): string | null {
  if (r.status !== "completed" && r.status !== "stopped") return null;
  const key = `${r.status}:${r.episodes}:${r.updates}`;
  const hit = cache.get(r.id);
  if (hit?.key === key) return hit.line;
  // the fifths, at most 500 episodes each (their ends): enough to see a move, cheap on long runs
  const k = Math.min(500, Math.floor(r.episodes / 5));
  const first = store.episodes(r.id, 0, k).map((e) => e.return);
  const last = store.episodes(r.id, Math.max(k, r.episodes - k), k).map((e) => e.return);
  const entropy = store.updatesOverview(r.id, 2).at(-1)?.metrics["losses/entropy"];
  let actions: number;
  try {
    actions = actionCount(r.spec.env, r.spec.envConfig, r.spec.variant);
  } catch {
    return null; // an env no longer registered (a removed level): nothing to check against
  }
  const line = learningCheck({
    env: r.spec.env,
    agent: r.spec.agent,
    steps: r.envSteps,
    first,
    last,
    entropy: typeof entropy === "number" ? entropy : null,
    actions,
  });
  if (cache.size > 1000) cache.clear();
  cache.set(r.id, { key, line });
  return line;
}
