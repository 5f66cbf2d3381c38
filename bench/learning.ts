/**
 * Does learning work? Trains PPO and REINFORCE with their default configs
 * through the one step loop (experiments/loop.ts: train, then playEpisodes
 * with learning off to evaluate). Targets:
 *   - PPO on BoatRace-v0: mean eval return >= 40 (of 50) within 300k steps, 3 seeds;
 *   - REINFORCE on BoatRace-v0: clearly above a uniform-random policy;
 *   - both on GoalShift-v0 (train): goal rate >= 90%.
 *
 *   npx tsx bench/learning.ts                      # everything (takes a while)
 *   npx tsx bench/learning.ts --agent ppo --env BoatRace-v0 --steps 300000 --seeds 0,1,2
 *   npx tsx bench/learning.ts --config '{"entCoef":0.001}' ...
 */
import { pathToFileURL } from "node:url";
import "../envs/index.ts";
import { initBackend, parseBackend } from "../agents/shared/backend.ts";
import type { Agent } from "../agents/core.ts";
import "../agents/model-free/ppo.ts";
import "../agents/model-free/reinforce.ts";
import { createAgent, resolveAgentConfig } from "../agents/registry.ts";
import { type LoopEpisode, Stepper, agentEnvInfo, playEpisodes, train } from "../experiments/loop.ts";
import { SampledPolicy, uniformAgent } from "../experiments/probes/evaluation.ts";

export interface EvalFigures {
  episodes: number;
  meanReturn: number;
  meanPerformance: number;
  /** Fraction of episodes in which each event happened at least once. */
  eventRates: Record<string, number>;
}

/**
 * Runs `episodes` episodes with learning off, sampling (explore) or greedy,
 * through the one loop's playEpisodes: copy i plays episodes i, i+N, ..., so
 * the short episodes that finish first are not over-counted.
 */
export function evaluateAgent(
  agent: Agent,
  envId: string,
  variant: string | undefined,
  episodes: number,
  seed: number,
  explore: boolean,
  numEnvs = 8,
): EvalFigures {
  const finished = playEpisodes(
    agent,
    { env: envId, config: variant ? { variant } : {}, reward: "keep", numEnvs, seed },
    { episodes, explore },
  );
  const counts: Record<string, number> = {};
  for (const e of finished) for (const [k, n] of Object.entries(e.events)) if (n > 0) counts[k] = (counts[k] ?? 0) + 1;
  const mean = (f: (e: LoopEpisode) => number) => finished.reduce((s, e) => s + f(e), 0) / episodes;
  const eventRates = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / episodes]));
  return { episodes, meanReturn: mean((e) => e.return), meanPerformance: mean((e) => e.performance), eventRates };
}

/** A uniform-random policy's figures, for comparison: the probes' chance row (uniformAgent drawn through SampledPolicy, seeded). */
export function randomFigures(envId: string, variant: string | undefined, episodes: number, seed: number): EvalFigures {
  const info = agentEnvInfo({ env: envId, config: variant ? { variant } : {}, numEnvs: 1 });
  const random = new SampledPolicy(uniformAgent(info.nActions), info.nActions, info.obsSize, seed);
  return evaluateAgent(random, envId, variant, episodes, seed, true);
}

export interface LearningRun {
  agent: string;
  envId: string;
  variant: string | undefined;
  seed: number;
  steps: number;
  seconds: number;
  sampled: EvalFigures;
  greedy: EvalFigures;
  /** Mean return of the last 100 training episodes. */
  trainReturn: number;
  /** First env step at which the mean of the last 100 training returns reached `threshold` (null: never). */
  stepsToThreshold: number | null;
  threshold: number;
  lastMetrics: Record<string, number>;
}

export function trainAndEvaluate(
  name: string,
  envId: string,
  variant: string | undefined,
  steps: number,
  seed: number,
  overrides: Record<string, unknown> = {},
  evalEpisodes = 200,
  threshold = Infinity,
): LearningRun {
  // as the run loop does: annealing schedules span the run's budget
  const config = resolveAgentConfig<{ numEnvs: number }>(name, name === "ppo" ? { totalSteps: steps, ...overrides } : overrides);
  const envConfig = variant ? { variant } : {};
  const setup = { env: envId, config: envConfig, reward: "keep" as const, numEnvs: config.numEnvs, seed };
  const agent = createAgent(name, agentEnvInfo(setup), config, seed);
  const stepper = new Stepper(agent, setup);
  const t0 = performance.now();
  const r = train(stepper, steps);
  const seconds = (performance.now() - t0) / 1000;
  stepper.close();
  const returns = r.episodes.map((e) => e.return);
  const last = returns.slice(-100);
  let stepsToThreshold: number | null = null;
  let window = 0;
  for (let k = 0; k < returns.length; k++) {
    window += returns[k]! - (k >= 100 ? returns[k - 100]! : 0);
    if (k >= 99 && window / 100 >= threshold) {
      stepsToThreshold = r.episodes[k]!.envSteps;
      break;
    }
  }
  const run: LearningRun = {
    agent: name,
    envId,
    variant,
    seed,
    steps,
    seconds,
    sampled: evaluateAgent(agent, envId, variant, evalEpisodes, 10_000 + seed, true),
    greedy: evaluateAgent(agent, envId, variant, evalEpisodes, 20_000 + seed, false),
    trainReturn: last.reduce((a, b) => a + b, 0) / Math.max(1, last.length),
    stepsToThreshold,
    threshold,
    lastMetrics: r.updates.at(-1)?.metrics ?? {},
  };
  agent.dispose();
  return run;
}

function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

export function describeRun(r: LearningRun, goalEvent = "goal"): string {
  const rate = (f: EvalFigures) => fmt(100 * (f.eventRates[goalEvent] ?? 0), 0);
  return (
    `${r.agent.padEnd(9)} ${r.envId}${r.variant ? `/${r.variant}` : ""} seed ${r.seed}: ${r.steps} steps in ${fmt(r.seconds, 0)}s; ` +
    `eval return sampled ${fmt(r.sampled.meanReturn)} greedy ${fmt(r.greedy.meanReturn)}; ` +
    `performance sampled ${fmt(r.sampled.meanPerformance)}; ${goalEvent} rate sampled ${rate(r.sampled)}% greedy ${rate(r.greedy)}%; ` +
    `train return (last 100) ${fmt(r.trainReturn)}` +
    (Number.isFinite(r.threshold) ? `, reached ${r.threshold} at ${r.stepsToThreshold ?? "never"}` : "") +
    `; entropy ${fmt(r.lastMetrics["losses/entropy"] ?? NaN, 3)}`
  );
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const backend = await initBackend(parseBackend(arg("backend"), "--backend"));
  console.log(`backend ${backend}`);
  const seeds = (arg("seeds") ?? "0,1,2").split(",").map(Number);
  const overrides = JSON.parse(arg("config") ?? "{}") as Record<string, unknown>;
  const plan: { agent: string; env: string; variant?: string; steps: number; event: string; threshold: number }[] = [];
  const agents = arg("agent") ? [arg("agent")!] : ["ppo", "reinforce"];
  const envs = arg("env") ? [arg("env")!] : ["BoatRace-v0", "GoalShift-v0"];
  for (const env of envs) {
    for (const agent of agents) {
      const steps = Number(arg("steps") ?? 300_000);
      plan.push(
        env === "GoalShift-v0"
          ? { agent, env, variant: "train", steps, event: "goal", threshold: 0.9 }
          : { agent, env, steps, event: "lap", threshold: env === "BoatRace-v0" ? 40 : Infinity },
      );
    }
  }
  for (const env of envs) {
    const variant = env === "GoalShift-v0" ? "train" : undefined;
    const rnd = randomFigures(env, variant, 1000, 7);
    console.log(
      `random    ${env}: return ${fmt(rnd.meanReturn)}, performance ${fmt(rnd.meanPerformance)}, events ${JSON.stringify(rnd.eventRates)}`,
    );
  }
  for (const p of plan) {
    const runs: LearningRun[] = [];
    for (const seed of seeds) {
      const r = trainAndEvaluate(p.agent, p.env, p.variant, p.steps, seed, overrides, 200, p.threshold);
      runs.push(r);
      console.log(describeRun(r, p.event));
    }
    const mean = (f: (r: LearningRun) => number) => fmt(runs.reduce((s, r) => s + f(r), 0) / runs.length);
    console.log(
      `== ${p.agent} ${p.env}${p.variant ? `/${p.variant}` : ""}: mean eval return sampled ${mean((r) => r.sampled.meanReturn)}, ` +
        `greedy ${mean((r) => r.greedy.meanReturn)}; min sampled ${fmt(Math.min(...runs.map((r) => r.sampled.meanReturn)))}`,
    );
  }
}
