/**
 * One probe job: train one agent with one seed on the train variant, then
 * test it with learning off. Runs inside a worker thread (or inline in tests).
 */
import { agentRegistration, createAgent } from "../../agents/registry.ts";
import type { Agent } from "../../agents/core.ts";
import type { Frame } from "../../envs/core.ts";
import { deriveSeed } from "../../envs/rng.ts";
import { make } from "../../envs/registry.ts";
import type { EpisodeStats, RunSpec } from "../events.ts";
import { Stepper } from "../loop.ts";
import { Run, agentEnvInfo, evaluate, resolveRunSpec } from "../run.ts";
import { classifyEpisode } from "./classify.ts";
import { SALT } from "../seeds.ts";

export interface ProbeSide {
  variant: string;
  envConfig: Record<string, unknown>;
  reward: RunSpec["reward"];
}

export interface ProbeJob {
  probe: string;
  /** Which arm of the probe (dose-response: the exposure); "" for single-arm probes. */
  arm: string;
  env: string;
  /** The registered agent. */
  agent: string;
  /** The probe's entry for it when tagged (`planner:neural`); absent: the entry is the agent's name. */
  entry?: string;
  config: Record<string, unknown>;
  seed: number;
  steps: number;
  train: ProbeSide;
  test: ProbeSide;
  /** Further test sides, evaluated like `test` with the same trained agent (results under their names). */
  moreTests?: { name: string; side: ProbeSide }[];
  /** Episodes per evaluation (train-variant and test-variant). */
  episodes: number;
  /** Classify episodes into behaviours (loophole probe). */
  classify?: "loophole";
  /** Extinction: keep learning at zero reward and time the decay of `event`. */
  extinction?: { event: string; maxSteps: number; windowEpisodes: number };
}

export interface EpisodeDigest {
  return: number;
  performance: number;
  events: Record<string, number>;
  behaviour?: string;
}

export interface ProbeJobResult {
  agent: string;
  /** The job's entry when tagged (ProbeJob.entry). */
  entry?: string;
  seed: number;
  arm: string;
  trainSteps: number;
  seconds: number;
  /** The trained policy on the train variant, learning off. */
  train: EpisodeDigest[];
  /** The trained policy on the test variant, learning off. */
  test: EpisodeDigest[];
  /** The trained policy on each further test side, by name. */
  moreTests?: Record<string, EpisodeDigest[]>;
  /** Agents with several test-time modes (AgentRegistration.evalModes): the episodes above per mode (those above: the first). */
  modes?: Record<string, Pick<ProbeJobResult, "train" | "test" | "moreTests">>;
  /** Mean KL(train-variant policy || test-condition policy) over test states (extinction). */
  kl?: number;
  /** Env steps of learning at zero reward until the event rate fell below half its trained rate (null: never within the budget). */
  extinctionSteps?: number | null;
  extinctionBudget?: number;
  /** Episodes the agent played while training, and how many of them showed each event (the dose it actually received). */
  training?: { episodes: number; withEvent: Record<string, number> };
  /** Training curve: mean episode return and performance in equal bins of env steps. */
  curve: { envSteps: number[]; return: number[]; performance: number[] };
  /** Net reinforcement per grid cell over the whole training (the ledger summed over actions and state keys of a cell). */
  ledgerCells: number[] | null;
  /** Visits per grid cell during training. */
  visitCells: number[] | null;
  /** The train variant's first frame, to draw the ledger on. */
  frame: Frame;
}

const CURVE_BINS = 40;

function curveOf(eps: EpisodeStats[], budget: number): ProbeJobResult["curve"] {
  const sums = Array.from({ length: CURVE_BINS }, () => ({ n: 0, r: 0, p: 0 }));
  for (const e of eps) {
    const b = Math.min(CURVE_BINS - 1, Math.floor((e.envSteps / Math.max(1, budget)) * CURVE_BINS));
    sums[b]!.n++;
    sums[b]!.r += e.return;
    sums[b]!.p += e.performance;
  }
  const keep = sums.map((s, i) => ({ ...s, i })).filter((s) => s.n > 0);
  return {
    envSteps: keep.map((s) => Math.round(((s.i + 0.5) / CURVE_BINS) * budget)),
    return: keep.map((s) => s.r / s.n),
    performance: keep.map((s) => s.p / s.n),
  };
}

function digest(e: EpisodeStats, classify?: "loophole"): EpisodeDigest {
  return {
    return: e.return,
    performance: e.performance,
    events: e.events,
    ...(classify ? { behaviour: classifyEpisode(e) } : {}),
  };
}

export async function runProbeJob(job: ProbeJob): Promise<ProbeJobResult> {
  const started = performance.now();
  const spec = resolveRunSpec({
    env: job.env,
    variant: job.train.variant,
    envConfig: job.train.envConfig,
    agent: job.agent,
    config: job.config,
    seed: job.seed,
    steps: job.steps,
    evalEpisodes: 0,
    checkpointEvery: 0,
    recordEveryMs: 0,
    reward: job.train.reward,
  });
  const run = new Run(`probe-${job.probe}-${job.entry ?? job.agent}-${job.seed}`, spec);
  let failure: string | undefined;
  const trainingEps: EpisodeStats[] = [];
  const frameEnv = make(job.env, { ...job.train.envConfig, variant: job.train.variant });
  frameEnv.reset({ seed: job.seed });
  const frame = frameEnv.render();
  const cells = frame.width * frame.height;
  const ledgerCells = new Array<number>(cells).fill(0);
  const visitCells = new Array<number>(cells).fill(0);
  let hasLedger = false;
  const addVisits = (visits: Record<string, number> | undefined) => {
    for (const [k, v] of Object.entries(visits ?? {})) {
      const cell = frameEnv.cellOfKey?.(Number(k)) ?? -1;
      if (cell >= 0 && cell < cells) visitCells[cell]! += v;
    }
  };
  run.on((e) => {
    if (e.type === "status" && e.status === "failed") failure = e.reason;
    else if (e.type === "episode") trainingEps.push(e.episode);
    else if (e.type === "visits") addVisits(e.visits);
    else if (e.type === "update") {
      addVisits(e.visits);
      if (e.ledger) {
        hasLedger = true;
        for (const [k, values] of Object.entries(e.ledger.entries)) {
          const cell = frameEnv.cellOfKey?.(Number(k)) ?? -1;
          if (cell >= 0 && cell < cells) ledgerCells[cell]! += values.reduce((a, b) => a + b, 0);
        }
      }
    }
  });
  const status = await run.execute();
  if (status !== "completed" || !run.agent) throw new Error(`training failed: ${failure ?? status}`);
  const agent = run.agent;
  const evaluateAll = () => {
    const trainEps: EpisodeStats[] = [];
    const testEps: EpisodeStats[] = [];
    evaluate(agent, spec, {
      episodes: job.episodes,
      seed: deriveSeed(job.seed, SALT.probeTrainSide),
      greedy: false,
      variant: job.train.variant,
      reward: job.train.reward,
      onEpisode: (e) => trainEps.push(e),
    });
    const testSpec = { ...spec, variant: job.test.variant, envConfig: { ...spec.envConfig, ...job.test.envConfig } };
    evaluate(agent, testSpec, {
      episodes: job.episodes,
      seed: deriveSeed(job.seed, SALT.probeTestSide),
      greedy: false,
      reward: job.test.reward,
      onEpisode: (e) => testEps.push(e),
    });
    const moreTests: Record<string, EpisodeDigest[]> = {};
    for (const t of job.moreTests ?? []) {
      const eps: EpisodeStats[] = [];
      evaluate(
        agent,
        { ...spec, variant: t.side.variant, envConfig: { ...spec.envConfig, ...t.side.envConfig } },
        {
          episodes: job.episodes,
          seed: deriveSeed(job.seed, SALT.probeTestSide),
          greedy: false,
          reward: t.side.reward,
          onEpisode: (e) => eps.push(e),
        },
      );
      moreTests[t.name] = eps.map((e) => digest(e, job.classify));
    }
    return { trainEps, testEps, moreTests };
  };
  // agents with several test-time modes are tested in each, the first (how they act in training) last,
  // so that the agent is left in it and trainEps/testEps/moreTests below are its episodes
  const modes = agentRegistration(job.agent).evalModes ?? [];
  const byMode: NonNullable<ProbeJobResult["modes"]> = {};
  let evaluated = modes.length ? null : evaluateAll();
  for (const mode of [...modes.slice(1), ...modes.slice(0, 1)]) {
    agent.setEvalMode?.(mode);
    const r = (evaluated = evaluateAll());
    byMode[mode] = {
      train: r.trainEps.map((e) => digest(e, job.classify)),
      test: r.testEps.map((e) => digest(e, job.classify)),
      ...(job.moreTests ? { moreTests: r.moreTests } : {}),
    };
  }
  const { trainEps, testEps, moreTests } = evaluated!;
  const result: ProbeJobResult = {
    ...(job.moreTests ? { moreTests } : {}),
    ...(modes.length ? { modes: byMode } : {}),
    agent: job.agent,
    ...(job.entry ? { entry: job.entry } : {}),
    seed: job.seed,
    arm: job.arm,
    trainSteps: run.envSteps,
    seconds: 0,
    train: trainEps.map((e) => digest(e, job.classify)),
    test: testEps.map((e) => digest(e, job.classify)),
    training: { episodes: trainingEps.length, withEvent: episodesWithEvent(trainingEps) },
    curve: curveOf(trainingEps, job.steps),
    ledgerCells: hasLedger ? ledgerCells : null,
    visitCells,
    frame,
  };
  if (job.extinction) {
    result.kl = meanKL(agent, spec, job.test, deriveSeed(job.seed, SALT.probeKL));
    const ext = await timeExtinction(agent, spec, job, trainEps);
    result.extinctionSteps = ext;
    result.extinctionBudget = job.extinction.maxSteps;
  }
  agent.dispose();
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/**
 * Mean KL between the action distribution in the train condition and in the
 * test condition, over the states the test condition visits (learning off).
 * For a model-free policy the observation is the same in both conditions, so
 * any difference comes from the agent consulting the reward (a planner does).
 */
function meanKL(agent: Agent, spec: RunSpec, test: ProbeSide, seed: number): number {
  const n = agentEnvInfo(spec).nActions;
  const mk = (side: { variant: string; envConfig: Record<string, unknown>; reward: RunSpec["reward"] }) =>
    make(spec.env, { ...spec.envConfig, ...side.envConfig, variant: side.variant }, { reward: side.reward });
  const testEnv = mk(test);
  const trainCtxEnv = mk({ variant: spec.variant, envConfig: {}, reward: spec.reward });
  let { obs } = testEnv.reset({ seed });
  trainCtxEnv.reset({ seed });
  let total = 0;
  let count = 0;
  const keys = new Int32Array(1);
  for (let t = 0; t < 200; t++) {
    keys[0] = testEnv.stateKey();
    const snap = testEnv.snapshot();
    trainCtxEnv.restore(snap);
    const ctxFor = (env: typeof testEnv, side: ProbeSide) => ({
      stateKeys: keys,
      envs: [env],
      simulator: { envId: spec.env, envConfig: { ...spec.envConfig, ...side.envConfig, variant: side.variant }, reward: side.reward },
    });
    const p = agent.actionProbs(obs, 1, ctxFor(trainCtxEnv, { variant: spec.variant, envConfig: {}, reward: spec.reward }));
    const q = agent.actionProbs(obs, 1, ctxFor(testEnv, test));
    let kl = 0;
    for (let a = 0; a < n; a++) {
      const pa = Math.max(p[a]!, 1e-8);
      const qa = Math.max(q[a]!, 1e-8);
      kl += pa * Math.log(pa / qa);
    }
    total += kl;
    count++;
    const act = agent.act(obs, { explore: false, ...ctxFor(testEnv, test) });
    const r = testEnv.step(act.actions[0]!);
    obs = r.obs;
    if (r.terminated || r.truncated) obs = testEnv.reset().obs;
  }
  return total / count;
}

/** Keeps learning with the reward removed; counts env steps until the event's rate halves. */
async function timeExtinction(agent: Agent, spec: RunSpec, job: ProbeJob, trainEps: EpisodeStats[]): Promise<number | null> {
  const ext = job.extinction!;
  const baseRate = trainEps.filter((e) => (e.events[ext.event] ?? 0) > 0).length / Math.max(1, trainEps.length);
  if (baseRate === 0) return 0;
  const stepper = new Stepper(agent, {
    env: spec.env,
    config: { ...spec.envConfig, variant: job.test.variant },
    reward: "removed",
    numEnvs: agentEnvInfo(spec).numEnvs,
    seed: deriveSeed(job.seed, SALT.extinction),
  });
  const window: number[] = [];
  // extinction learns from zero-reward transitions only, never from training's last rollout
  agent.resetRollout?.();
  try {
    while (stepper.envSteps < ext.maxSteps) {
      stepper.step({ explore: true, learn: true });
      for (const e of stepper.finished) {
        window.push((e.events[ext.event] ?? 0) > 0 ? 1 : 0);
        if (window.length > ext.windowEpisodes) window.shift();
        if (window.length === ext.windowEpisodes) {
          const rate = window.reduce((a, b) => a + b, 0) / window.length;
          if (rate < baseRate / 2) return stepper.envSteps;
        }
      }
      if (stepper.envSteps % 4096 < stepper.num) await new Promise<void>((r) => setImmediate(r));
    }
    return null;
  } finally {
    stepper.close();
  }
}

/** Trains nothing: the planner's reward-pursuit rate on a side, with the simulator model. */
export function plannerRate(
  envId: string,
  side: ProbeSide,
  event: string,
  episodes: number,
  seed: number,
  plannerConfig: Record<string, unknown> = {},
): { rate: number; episodes: EpisodeStats[] } {
  const spec = { env: envId, variant: side.variant, envConfig: side.envConfig, config: { model: "simulator", ...plannerConfig } };
  const agent = createAgent("planner", agentEnvInfo(spec), spec.config, seed);
  const eps: EpisodeStats[] = [];
  evaluate(agent, spec, { episodes, seed, greedy: true, reward: side.reward, onEpisode: (e) => eps.push(e) });
  agent.dispose();
  return { rate: eps.filter((e) => (e.events[event] ?? 0) > 0).length / Math.max(1, eps.length), episodes: eps };
}

/** Per event: how many of the episodes showed it at least once. */
export function episodesWithEvent(eps: readonly Pick<EpisodeStats, "events">[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of eps) for (const [k, n] of Object.entries(e.events)) if (n > 0) out[k] = (out[k] ?? 0) + 1;
  return out;
}
