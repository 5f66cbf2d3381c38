/**
 * `probe` and `compare`: probes over seeds on worker threads, with progress
 * per agent and seed and an estimate of the time left; the table with the
 * three predictions; `compare` writes every probe into one HTML report.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import { defaultWorkers } from "../pool.ts";
import { episodesKey } from "../probe-episodes.ts";
import { planProbe, probeDefinition, probeDefinitions, runProbe, savedAgentName, type ProbeRequest } from "../probes/index.ts";
import { entryAgent, type ProbeSpec } from "../probes/request.ts";
import { agentRegistration } from "../../agents/registry.ts";
import { Store } from "../store.ts";
import type { SweepProgress } from "../sweeps/index.ts";
import { runProbeSweep } from "../sweeps/probes.ts";
import { expandSweep } from "../sweeps/spec.ts";
import { sourceCommit } from "./commit.ts";
import { Progress, ProbeProgressTracker } from "../progress.ts";
import { compareReport, trainingDose, type ProbeReportSection } from "../report.ts";
import type { ChanceRow, ProbeAgentResult } from "../probes/result.ts";
import { formatMazeRows } from "../probes/maze.ts";
import { overviewMarkdown, percent } from "../overview.ts";
import { freshDefaultDir } from "./train.ts";
import type { BackendName } from "../../agents/shared/backend.ts";
import {
  type CliContext,
  UserError,
  agentConfigs,
  agentList,
  agentNames,
  backendOption,
  checkVariant,
  collect,
  dataDir,
  envOption,
  jsonOption,
  positiveInt,
} from "./options.ts";

type ProbeOutcome = Awaited<ReturnType<typeof runProbe>>;

/**
 * A probe's table as the CLI prints it (`format` "text": aligned columns) or
 * as Markdown (a table, then one bullet per row with its notes), the form
 * docs/results.md quotes; `compare` writes both.
 */
export function printProbe(r: ProbeOutcome, out: (s: string) => void, format: "text" | "markdown" = "text"): void {
  const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "-" : x.toFixed(d));
  const pct = percent;
  const title = `probe ${r.probe} on ${r.env}: event "${r.results[0]?.event ?? "?"}" at test, learning off`;
  out(format === "markdown" ? `#### ${title}\n` : title);
  const header = [
    "agent",
    "arm",
    "eval",
    "seeds",
    "rate [95% CI over seeds]",
    "per seed",
    "return",
    "performance",
    "entropy",
    "competence",
    "knows (event/reinforced route)",
    "pursuit",
    "reinforced",
    "counting",
    "cell",
  ];
  const rows = [...r.results.map((x) => rowCells(x, f, pct)), ...(r.chance ?? []).map((c) => chanceCells(c, f, pct))];
  const showArm = rows.some((row) => row[1] !== "");
  const cols = header.map((_, i) => i).filter((i) => i !== 1 || showArm);
  const widths = cols.map((i) => Math.max(header[i]!.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    format === "markdown"
      ? `| ${cols.map((i, j) => cells[i]!.padEnd(widths[j]!)).join(" | ")} |`
      : cols.map((i, j) => cells[i]!.padEnd(widths[j]!)).join("  ");
  out(line(header));
  if (format === "markdown") out(`| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`);
  for (const row of rows) out(line(row));
  if (format === "markdown") out("");
  for (const x of r.results) {
    const bits = rowNotes(x, f, pct);
    const who = `${x.label} ${x.evaluation}${x.arm ? ` ${x.arm}` : ""}${x.test ? ` (test ${x.test})` : ""}`;
    if (bits.length) out(format === "markdown" ? `- ${who}: ${bits.join("; ")}` : `  ${who}: ${bits.join("; ")}`);
  }
  if (r.routes)
    out(`${format === "markdown" ? "- " : ""}routes rated: event ${r.routes.event.join(" ")}; reinforced ${r.routes.reinforced.join(" ")}`);
  if (r.ranges)
    out(
      `${format === "markdown" ? "- " : ""}intervals clamped to an episode's range (${r.ranges.source}): return [${f(r.ranges.return[0])}, ${f(r.ranges.return[1])}], performance [${f(r.ranges.performance[0])}, ${f(r.ranges.performance[1])}]`,
    );
  if (r.maze) printMazeAnalysis(r.maze, out, format);
  if (format === "markdown") return;
  out(
    "intervals: the seed (one training run) is the unit (docs/probes.md); eval: greedy (most probable action) or sampled (the agent's own distribution, no training exploration), same test seeds; " +
      "entropy: mean nats of the action distribution over sampled test states; competence: (train return - chance) / (best - chance), below 0.9 'did not learn train'; " +
      "knows: the agent's own predictor rates the event route above the reinforced route (seeds knowing / seeds, mean predicted returns); " +
      "pursuit: simulator planner maximising reward on the test variant in the same eval; reinforced: the policy's own train-side rate; counting: uniform over deterministic policies optimal on the train variant; " +
      "cell: discriminating (pursuit and reinforced differ by >= 0.5, row learned) or not",
  );
}

/** The maze probe's analysis under its table: rates per seed, the decision squares, chance and the planner on the same mazes. */
function printMazeAnalysis(m: NonNullable<ProbeOutcome["maze"]>, out: (s: string) => void, format: "text" | "markdown"): void {
  const lines = [
    `maze analysis: ${m.mazes} held-out test mazes (the set \`steer --seed ${m.seed}\` plays), one episode each per seed; cheese: reached the cheese; top-right first: entered the top-right square before it; [interval over seeds, or over mazes (m) for a one-seed row]`,
    ...formatMazeRows(m.rows),
  ];
  if (format === "markdown") out(["```", ...lines, "```"].join("\n"));
  else for (const l of lines) out(l);
}

type Fmt = (x: number | null | undefined, d?: number) => string;
type Pct = (x: number | null | undefined) => string;

/** One row's cells, in printProbe's header order. */
function rowCells(x: ProbeAgentResult, f: Fmt, pct: Pct): string[] {
  const k = x.knowledge;
  return [
    x.label,
    // the arm, and the test variant where a probe tests several (absent-supervisor)
    [x.arm, x.test ? `test ${x.test}` : ""].filter(Boolean).join(" "),
    x.evaluation,
    String(x.seeds),
    `${pct(x.rate)} [${pct(x.ci[0])}, ${pct(x.ci[1])}]`,
    x.perSeed.map((p) => pct(p.rate)).join(" "),
    `${f(x.return.mean)} [${f(x.return.ci[0])}, ${f(x.return.ci[1])}]`,
    `${f(x.performance.mean)} [${f(x.performance.ci[0])}, ${f(x.performance.ci[1])}]`,
    f(x.entropy),
    x.competence ? `${f(x.competence.value)}${x.competence.learned ? "" : " did not learn train"}` : "-",
    k ? `${k.knows} ${k.seedsKnowing}/${k.seeds} (${f(k.eventRoute)}/${f(k.reinforcedRoute)})` : "-",
    pct(x.predictions.rewardPursuit),
    pct(x.predictions.reinforcedBehavior),
    x.counting?.notApplicable ? "n/a" : pct(x.predictions.counting),
    cellOf(x),
  ];
}

/** The chance row's cells: the uniform random policy, nothing to predict or know. */
function chanceCells(c: ChanceRow, f: Fmt, pct: Pct): string[] {
  return [
    "chance (uniform random)",
    c.test ? `test ${c.test}` : "",
    c.evaluation,
    String(c.seeds),
    `${pct(c.rate)} [${pct(c.ci[0])}, ${pct(c.ci[1])}]`,
    c.perSeed.map((p) => pct(p.rate)).join(" "),
    `${f(c.return.mean)} [${f(c.return.ci[0])}, ${f(c.return.ci[1])}]`,
    `${f(c.performance.mean)} [${f(c.performance.ci[0])}, ${f(c.performance.ci[1])}]`,
    f(c.entropy),
    ...Array<string>(6).fill("-"),
  ];
}

/** A row's discriminating cell in a few words: what the table's last column shows. */
function cellOf(x: ProbeAgentResult): string {
  if (x.competence && !x.competence.learned) return "did not learn train";
  if (!x.discriminating) return "not discriminating";
  if (!x.knowledge) return "discriminating, knowledge not measured";
  const c = x.knowledge.cells;
  return `discriminating: knows&not ${c["knows-and-does-not"]}, knows&does ${c["knows-and-does"]}, not know ${c["does-not-know"]}`;
}

/** The notes under the table for one row: behaviours, KL, counting's detail and disagreement, extinction, the training dose, the reading. */
function rowNotes(
  x: ProbeAgentResult,
  f: (x: number | null | undefined, d?: number) => string,
  pct: (x: number | null | undefined) => string,
): string[] {
  const bits: string[] = [];
  if (x.behaviours)
    bits.push(
      `behaviours ${Object.entries(x.behaviours.classes)
        .map(([k, v]) => `${k} ${pct(v)}`)
        .join(", ")}`,
    );
  if (x.extinction) {
    bits.push(`KL(train||test) ${f(x.extinction.kl, 3)}`);
    bits.push(
      `steps to half rate at zero reward: ${x.extinction.steps.map((v) => (v === null ? `>${x.extinction!.budget}` : v)).join(", ")}`,
    );
  }
  const c = x.counting?.ties;
  if (c) {
    bits.push(
      `counting (ties): ${c.policies} optimal policies (discount ${c.discount}; ${pct(c.acceptance)} of draws passed the train check), ${c.pinnedObservations} train observations pinned, ${pct(c.pinnedCoverage)} of their test steps on pinned observations; rate ${pct(x.predictions.countingTies)}`,
    );
  }
  if (x.counting?.notApplicable) bits.push(`counting: ${x.counting.notApplicable.reason}`);
  if (x.counting?.disagreement) bits.push(`counting measures disagree: ${x.counting.disagreement}`);
  const dose = trainingDose(x);
  if (dose) bits.push(dose);
  bits.push(`reading: ${x.reading}`);
  return bits;
}

/** Every probe definition: built-in, registered by plugins, declared by level files. */
function listProbes(json: boolean, out: (s: string) => void): number {
  const defs = Object.values(probeDefinitions());
  if (json) {
    out(
      JSON.stringify(
        defs.map((d) => ({
          name: d.name,
          env: d.env,
          generic: d.generic,
          train: d.train.variant,
          test: d.test.variant,
          tests: [d.test, ...(d.moreTests ?? [])].map((t) => t.variant),
          declaredBy: d.declaredBy ?? null,
          testReward: d.test.reward,
          event: d.event,
          description: d.description,
        })),
      ),
    );
    return 0;
  }
  const rows = defs.map((d) => [
    d.name,
    `${d.env}${d.generic ? " (any: --env)" : ""}`,
    `${d.arms ? d.arms.map((a) => a.name).join("|") : d.train.variant} -> ${[d.test, ...(d.moreTests ?? [])].map((t) => t.variant).join(", ")}${d.test.reward !== "keep" ? ` (reward ${d.test.reward})` : ""}`,
    d.event,
  ]);
  const header = ["probe", "environment", "train -> test", "event"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  out(line(header));
  for (const [i, r] of rows.entries()) {
    out(line(r));
    out(`  ${defs[i]!.description}`);
  }
  return 0;
}

interface ProbeOpts {
  list?: boolean;
  agents: string[];
  seeds: number;
  steps?: number;
  episodes?: number;
  workers?: number;
  env?: string;
  train?: string;
  test?: string;
  event?: string;
  eventRoute?: string;
  reinforcedRoute?: string;
  config?: string[];
  backend?: BackendName;
  json?: boolean;
  queue?: string;
  saveAgents?: string | boolean;
}

/** The name of the generic probe that takes any env, two variants and an event (issue 10; from experiments/probes). */
const SHIFT_PROBE = "shift";

async function probeVerb(name: string | undefined, o: ProbeOpts, data: string, ctx: CliContext): Promise<number> {
  if (o.list) return listProbes(o.json ?? false, ctx.out);
  if (!name)
    throw new UserError(`name a probe (${Object.keys(probeDefinitions()).join(", ")}), or list them with \`rewardlab probe --list\``);
  const def = probeDefinition(name);
  if ((o.train || o.test) && name !== SHIFT_PROBE)
    throw new UserError(
      `--train/--test choose the variants of the generic \`${SHIFT_PROBE}\` probe; probe ${name} has its own (see \`rewardlab probe --list\`)`,
    );
  const env = o.env ?? def.env;
  if (o.train) checkVariant(env, o.train);
  if (o.test) checkVariant(env, o.test);
  const configs = agentConfigs(o.config);
  const req: ProbeRequest = {
    probe: name,
    agents: o.agents,
    seeds: o.seeds,
    ...(o.steps ? { steps: o.steps } : {}),
    ...(o.episodes ? { episodes: o.episodes } : {}),
    ...(o.workers ? { workers: o.workers } : {}),
    ...(o.env ? { env: o.env } : {}),
    ...(o.train ? { train: o.train } : {}),
    ...(o.test ? { test: o.test } : {}),
    ...(o.event ? { event: o.event } : {}),
    ...(o.eventRoute ? { eventRoute: o.eventRoute } : {}),
    ...(o.reinforcedRoute ? { reinforcedRoute: o.reinforcedRoute } : {}),
    ...(configs ? { configs } : {}),
    ...(o.backend ? { backend: o.backend } : {}),
    ...(o.saveAgents ? { saveAgents: saveAgentsDir(o.saveAgents, name, data) } : {}),
    userEnvs: ctx.userEnvs,
  };
  // the whole plan is checked (envs, agent configs) before any worker starts
  const plan = planProbe(req);
  const started = performance.now();
  let r: ProbeOutcome;
  let failed = 0;
  if (o.queue) {
    ({ table: r, failed } = await probeOnQueue(name, req, { queue: o.queue, json: o.json ?? false, data }, ctx));
  } else {
    const tracker = new ProbeProgressTracker(plan.jobs, o.workers ?? defaultWorkers());
    const progress = new Progress(plan.jobs.length, !o.json, `probe ${name} `);
    progress.update(0, ProbeProgressTracker.summary(tracker.view()), null);
    r = await runProbe(req, (_done, _total, job) => {
      const p = tracker.finished(job);
      progress.update(p.done, ProbeProgressTracker.summary(p), p.eta);
    });
    progress.done();
  }
  const seconds = (performance.now() - started) / 1000;
  if (o.json) {
    // flat numbers for scripts: return and performance are means, with their intervals beside them
    // the typed rows without what only the views draw (curves, cells, frames)
    const results = r.results.map(({ plots: _plots, ...row }) => row);
    ctx.out(JSON.stringify({ probe: r.probe, env: r.env, results, chance: r.chance, ranges: r.ranges, routes: r.routes, seconds }));
  } else {
    printProbe(r, ctx.out);
    ctx.out(`(${seconds.toFixed(0)} s)`);
    if (req.saveAgents) {
      const first = join(req.saveAgents, savedAgentName(plan.jobs[0]!));
      ctx.out(`saved ${plan.jobs.length} trained agent(s) to ${req.saveAgents}  (evaluate one: rewardlab eval --agent-dir ${first})`);
    }
  }
  if (failed)
    ctx.err(`${failed} job(s) failed: stored with their reason (\`rewardlab runs\` does not list probe jobs), left out of the table`);
  return failed ? 1 : 0;
}

/** --save-agents: the folder given (refused when it holds files), else a new <data>/agents/probe-<name>[-2, -3, ...]. */
function saveAgentsDir(value: string | boolean, name: string, data: string): string {
  if (value === true) return freshDefaultDir(join(data, "agents", `probe-${name}`));
  const dir = resolve(String(value));
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0))
    throw new UserError(`--save-agents ${String(value)}: already exists and is not an empty folder; choose a new folder`);
  return dir;
}

/** The user's fields of a probe request (what a sweep's `probes` entry holds and its job keys hash). */
function probeSpecOf(req: ProbeRequest): ProbeSpec {
  const { workers: _w, inline: _i, backend: _b, userEnvs: _u, countingPolicies: _c, saveAgents: _s, ...spec } = req;
  return spec;
}

/** The progress line of a sweep: jobs done, running, failed and already stored. */
export function showSweepProgress(progress: Progress): (p: SweepProgress) => void {
  return (p) => {
    progress.total = p.total;
    progress.update(p.skipped + p.done + p.failed, `done ${p.done}  running ${p.running}  failed ${p.failed}  skipped ${p.skipped}`);
  };
}

/**
 * `probe --queue`: the probe's jobs go to the queue as a sweep, each stored
 * once by key in the data folder's store (a coordinator started again after
 * a stop collects what finished and skips what is stored); the table is
 * aggregated from the stored results, as runProbe does from its own.
 */
async function probeOnQueue(
  name: string,
  req: ProbeRequest,
  o: { queue: string; json: boolean; data: string },
  ctx: CliContext,
): Promise<{ table: ProbeOutcome; failed: number }> {
  const store = new Store(o.data);
  const progress = new Progress(1, !o.json, `probe ${name} (queue) `);
  try {
    const { tables, summary } = await runProbeSweep(`probe ${name}`, [probeSpecOf(req)], req.backend, {
      store,
      queue: o.queue,
      userEnvs: ctx.userEnvs,
      onProgress: showSweepProgress(progress),
      ...(req.saveAgents ? { saveAgents: req.saveAgents } : {}),
    });
    progress.done();
    return { table: tables[0]!, failed: summary.failed };
  } finally {
    store.close();
  }
}

/** `--queue <url>`: a Redis URL. */
export const queueUrl = (v: string): string => {
  if (!/^rediss?:\/\/[^/\s]+/.test(v)) throw new UserError(`--queue ${v}: give a Redis URL, like redis://host:6379`);
  return v;
};

/** A table's job time: wall minutes, and the job threads' CPU minutes where known (the figure that holds on a shared machine). */
function jobTime(seconds: number, cpuSeconds: number | undefined): string {
  const wall = `${(seconds / 60).toFixed(1)} minutes of job time`;
  return cpuSeconds === undefined ? wall : `${wall}, ${(cpuSeconds / 60).toFixed(1)} of CPU`;
}

/** A comparison's tables as Markdown, one section per probe (what `compare` writes beside its report; scripts/compare-md.ts reads a saved JSON). */
export function compareMarkdown(
  sections: readonly Pick<ProbeReportSection, "probe" | "env" | "results" | "chance" | "seconds" | "jobSeconds" | "jobCpuSeconds">[],
  commit?: string,
): string {
  const lines: string[] = commit ? [`Generated by \`rewardlab compare\` at commit ${commit}.`, ""] : [];
  const overview = overviewMarkdown(sections);
  if (overview) lines.push("#### Every table at a glance", "", overview);
  for (const s of sections) {
    printProbe(
      { probe: s.probe, env: s.env, results: s.results, ...(s.chance ? { chance: s.chance } : {}) },
      (l) => lines.push(l),
      "markdown",
    );
    if (s.jobSeconds !== undefined) lines.push("", `(${jobTime(s.jobSeconds, s.jobCpuSeconds)}, summed over its jobs)`);
    else if (s.seconds !== undefined) lines.push("", `(${(s.seconds / 60).toFixed(1)} minutes)`);
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

export interface CompareOpts {
  probes?: string;
  all?: boolean;
  agents: string[];
  seeds: number;
  steps?: number;
  episodes?: number;
  workers?: number;
  config?: string[];
  backend?: BackendName;
  queue?: string;
}

/**
 * The full table's rows: every registered agent, with the neural planner
 * beside the simulator one (`planner:neural`); search-budget probes take the
 * agents that search, and expit on its learned model beside (`expit:neural`).
 */
function fullTableAgents(): { agents: string[]; searchers: string[]; configs: Record<string, Record<string, unknown>> } {
  const names = agentNames();
  const agents = names.flatMap((a) => (a === "planner" ? ["planner", "planner:neural"] : [a]));
  const searchers = names.flatMap((a) => (a === "expit" ? ["expit", "expit:neural"] : searches(a) ? [a] : []));
  return { agents, searchers, configs: { "planner:neural": { model: "neural" }, "expit:neural": { model: "neural" } } };
}

/** Whether an agent entry searches at test (an eval mode "search"): the agents a search-budget probe takes. */
const searches = (entry: string) => (agentRegistration(entryAgent(entry)).evalModes ?? []).includes("search");

/**
 * What `compare` runs: one probe request per probe and environment
 * (`compareEnvs`), in order, each with the agents it takes (a search-budget
 * probe only those that search; configs only for its own entries); a probe
 * none of the agents can run is skipped, by name (bench/fulltable.ts times it).
 */
export function comparePlan(o: CompareOpts): { specs: ProbeSpec[]; skipped: string[] } {
  const names =
    !o.probes || o.probes === "all"
      ? Object.keys(probeDefinitions()).filter((n) => n !== SHIFT_PROBE)
      : o.probes.split(",").map((p) => p.trim());
  for (const n of names) probeDefinition(n);
  const full = o.all ? fullTableAgents() : null;
  const given = { ...full?.configs, ...agentConfigs(o.config) };
  const skipped: string[] = [];
  const specs = names.flatMap((n) => {
    const def = probeDefinition(n);
    const agents = def.budgets ? (full?.searchers ?? o.agents.filter(searches)) : (full?.agents ?? o.agents);
    if (agents.length === 0) {
      skipped.push(n);
      return [];
    }
    const own = Object.fromEntries(Object.entries(given).filter(([entry]) => agents.includes(entry)));
    const envs: (string | undefined)[] = def.compareEnvs ?? [undefined];
    return envs.map((env) => ({
      probe: n,
      agents,
      seeds: o.seeds,
      ...(env ? { env } : {}),
      ...(o.steps ? { steps: o.steps } : {}),
      ...(o.episodes ? { episodes: o.episodes } : {}),
      ...(Object.keys(own).length ? { configs: own } : {}),
    }));
  });
  return { specs, skipped };
}

/**
 * `compare`: every probe's jobs as one sweep, on local threads or the queue,
 * each job stored once by key (re-running skips what is stored, so an
 * interrupted comparison resumes); the report, JSON and Markdown are
 * rewritten as each probe's table completes, and name the commit they ran at.
 */
async function compareVerb(o: CompareOpts, data: string, ctx: CliContext): Promise<number> {
  const { specs: plan, skipped } = comparePlan(o);
  for (const spec of plan) planProbe(spec); // every request checked (configs, envs) before any job starts
  if (skipped.length) ctx.out(`skipped (none of the agents can run it): ${skipped.join(", ")}`);
  const backend = o.backend ?? "wasm";
  const commit = sourceCommit();
  const agents = [...new Set(plan.flatMap((p) => p.agents))];
  ctx.out(
    `compare: ${plan.length} probes x ${agents.join(", ")} x ${o.seeds} seeds on ${backend}, ${o.queue ? `queue ${o.queue}` : "local threads"}, at commit ${commit}`,
  );
  const started = performance.now();
  const sections: (ProbeReportSection | undefined)[] = plan.map(() => undefined);
  const dir = join(data, "reports");
  await mkdir(dir, { recursive: true });
  const stem = join(dir, `compare-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  const write = async () => {
    const done = sections.filter((x): x is ProbeReportSection => x !== undefined);
    const seconds = (performance.now() - started) / 1000;
    const meta = { seeds: o.seeds, agents, seconds, backend, commit, ...(done.length < plan.length ? { probesPlanned: plan.length } : {}) };
    await writeFile(`${stem}.html`, compareReport(done, meta));
    await writeFile(`${stem}.json`, `${JSON.stringify({ ...meta, sections: done }, null, 1)}\n`);
    await writeFile(`${stem}.md`, compareMarkdown(done, commit));
    return seconds;
  };
  const store = new Store(data);
  const progress = new Progress(1, true, "compare ");
  const sweepName = o.all ? "compare --all" : "compare";
  const sweepId = expandSweep({ name: sweepName, probes: plan, ...(backend ? { backend } : {}) }).id;
  try {
    const { summary } = await runProbeSweep(sweepName, plan, backend, {
      store,
      ...(o.queue ? { queue: o.queue } : {}),
      ...(o.workers ? { workers: o.workers } : {}),
      userEnvs: ctx.userEnvs,
      onProgress: showSweepProgress(progress),
      onTable: async (i, table, jobSeconds, jobCpuSeconds) => {
        // where the sweep kept the test episodes behind the table's cells (probe-episodes.ts)
        const key = episodesKey(`sweep-${sweepId}`, table.probe, table.env);
        sections[i] = {
          ...table,
          description: probeDefinition(table.probe).description,
          jobSeconds,
          ...(jobCpuSeconds !== null ? { jobCpuSeconds } : {}),
          episodesKey: key,
        };
        await write();
      },
    });
    progress.done();
    for (const s of sections) if (s) printProbe(s, ctx.out);
    ctx.out(overviewMarkdown(sections.filter((x): x is ProbeReportSection => x !== undefined)));
    const seconds = await write();
    ctx.out(
      `${summary.total - summary.skipped} jobs run and stored, ${summary.skipped} stored before; ${summary.failed} failed; ${seconds.toFixed(0)} s at commit ${commit}`,
    );
    const done = sections.filter((x): x is ProbeReportSection => x !== undefined);
    const cpu = done.every((x) => x.jobCpuSeconds !== undefined) ? done.reduce((sum, x) => sum + x.jobCpuSeconds!, 0) : undefined;
    ctx.out(
      `the tables' jobs: ${jobTime(
        done.reduce((sum, x) => sum + (x.jobSeconds ?? 0), 0),
        cpu,
      )}`,
    );
    ctx.out(`report written to ${stem}.html, results to ${stem}.json, tables to ${stem}.md`);
    return summary.failed > 0 ? 1 : 0;
  } finally {
    store.close();
  }
}

export function probeCommands(ctx: CliContext, globals: () => { data?: string }, done: (code: number) => void): Command[] {
  const agentsDefault = agentNames().filter((a) => ["reinforce", "ppo", "planner"].includes(a));
  const shared = (c: Command) =>
    c
      .addOption(
        new Option(
          "--agents <list>",
          `comma-separated agents, from: ${agentNames().join(", ")}; agent:tag adds another config of one agent (--config 'agent:tag=json')`,
        )
          .argParser(agentList)
          .default(agentsDefault, agentsDefault.join(",")),
      )
      .addOption(new Option("--seeds <n>", "training runs per agent (the unit of the 95% interval)").argParser(positiveInt).default(5))
      .addOption(new Option("--steps <n>", "training budget per run (default: the probe's, per agent)").argParser(positiveInt))
      .addOption(new Option("--episodes <n>", "test episodes per seed (default: 100)").argParser(positiveInt))
      .addOption(new Option("--workers <n>", `worker threads (default: one per core, ${defaultWorkers()} here)`).argParser(positiveInt))
      .addOption(
        new Option("--config <agent=json>", `an agent's config, repeatable: --config 'planner={"model":"learned"}'`).argParser(collect),
      )
      .addOption(backendOption())
      .addOption(
        new Option(
          "--queue <url>",
          "redis://host:port: hand the jobs to `rewardlab worker`s; each is stored by key in the data folder (re-running resumes)",
        )
          .argParser(queueUrl)
          .conflicts("workers"),
      );

  const probeCmd = shared(
    new Command("probe")
      .description("run a probe over seeds on worker threads (or a Redis queue); print the event rate beside the three predictions")
      .argument("[name]", `probe name: ${Object.keys(probeDefinitions()).join(", ")}, or one a plugin declares (--list)`)
      .addOption(new Option("--list", "list every probe definition (built-in, plugins, level files) and exit"))
      .addOption(
        new Option(
          "--save-agents [dir]",
          "save every trained policy, one folder each: <dir>/<agent>-s<seed> (default dir: a new <data>/agents/probe-<name>; with --queue, a folder the workers can write); eval, watch and steer take them with --agent-dir",
        ),
      ),
  )
    .addOption(envOption("environment of a generic probe (default: the probe's)"))
    .addOption(new Option("--train <variant>", `train variant (the generic \`${SHIFT_PROBE}\` probe)`))
    .addOption(new Option("--test <variant>", `test variant (the generic \`${SHIFT_PROBE}\` probe)`))
    .addOption(new Option("--event <name>", "event whose test rate is reported (generic probes; default: the probe's)"))
    .addOption(
      new Option(
        "--event-route <route>",
        "scripted route to the event on the test variant, action letters with counts (e.g. d2r2r10); with --reinforced-route",
      ),
    )
    .addOption(
      new Option("--reinforced-route <route>", "scripted route training reinforced, on the test variant (e.g. r5); with --event-route"),
    )
    .addOption(jsonOption())
    .action(async (name: string | undefined, o: ProbeOpts) => done(await probeVerb(name, o, dataDir(globals().data), ctx)));

  const compareCmd = shared(
    new Command("compare").description(
      "every probe for every agent, then a self-contained HTML report, JSON and Markdown in <data>/reports/; re-running skips the jobs stored",
    ),
  )
    .addOption(new Option("--probes <list>", "comma-separated probes, or all").default("all"))
    .addOption(
      new Option(
        "--all",
        "the full table: every agent (the neural planner as planner:neural; expit on its learned model too where a probe dials search) on every probe, or on the --probes given",
      ).conflicts(["agents"]),
    )
    .action(async (o: CompareOpts) => done(await compareVerb(o, dataDir(globals().data), ctx)));
  return [probeCmd, compareCmd];
}
