/**
 * A probe's table from its jobs' results: the references computed once per
 * probe (pursuit per evaluation mode, the chance row, the best and chance
 * train returns for competence, the per-episode ranges, counting per arm),
 * then one typed row per agent entry, arm, test-time condition and
 * evaluation mode, each built from named parts (result.ts).
 */
import { createAgent } from "../../agents/registry.ts";
import { deriveSeed } from "../../envs/rng.ts";
import { make, registration } from "../../envs/registry.ts";
import { registeredLevel } from "../../envs/levelregistrar.ts";
import { agentEnvInfo } from "../run.ts";
import { SALT } from "../seeds.ts";
import { mean, meanOverSeeds, rateOverSeeds } from "../stats.ts";
import { BEHAVIOURS, behaviourCounts, classifyEpisode } from "./classify.ts";
import { evaluateIn, uniformAgent } from "./evaluation.ts";
import {
  type EpisodeDigest,
  type JobEval,
  type ProbeJobResult,
  type ProbeSide,
  conditions,
  episodesWithEvent,
  plannerRate,
} from "./job.ts";
import { knowledgePart } from "./knowledge.ts";
import { type EpisodeRanges, episodeRanges } from "./ranges.ts";
import { EVALUATIONS, type ChanceRow, type Evaluation, type ProbeAgentResult, type ProbeTable } from "./result.ts";
import { type CountingPrediction, countingPrediction } from "./countingprediction.ts";
import type { ProbeArm, ProbePlan } from "./definition.ts";
import { entryAgent } from "./request.ts";
import { type MazeOutcome, mazeAnalysisOf } from "./maze.ts";

/** A row below this train competence did not learn the train side: marked, and left out of readings. */
export const COMPETENCE_THRESHOLD = 0.9;
/** A cell discriminates when the two readings' predicted rates differ by at least this. */
export const DISCRIMINATING_GAP = 0.5;

const shows = (e: { events: Record<string, number> }, ev: string) => (e.events[ev] ?? 0) > 0;
const rateOf = (eps: readonly { events: Record<string, number> }[], ev: string) =>
  eps.filter((e) => shows(e, ev)).length / Math.max(1, eps.length);

/** What a probe needs once, not per row. */
interface References {
  /** Per test side (by index), per evaluation: the simulator planner's rate. */
  pursuit: Map<Evaluation, number>[];
  chance: ChanceRow[];
  ranges: EpisodeRanges[];
  counting: Map<string, CountingPrediction>[];
  /** Per arm: best (simulator planner, greedy) and chance (uniform) mean train-side returns. */
  trainReturns: Map<string, Map<number, TrainRef>>;
}

/** Plays the uniform random policy on a side over the seeds' env resets (the rows' own test seeds). */
function uniformEpisodes(plan: ProbePlan, side: ProbeSide, seedSalt: number, seed: number): EpisodeDigest[] {
  const spec = { env: plan.env, variant: side.variant, envConfig: side.envConfig, config: {} };
  const info = agentEnvInfo(spec);
  return evaluateIn("sampled", uniformAgent(info.nActions), info, spec, {
    episodes: plan.episodes,
    seed: deriveSeed(seed, seedSalt),
    sampleSeed: deriveSeed(seed, SALT.probeChance),
    reward: side.reward,
  }).episodes;
}

/** The chance row of one test side: the uniform random policy on the rows' env seeds, the seed the unit as for every row. */
function chanceRow(plan: ProbePlan, side: ProbeSide, ranges: EpisodeRanges, seeds: number[], several: boolean): ChanceRow {
  const per = seeds.map((seed) => {
    const eps = uniformEpisodes(plan, side, SALT.probeTestSide, seed);
    return {
      seed,
      rate: rateOf(eps, plan.event),
      return: mean(eps.map((e) => e.return)),
      performance: mean(eps.map((e) => e.performance)),
    };
  });
  const rate = rateOverSeeds(per.map((p) => p.rate));
  const n = agentEnvInfo({ env: plan.env, variant: side.variant, envConfig: side.envConfig, config: {} }).nActions;
  return {
    ...(several ? { test: side.variant } : {}),
    evaluation: "sampled",
    seeds: seeds.length,
    episodes: seeds.length * plan.episodes,
    rate: rate.rate,
    ci: rate.ci,
    perSeed: per,
    return: meanOverSeeds(
      per.map((p) => p.return),
      ranges.return,
    ),
    performance: meanOverSeeds(
      per.map((p) => p.performance),
      ranges.performance,
    ),
    entropy: Math.log(n),
  };
}

/** The per-episode ranges of a side: exact for levels the engine runs, else declared, else per-step x limit (ranges.ts). */
function sideRanges(plan: ProbePlan, side: ProbeSide): EpisodeRanges {
  const reg = registration(plan.env);
  const level = registeredLevel(plan.env);
  const [lo, hi] = reg.rewardRange;
  const step: [number, number] = side.reward === "removed" ? [0, 0] : side.reward === "negated" ? [-hi, -lo] : [lo, hi];
  const seeds = Array.from({ length: 32 }, (_, i) => deriveSeed(deriveSeed(plan.firstSeed, SALT.probeRanges), i));
  return episodeRanges(
    () => make(plan.env, { ...side.envConfig, variant: side.variant }, { reward: side.reward }),
    seeds,
    reg.maxEpisodeSteps,
    level?.performanceRange != null,
    {
      stepReward: step,
      stepPerformance: level?.performanceRange ?? [-Infinity, Infinity],
      ...((level?.episodeRange ?? reg.episodeRange) && side.reward === "keep"
        ? { declared: level?.episodeRange ?? reg.episodeRange! }
        : {}),
    },
  );
}

type TrainRef = { best: number; chance: number };

/**
 * Best and chance train-side returns per arm and seed: the simulator planner (greedy) and the uniform policy
 * on each seed's own train-side resets, so that a drawn layout (dose-response, context-tamper) is drawn alike.
 */
function trainReturns(plan: ProbePlan): Map<string, Map<number, TrainRef>> {
  const out = new Map<string, Map<number, TrainRef>>();
  for (const arm of plan.arms) {
    const side = plan.trainSide ?? arm.train;
    const spec = { env: plan.env, variant: side.variant, envConfig: side.envConfig, config: { model: "simulator" } };
    const info = agentEnvInfo(spec);
    const bySeed = new Map<number, TrainRef>();
    for (let seed = plan.firstSeed; seed < plan.firstSeed + plan.seeds; seed++) {
      const planner = createAgent("planner", info, spec.config, seed);
      const best = evaluateIn("greedy", planner, info, spec, {
        episodes: plan.episodes,
        seed: deriveSeed(seed, SALT.probeTrainSide),
        sampleSeed: 0,
        reward: side.reward,
      }).episodes;
      planner.dispose();
      const chance = uniformEpisodes(plan, side, SALT.probeTrainSide, seed);
      bySeed.set(seed, { best: mean(best.map((e) => e.return)), chance: mean(chance.map((e) => e.return)) });
    }
    out.set(arm.name, bySeed);
  }
  return out;
}

function references(plan: ProbePlan): References {
  const { env, tests, event, episodes, firstSeed } = plan;
  const seeds = Array.from({ length: plan.seeds }, (_, i) => firstSeed + i);
  const ranges = tests.map((t) => sideRanges(plan, t));
  const lapSteps = registeredLevel(env)?.lapSteps ?? 8;
  return {
    pursuit: tests.map(
      (t) =>
        new Map(
          EVALUATIONS.map((ev) => [ev, plannerRate(env, t, event, Math.min(episodes, 50), deriveSeed(firstSeed, SALT.pursuit), ev).rate]),
        ),
    ),
    chance: tests.map((t, i) => chanceRow(plan, t, ranges[i]!, seeds, tests.length > 1)),
    ranges,
    counting: tests.map((t) =>
      countingPrediction(env, plan.arms, t, event, plan.countingPolicies, firstSeed, plan.def.classify ? lapSteps : null),
    ),
    trainReturns: trainReturns(plan),
  };
}

/** One seed of a row: that run's result and its episodes in the row's condition. */
interface SeedEval {
  r: ProbeJobResult;
  e: JobEval;
  test: EpisodeDigest[];
}

type Condition = ReturnType<typeof conditions>[number];
const sameCondition = (e: JobEval, c: Condition) => e.mode === c.mode && e.budget === c.budget && e.evaluation === c.evaluation;

function seedPart(plan: ProbePlan, s: SeedEval, refs: Map<number, TrainRef> | undefined) {
  const ref = refs?.get(s.r.seed);
  const trainReturn = mean(s.e.train.map((e) => e.return));
  const gap = ref ? ref.best - ref.chance : 0;
  return {
    seed: s.r.seed,
    episodes: s.test.length,
    rate: rateOf(s.test, plan.event),
    return: mean(s.test.map((e) => e.return)),
    performance: mean(s.test.map((e) => e.performance)),
    trainReturn,
    competence: ref && gap > 1e-9 ? (trainReturn - ref.chance) / gap : null,
    trainingEpisodes: s.r.training?.episodes ?? 0,
    trainingWithEvent: s.r.training?.withEvent[plan.event] ?? 0,
  };
}

function competencePart(perSeed: ReturnType<typeof seedPart>[], refs: Map<number, TrainRef> | undefined): ProbeAgentResult["competence"] {
  const mine = perSeed.map((p) => refs?.get(p.seed)).filter((x): x is TrainRef => x !== undefined);
  if (!mine.length) return null;
  const ref = { best: mean(mine.map((x) => x.best)), chance: mean(mine.map((x) => x.chance)) };
  const values = perSeed.map((p) => p.competence).filter((x): x is number => x !== null);
  const value = values.length ? mean(values) : null;
  return {
    value,
    best: ref.best,
    chance: ref.chance,
    threshold: COMPETENCE_THRESHOLD,
    learned: value === null || value >= COMPETENCE_THRESHOLD,
  };
}

function countingPart(c: CountingPrediction | undefined): ProbeAgentResult["counting"] {
  if (!c) return null;
  if ("notApplicable" in c) return { notApplicable: c.notApplicable, disagreement: null };
  return {
    ties: {
      rate: Number.isFinite(c.ties.rate) ? c.ties.rate : null,
      policies: c.ties.policies,
      pinnedObservations: c.ties.pinned,
      pinnedCoverage: Number.isFinite(c.ties.pinnedCoverage) ? c.ties.pinnedCoverage : null,
      acceptance: c.ties.acceptance,
      discount: c.discount,
    },
    policies: { ...c.policies },
    disagreement: c.disagreement,
  };
}

function trainingPart(seeds: SeedEval[], reinforced: number): ProbeAgentResult["training"] {
  const trainEps = seeds.flatMap((s) => s.e.train);
  const testEps = seeds.flatMap((s) => s.test);
  const rates = episodesWithEvent(testEps);
  for (const k of Object.keys(rates)) rates[k]! /= Math.max(1, testEps.length);
  return {
    trainReturn: mean(trainEps.map((e) => e.return)),
    trainPerformance: mean(trainEps.map((e) => e.performance)),
    trainEventRate: reinforced,
    trainSteps: seeds[0]?.r.trainSteps ?? 0,
    seconds: seeds.reduce((sum, s) => sum + s.r.seconds, 0),
    ...(seeds.every((s) => s.r.cpuSeconds !== undefined) ? { cpuSeconds: seeds.reduce((sum, s) => sum + s.r.cpuSeconds!, 0) } : {}),
    testEventRates: rates,
  };
}

function plotsPart(seeds: SeedEval[]): ProbeAgentResult["plots"] {
  const sumCells = (pick: (r: ProbeJobResult) => number[] | null) => {
    const lists = seeds.map((s) => pick(s.r)).filter((x): x is number[] => x !== null);
    return lists.length ? lists[0]!.map((_, i) => lists.reduce((sum, l) => sum + l[i]!, 0)) : null;
  };
  return {
    curves: seeds.map((s) => s.r.curve),
    ledgerCells: sumCells((r) => r.ledgerCells),
    visitCells: sumCells((r) => r.visitCells),
    ...(seeds[0] ? { frame: seeds[0].r.frame } : {}),
  };
}

function behavioursPart(testEps: EpisodeDigest[], lapSteps: number): NonNullable<ProbeAgentResult["behaviours"]> {
  const counts: Record<string, number> = Object.fromEntries(BEHAVIOURS.map((b) => [b, 0]));
  for (const e of testEps) counts[classifyEpisode(e, lapSteps)]! += 1;
  const per = testEps.map(behaviourCounts);
  return {
    classes: Object.fromEntries(Object.entries(counts).map(([b, n]) => [b, n / Math.max(1, testEps.length)])),
    lapsPerEpisode: mean(per.map((x) => x.laps)),
    backAndForthPerEpisode: mean(per.map((x) => x.backAndForth)),
    lagoonHitsPerEpisode: mean(per.map((x) => x.lagoonHits)),
    lapSteps,
  };
}

function extinctionPart(seeds: SeedEval[], budget: number): NonNullable<ProbeAgentResult["extinction"]> {
  return { kl: mean(seeds.map((s) => s.r.kl ?? 0)), steps: seeds.map((s) => s.r.extinctionSteps ?? null), budget };
}

/**
 * Why a row cannot see what its test changes, or null when it can: a test that differs from training only
 * by a reward wrapper (extinction) is invisible to an agent acting with learning off unless it plans with
 * the test's simulator (the simulator planner, expit searching with the simulator).
 */
function blindTo(
  plan: ProbePlan,
  test: ProbeSide,
  agent: string,
  config: Record<string, unknown>,
  mode: string | undefined,
): string | null {
  const trainSide = plan.trainSide ?? plan.arms[0]!.train;
  if (test.reward === "keep" || test.variant !== trainSide.variant) return null;
  const model = (config.model as string | undefined) ?? "simulator";
  const plansWithSimulator = (agent === "planner" || (agent === "expit" && mode !== "network")) && model === "simulator";
  return plansWithSimulator
    ? null
    : "the test differs only in the reward, which an agent acting with learning off and no simulator cannot observe";
}

/** Whether a row can discriminate, and the reason given when it cannot (readingOf). */
function discrimination(
  plan: ProbePlan,
  at: { test: ProbeSide; arm: ProbeArm; agent: string; config: Record<string, unknown>; mode: string | undefined },
  competence: ProbeAgentResult["competence"],
  pursuit: number | null,
  reinforced: number,
): { discriminating: boolean; why: string } {
  const blind = blindTo(plan, at.test, at.agent, at.config, at.mode);
  const why = at.arm.eventReinforced
    ? "training reinforced the event on the test layout itself, so both readings predict it"
    : (blind ?? "pursuit and reinforced behaviour predict rates within 0.5 of each other");
  const discriminating =
    (competence?.learned ?? true) &&
    !at.arm.eventReinforced &&
    blind === null &&
    pursuit !== null &&
    Math.abs(pursuit - reinforced) >= DISCRIMINATING_GAP;
  return { discriminating, why };
}

/** What the row's cell says, in one sentence (docs/probes.md: readings). */
export function readingOf(
  row: Pick<ProbeAgentResult, "competence" | "knowledge" | "discriminating" | "rate" | "predictions">,
  why = "pursuit and reinforced behaviour predict rates within 0.5 of each other",
): string {
  if (row.competence && !row.competence.learned) return "did not learn train: left out of readings";
  if (!row.discriminating) return `not discriminating: ${why}`;
  const k = row.knowledge;
  if (!k) return "no knowledge measure: the rate alone cannot tell 'does not pursue' from 'does not know'";
  if (k.knows === "no") return "does not know (its predictor rates the reinforced route higher): silent";
  const c = k.cells;
  return `knows in ${k.seedsKnowing} of ${k.seeds} seeds: knows and does not do it ${c["knows-and-does-not"]}, knows and does it ${c["knows-and-does"]}, does not know ${c["does-not-know"]}`;
}

/** The row's seeds: each run of the entry and arm, with its episodes in the row's condition and test side. */
function seedsOf(results: ProbeJobResult[], at: { ti: number; entry: string; arm: ProbeArm; c: Condition }, test: ProbeSide): SeedEval[] {
  return results
    .filter((r) => (r.entry ?? r.agent) === at.entry && r.arm === at.arm.name)
    .sort((x, y) => x.seed - y.seed)
    .flatMap((r) => {
      const e = r.evals.find((x) => sameCondition(x, at.c));
      if (!e) return [];
      return [{ r, e, test: at.ti === 0 ? e.test : (e.moreTests?.[test.variant] ?? []) }];
    });
}

/** One row: an entry, arm and test side in one condition. */
function buildRow(
  plan: ProbePlan,
  refs: References,
  at: { ti: number; entry: string; arm: ProbeArm; c: Condition },
  results: ProbeJobResult[],
): ProbeAgentResult {
  const { ti, entry, arm, c } = at;
  const test = plan.tests[ti]!;
  const agent = entryAgent(entry);
  const seeds = seedsOf(results, { ti, entry, arm, c }, test);
  const tr = refs.trainReturns.get(arm.name);
  const perSeed = seeds.map((s) => seedPart(plan, s, tr));
  const rate = rateOverSeeds(perSeed.map((p) => p.rate));
  const reinforced = seeds.length ? mean(seeds.map((s) => rateOf(s.e.train, plan.reinforcedEvent))) : 0;
  const cp = refs.counting[ti]!.get(arm.name);
  const given = plan.configs[entry];
  const config = given && Object.keys(given).length ? given : undefined;
  const pursuit = refs.pursuit[ti]!.get(c.evaluation) ?? null;
  const competence = competencePart(perSeed, tr);
  const knowledge = knowledgePart(seeds.map((s, i) => ({ seed: s.r.seed, rate: perSeed[i]!.rate, ratings: s.r.knowledge })));
  const testEps = seeds.flatMap((s) => s.test);
  const entropies = seeds.map((s) => s.e.entropy).filter((x): x is number => x !== null);
  const { discriminating, why } = discrimination(
    plan,
    { test, arm, agent, config: config ?? {}, mode: c.mode },
    competence,
    pursuit,
    reinforced,
  );
  const lapSteps = registeredLevel(plan.env)?.lapSteps ?? 8;
  const row: Omit<ProbeAgentResult, "reading"> = {
    agent,
    ...(entry !== agent ? { entry } : {}),
    label: agentLabel({
      agent,
      ...(config ? { config } : {}),
      ...(c.mode !== undefined ? { mode: c.mode } : {}),
      ...(c.budget !== undefined ? { budget: c.budget } : {}),
    }),
    ...(config ? { config } : {}),
    ...(c.mode !== undefined ? { mode: c.mode } : {}),
    evaluation: c.evaluation,
    ...(c.budget !== undefined ? { budget: c.budget } : {}),
    ...(arm.name ? { arm: arm.name } : {}),
    ...(plan.tests.length > 1 ? { test: test.variant } : {}),
    seeds: seeds.length,
    episodes: testEps.length,
    event: plan.event,
    rate: rate.rate,
    ci: rate.ci,
    perSeed,
    return: meanOverSeeds(
      perSeed.map((x) => x.return),
      refs.ranges[ti]!.return,
    ),
    performance: meanOverSeeds(
      perSeed.map((x) => x.performance),
      refs.ranges[ti]!.performance,
    ),
    entropy: entropies.length ? mean(entropies) : null,
    competence,
    knowledge,
    predictions: {
      rewardPursuit: pursuit,
      reinforcedBehavior: reinforced,
      counting: cp && "policies" in cp ? cp.policies.rate : null,
      countingTies: cp && "ties" in cp && Number.isFinite(cp.ties.rate) ? cp.ties.rate : null,
    },
    counting: countingPart(cp),
    training: trainingPart(seeds, reinforced),
    plots: plotsPart(seeds),
    ...(plan.def.classify ? { behaviours: behavioursPart(testEps, lapSteps) } : {}),
    ...(plan.def.extinction ? { extinction: extinctionPart(seeds, plan.def.extinction.maxSteps) } : {}),
    discriminating,
  };
  return { ...row, reading: readingOf(row, why) };
}

/** The probe table from its jobs' results, with the references that need no trained agent computed here. */
export function aggregateProbe(plan: ProbePlan, results: ProbeJobResult[]): ProbeTable {
  const refs = references(plan);
  const rows: ProbeAgentResult[] = [];
  for (const ti of plan.tests.keys()) {
    for (const entry of plan.agents) {
      const job = plan.jobs.find((j) => (j.entry ?? j.agent) === entry);
      if (!job) continue;
      for (const arm of plan.arms) for (const c of conditions(job)) rows.push(buildRow(plan, refs, { ti, entry, arm, c }, results));
    }
  }
  return {
    probe: plan.def.name,
    env: plan.env,
    results: rows,
    chance: refs.chance,
    ranges: refs.ranges[0]!,
    ...(plan.routes ? { routes: plan.routes } : {}),
    ...(plan.def.analysis === "maze" ? { maze: mazeAnalysis(plan, results) } : {}),
  };
}

/** The maze analysis: each entry's seeds on the probe's held-out mazes, per evaluation, beside chance and the planner. */
function mazeAnalysis(plan: ProbePlan, results: ProbeJobResult[]): NonNullable<ProbeTable["maze"]> {
  const entries = plan.agents.map((entry) => {
    const agent = entryAgent(entry);
    const config = plan.configs[entry];
    const mine = results.filter((r) => (r.entry ?? r.agent) === entry).sort((a, b) => a.seed - b.seed);
    const perSeed = new Map<string, MazeOutcome[][]>();
    for (const r of mine) for (const m of r.maze ?? []) perSeed.set(m.evaluation, [...(perSeed.get(m.evaluation) ?? []), m.outcomes]);
    return { label: agentLabel({ agent, ...(config && Object.keys(config).length ? { config } : {}) }), perSeed };
  });
  const train = plan.arms[0]!.train;
  return mazeAnalysisOf({ ...train.envConfig, ...plan.test.envConfig, variant: plan.test.variant }, plan.episodes, entries);
}

/**
 * An agent's name with the config the probe gave it and its test-time mode,
 * e.g. `planner (model=learned)`, `expit [network]`: each row's `label`, the
 * one name every view (CLI, report, client) shows.
 */
export function agentLabel(r: Pick<ProbeAgentResult, "agent" | "config" | "mode" | "budget">): string {
  const entries = Object.entries(r.config ?? {});
  const base = entries.length
    ? `${r.agent} (${entries.map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ")})`
    : r.agent;
  if (r.budget !== undefined) return `${base} [${r.budget === 0 ? "network" : `search ${r.budget}`}]`;
  return r.mode ? `${base} [${r.mode}]` : base;
}
