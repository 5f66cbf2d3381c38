/**
 * One probe job: train one agent with one seed on the train variant, then
 * test it with learning off. Runs inside a worker thread (or inline in tests).
 */
import { threadCpuSeconds } from "../cputime.ts";
import { mkdir } from "node:fs/promises";
import { agentRegistration, createAgent } from "../../agents/registry.ts";
import type { Agent } from "../../agents/core.ts";
import type { Frame } from "../../envs/core.ts";
import { deriveSeed } from "../../envs/rng.ts";
import { make } from "../../envs/registry.ts";
import type { EpisodeStats, RunSpec } from "../events.ts";
import { type EnvSetup, Stepper, actContext, openEnvs } from "../loop.ts";
import { Run, agentEnvInfo, resolveRunSpec } from "../run.ts";
import { classifyEpisode } from "./classify.ts";
import { SALT } from "../seeds.ts";
import { writeTrainRecord } from "../trainrecord.ts";
import { evaluateIn } from "./evaluation.ts";
import { type RouteRatings, rateRoutes } from "./knowledge.ts";
import { type MazeJobOutcomes, playProbeMazes } from "./maze.ts";
import { EVALUATIONS, type Evaluation } from "./result.ts";
import type { ProbeSide } from "./side.ts";
import { type ProbeEpisode, TestEpisodeCapture, conditionName } from "../probe-episodes.ts";

export type { ProbeSide } from "./side.ts";

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
  /** The side the train-side evaluation plays (competence, reinforced behaviour); default `train`. */
  trainSide?: ProbeSide;
  /** Scripted routes on the test side (action indices) for the agent's own predictor to rate. */
  routes?: { event: number[]; reinforced: number[] };
  /** Search budgets to test at (0: the network alone); replaces the agent's eval modes. */
  budgets?: number[];
  /** Evaluation modes; default both. */
  evaluations?: readonly Evaluation[];
  /** Episodes per evaluation (train-variant and test-variant). */
  episodes: number;
  /** Classify episodes into behaviours (loophole probe). */
  classify?: "loophole";
  /** Extinction: keep learning at zero reward and time the decay of `event`. */
  extinction?: { event: string; maxSteps: number; windowEpisodes: number };
  /** Play the trained agent on the maze probe's held-out mazes too (episodes of them, in each evaluation). */
  analysis?: "maze";
  /** Save the trained agent here as `train --out` does (checkpoint/ and train.json), for eval, watch and steer. */
  saveDir?: string;
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
  /** Wall seconds of the job in its thread (grows with whatever else shares the machine). */
  seconds: number;
  /** CPU seconds of the job's thread (Linux; absent where the OS gives no per-thread figure): the job's cost on a shared machine. */
  cpuSeconds?: number;
  /** Every test-time condition's episodes (modes or budgets, each greedy and sampled). */
  evals: JobEval[];
  /** The agent's own predictor on the probe's two routes (null: no routes, or no predictor). */
  knowledge: RouteRatings | null;
  /** Mean KL(train-variant policy || test-condition policy) over test states (extinction). */
  kl?: number;
  /** Env steps of learning at zero reward until the event rate fell below half its trained rate (null: never within the budget). */
  extinctionSteps?: number | null;
  extinctionBudget?: number;
  /** Episodes the agent played while training, and how many of them showed each event (the dose it actually received). */
  training?: { episodes: number; withEvent: Record<string, number> };
  /** Recorded test episodes (frames and events per step), taken out by the coordinator (probe-episodes.ts). */
  testEpisodes?: { condition: string; episodes: ProbeEpisode[] }[];
  /** The maze analysis's outcomes (ProbeJob.analysis "maze"), per evaluation. */
  maze?: MazeJobOutcomes[];
  /** Training curve: mean episode return and performance in equal bins of env steps. */
  curve: { envSteps: number[]; return: number[]; performance: number[] };
  /** Net reinforcement per grid cell over the whole training (the ledger summed over actions and state keys of a cell). */
  ledgerCells: number[] | null;
  /** Visits per grid cell during training. */
  visitCells: number[] | null;
  /** The train variant's first frame, to draw the ledger on. */
  frame: Frame;
}

/** One test-time condition of a trained agent: its episodes on the train side, the test side and further test sides. */
export interface JobEval {
  mode?: string;
  budget?: number;
  evaluation: Evaluation;
  train: EpisodeDigest[];
  test: EpisodeDigest[];
  moreTests?: Record<string, EpisodeDigest[]>;
  /** Mean action entropy over the sampled test episodes' states (null: greedy). */
  entropy: number | null;
  /** Recorded test episodes (probe-episodes.ts), moved to ProbeJobResult.testEpisodes. */
  recorded?: ProbeEpisode[];
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

/** What training left: the agent, and what the run's events said about it. */
interface Trained {
  agent: Agent;
  spec: RunSpec;
  envSteps: number;
  trainingEps: EpisodeStats[];
  ledgerCells: number[] | null;
  visitCells: number[];
  frame: Frame;
}

/** Trains the job's agent on its train side, summing the ledger and visits per grid cell from the run's events. */
async function trainJob(job: ProbeJob): Promise<Trained> {
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
  if (job.saveDir) {
    await mkdir(job.saveDir, { recursive: true });
    await writeTrainRecord(job.saveDir, spec);
  }
  // with a folder, the run checkpoints once, at the end of training (checkpointEvery 0)
  const run = new Run(`probe-${job.probe}-${job.entry ?? job.agent}-${job.seed}`, spec, job.saveDir ? { dir: job.saveDir } : {});
  let failure: string | undefined;
  const trainingEps: EpisodeStats[] = [];
  const frameEnv = make(job.env, { ...job.train.envConfig, variant: job.train.variant });
  frameEnv.reset({ seed: job.seed });
  const frame = frameEnv.render();
  const cells = frame.width * frame.height;
  const ledgerCells = new Array<number>(cells).fill(0);
  const visitCells = new Array<number>(cells).fill(0);
  let hasLedger = false;
  const addTo = (into: number[], byKey: Record<string, number>) => {
    for (const [k, v] of Object.entries(byKey)) {
      const cell = frameEnv.cellOfKey?.(Number(k)) ?? -1;
      if (cell >= 0 && cell < cells) into[cell]! += v;
    }
  };
  run.on((e) => {
    if (e.type === "status" && e.status === "failed") failure = e.reason;
    else if (e.type === "episode") trainingEps.push(e.episode);
    else if (e.type === "visits") addTo(visitCells, e.visits ?? {});
    else if (e.type === "update") {
      addTo(visitCells, e.visits ?? {});
      if (e.ledger) {
        hasLedger = true;
        const sums = Object.fromEntries(Object.entries(e.ledger.entries).map(([k, values]) => [k, values.reduce((a, b) => a + b, 0)]));
        addTo(ledgerCells, sums);
      }
    }
  });
  const status = await run.execute();
  if (status !== "completed" || !run.agent) throw new Error(`training failed: ${failure ?? status}`);
  return { agent: run.agent, spec, envSteps: run.envSteps, trainingEps, ledgerCells: hasLedger ? ledgerCells : null, visitCells, frame };
}

/**
 * Every test-time condition of a trained agent: its eval modes (expit: search, network) or the probe's
 * search budgets, each in both evaluation modes (greedy, sampled) on the same env seeds.
 */
export function conditions(job: ProbeJob): { mode?: string; budget?: number; evaluation: Evaluation }[] {
  const evaluations = job.evaluations ?? EVALUATIONS;
  if (job.budgets?.length) return job.budgets.flatMap((budget) => evaluations.map((evaluation) => ({ budget, evaluation })));
  const modes: (string | undefined)[] = [...(agentRegistration(job.agent).evalModes ?? [undefined])];
  return modes.flatMap((mode) => evaluations.map((evaluation) => (mode === undefined ? { evaluation } : { mode, evaluation })));
}

/** Puts the agent in a condition's mode and budget (budget 0: the network alone). */
function enter(agent: Agent, c: { mode?: string; budget?: number }): void {
  if (c.budget !== undefined) {
    agent.setEvalMode?.(c.budget === 0 ? "network" : "search");
    if (c.budget > 0) {
      if (!agent.setSearchBudget) throw new Error(`${agent.name} has no search budget to set`);
      agent.setSearchBudget(c.budget);
    }
  } else if (c.mode !== undefined) agent.setEvalMode?.(c.mode);
}

/** One condition's episodes: the train side, the test side and any further test sides. */
function evaluateCondition(t: Trained, job: ProbeJob, c: { mode?: string; budget?: number; evaluation: Evaluation }): JobEval {
  enter(t.agent, c);
  const sizes = agentEnvInfo(t.spec);
  const sampleSeed = (salt: number) => deriveSeed(deriveSeed(job.seed, SALT.probeSampling), salt);
  const play = (side: ProbeSide, seed: number, salt: number, onStep?: TestEpisodeCapture["onStep"]) =>
    evaluateIn(
      c.evaluation,
      t.agent,
      sizes,
      { ...t.spec, variant: side.variant, envConfig: { ...t.spec.envConfig, ...side.envConfig } },
      { episodes: job.episodes, seed, sampleSeed: sampleSeed(salt), reward: side.reward, ...(onStep ? { onStep } : {}) },
    );
  const trainSide = job.trainSide ?? job.train;
  const train = play(trainSide, deriveSeed(job.seed, SALT.probeTrainSide), 0);
  const capture = new TestEpisodeCapture(job.test.variant);
  const test = play(job.test, deriveSeed(job.seed, SALT.probeTestSide), 1, capture.onStep);
  const moreTests: Record<string, EpisodeDigest[]> = {};
  for (const [i, m] of (job.moreTests ?? []).entries()) {
    moreTests[m.name] = play(m.side, deriveSeed(job.seed, SALT.probeTestSide), 2 + i).episodes.map((e) => digest(e, job.classify));
  }
  return {
    ...(c.mode !== undefined ? { mode: c.mode } : {}),
    ...(c.budget !== undefined ? { budget: c.budget } : {}),
    evaluation: c.evaluation,
    train: train.episodes.map((e) => digest(e, job.classify)),
    test: test.episodes.map((e) => digest(e, job.classify)),
    ...(job.moreTests ? { moreTests } : {}),
    entropy: test.entropy,
    recorded: capture.episodes,
  };
}

export async function runProbeJob(job: ProbeJob): Promise<ProbeJobResult> {
  const started = performance.now();
  const cpuStarted = threadCpuSeconds();
  const t = await trainJob(job);
  const { agent, spec } = t;
  // the agent's first mode (how it acts in training) last, so the extinction phase below continues in it
  const all = conditions(job);
  const order = [
    ...all.filter((c) => c.mode === undefined || c.mode !== all[0]!.mode),
    ...all.filter((c) => c.mode !== undefined && c.mode === all[0]!.mode),
  ];
  const evals = order.map((c) => evaluateCondition(t, job, c));
  if (job.budgets?.length) agent.setEvalMode?.(agentRegistration(job.agent).evalModes?.[0] ?? "");
  const testEpisodes = evals.map((e) => ({ condition: conditionName(e), episodes: e.recorded ?? [] }));
  for (const e of evals) delete e.recorded;
  const result: ProbeJobResult = {
    testEpisodes,
    agent: job.agent,
    ...(job.entry ? { entry: job.entry } : {}),
    seed: job.seed,
    arm: job.arm,
    trainSteps: t.envSteps,
    seconds: 0,
    evals,
    knowledge: job.routes ? rateRoutes(agent, job.env, job.test, job.routes, deriveSeed(job.seed, SALT.probeRoutes)) : null,
    training: { episodes: t.trainingEps.length, withEvent: episodesWithEvent(t.trainingEps) },
    curve: curveOf(t.trainingEps, job.steps),
    ledgerCells: t.ledgerCells,
    visitCells: t.visitCells,
    frame: t.frame,
  };
  if (job.analysis === "maze")
    result.maze = playProbeMazes(
      agent,
      { ...spec.envConfig, ...job.test.envConfig, variant: job.test.variant },
      job.episodes,
      job.evaluations ?? EVALUATIONS,
    );
  if (job.extinction) {
    result.kl = meanKL(agent, spec, job.test, deriveSeed(job.seed, SALT.probeKL));
    const firstGreedy = evals.find((e) => e.evaluation === "greedy" && e.mode === all[0]!.mode) ?? evals[0]!;
    result.extinctionSteps = await timeExtinction(agent, spec, job, firstGreedy.train);
    result.extinctionBudget = job.extinction.maxSteps;
  }
  agent.dispose();
  result.seconds = (performance.now() - started) / 1000;
  const cpu = threadCpuSeconds();
  if (cpu !== null && cpuStarted !== null) result.cpuSeconds = cpu - cpuStarted;
  return result;
}

/**
 * Mean KL between the action distribution in the train condition and in the
 * test condition, over the states the test condition visits (learning off,
 * greedy). For a model-free policy the observation is the same in both
 * conditions, so any difference comes from the agent consulting the reward
 * (a planner does). Both act contexts come from loop.ts (actContext), the
 * train-condition copy restored to the test copy's state before each step.
 */
function meanKL(agent: Agent, spec: RunSpec, test: ProbeSide, seed: number): number {
  const n = agentEnvInfo(spec).nActions;
  const setupOf = (side: ProbeSide): EnvSetup => ({
    env: spec.env,
    config: { ...spec.envConfig, ...side.envConfig, variant: side.variant },
    reward: side.reward,
    numEnvs: 1,
    seed,
  });
  const testSetup = setupOf(test);
  const trainSetup = setupOf({ variant: spec.variant, envConfig: {}, reward: spec.reward });
  const stepper = new Stepper(agent, testSetup);
  const trainVec = openEnvs(trainSetup);
  const keys = new Int32Array(1);
  let total = 0;
  const steps = 200;
  try {
    for (let t = 0; t < steps; t++) {
      const live = stepper.vec.envs[0]!;
      keys[0] = live.stateKey();
      trainVec.envs[0]!.restore(live.snapshot());
      const { explore: _p, ...pCtx } = actContext(agent, false, trainVec, keys, trainSetup);
      const { explore: _q, ...qCtx } = actContext(agent, false, stepper.vec, keys, testSetup);
      const p = agent.actionProbs(stepper.vec.obs, 1, pCtx);
      const q = agent.actionProbs(stepper.vec.obs, 1, qCtx);
      for (let a = 0; a < n; a++) {
        const pa = Math.max(p[a]!, 1e-8);
        total += pa * Math.log(pa / Math.max(q[a]!, 1e-8));
      }
      stepper.step({ explore: false, learn: false });
    }
  } finally {
    stepper.close();
    trainVec.close();
  }
  return total / steps;
}

/** Keeps learning with the reward removed; counts env steps until the event's rate halves. */
async function timeExtinction(agent: Agent, spec: RunSpec, job: ProbeJob, trainEps: EpisodeDigest[]): Promise<number | null> {
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

/** Trains nothing: the planner's reward-pursuit rate on a side, with the simulator model, in one evaluation mode. */
export function plannerRate(
  envId: string,
  side: ProbeSide,
  event: string,
  episodes: number,
  seed: number,
  evaluation: Evaluation = "greedy",
  plannerConfig: Record<string, unknown> = {},
): { rate: number; episodes: EpisodeStats[] } {
  const spec = { env: envId, variant: side.variant, envConfig: side.envConfig, config: { model: "simulator", ...plannerConfig } };
  const info = agentEnvInfo(spec);
  const agent = createAgent("planner", info, spec.config, seed);
  const { episodes: eps } = evaluateIn(evaluation, agent, info, spec, {
    episodes,
    seed,
    sampleSeed: deriveSeed(seed, SALT.probeSampling),
    reward: side.reward,
  });
  agent.dispose();
  return { rate: eps.filter((e) => (e.events[event] ?? 0) > 0).length / Math.max(1, eps.length), episodes: eps };
}

/** Per event: how many of the episodes showed it at least once. */
export function episodesWithEvent(eps: readonly Pick<EpisodeStats, "events">[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of eps) for (const [k, n] of Object.entries(e.events)) if (n > 0) out[k] = (out[k] ?? 0) + 1;
  return out;
}
