/**
 * The `rewardlab` command line. Each verb is a small function; they all
 * consume the same run event stream as the store and the server.
 */
import { readFile, mkdir, writeFile } from "node:fs/promises";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { join, resolve } from "node:path";
import "../envs/index.ts";
import "../agents/index.ts";
import { make, registered, specOf } from "../envs/registry.ts";
import { toAscii } from "../envs/ascii.ts";
import { RewardlabError } from "../envs/errors.ts";
import { loadAgent } from "../agents/registry.ts";
import { initBackend } from "../agents/backend.ts";
import { Run, agentEnvInfo, evaluate, resolveRunSpec } from "./run.ts";
import type { EvaluationStats, RunEvent } from "./events.ts";
import { deriveSeed } from "../envs/rng.ts";
import { Progress } from "./progress.ts";
import { loadUserEnvironments, type UserEnvironments } from "./plugins.ts";
import { agentLabel, probeDefinition, probes, runProbe } from "./probes/index.ts";
import { Store } from "./store.ts";
import { compareReport, runReport, type ProbeReportSection } from "./report.ts";
import { runSweep } from "./sweeps/index.ts";
import { startQueueWorker } from "./sweeps/queue.ts";

type Verb = (argv: string[]) => Promise<number>;

/** The --levels/--plugin options, handed on to worker threads. */
let currentUserEnvs: UserEnvironments = {};

const out = (s: string) => process.stdout.write(s + "\n");
const err = (s: string) => process.stderr.write(s + "\n");

function parse<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T, allowPositionals = true) {
  return parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals, strict: true });
}

function intArg(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new RewardlabError(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

/** `--config agent=JSON`, repeatable: agent configs for probes, e.g. --config 'planner={"model":"learned"}'. */
function agentConfigs(values: string[] | undefined): Record<string, Record<string, unknown>> | undefined {
  if (!values?.length) return undefined;
  const configs: Record<string, Record<string, unknown>> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new RewardlabError(`--config takes agent=JSON (e.g. --config 'planner={"model":"learned"}'), got "${v}"`);
    const agent = v.slice(0, eq).trim();
    let config: unknown;
    try {
      config = JSON.parse(v.slice(eq + 1));
    } catch (e) {
      throw new RewardlabError(`--config ${agent}=...: not JSON (${(e as Error).message})`);
    }
    if (config === null || typeof config !== "object" || Array.isArray(config))
      throw new RewardlabError(`--config ${agent}=...: must be a JSON object`);
    configs[agent] = { ...configs[agent], ...(config as Record<string, unknown>) };
  }
  return configs;
}

// ---------------------------------------------------------------- envs

const envsVerb: Verb = async () => {
  const rows = registered().map((r) => [r.id, r.variants.join(","), r.description]);
  const w0 = Math.max(2, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(8, ...rows.map((r) => r[1]!.length));
  out(`${"id".padEnd(w0)}  ${"variants".padEnd(w1)}  description`);
  for (const [id, variants, desc] of rows) out(`${id!.padEnd(w0)}  ${variants!.padEnd(w1)}  ${desc}`);
  return 0;
};

// ---------------------------------------------------------------- play

const playVerb: Verb = async (argv) => {
  const { values, positionals } = parse(argv, {
    actions: { type: "string", short: "a" },
    variant: { type: "string" },
    seed: { type: "string" },
    json: { type: "boolean" },
  });
  const id = positionals[0];
  if (!id || values.actions === undefined) {
    err("usage: rewardlab play <env-id> --actions <string> [--variant V] [--seed N] [--json]");
    return 2;
  }
  const env = make(id, values.variant ? { variant: values.variant } : {});
  const labels = env.actionSpace.labels;
  const byChar = new Map<string, number>();
  labels.forEach((label, i) => byChar.set(label === "noop" ? "n" : label[0]!, i));
  const actions = [...values.actions].map((c, i) => {
    const a = byChar.get(c);
    if (a === undefined) {
      throw new RewardlabError(
        `action '${c}' at position ${i + 1} is not an action of ${id}; use ${[...byChar.keys()].join("/")} (${labels.join(", ")})`,
      );
    }
    return a;
  });
  env.reset({ seed: intArg(values.seed, "seed", 0) });
  let ret = 0;
  let perf = 0;
  let steps = 0;
  let ended: "terminated" | "truncated" | null = null;
  const events: Record<string, number> = {};
  for (const a of actions) {
    const r = env.step(a);
    ret += r.reward;
    perf += r.info.performance;
    steps++;
    for (const e of r.info.events) events[e] = (events[e] ?? 0) + 1;
    if (r.terminated || r.truncated) {
      ended = r.terminated ? "terminated" : "truncated";
      break;
    }
  }
  const ignored = actions.length - steps;
  const round = (x: number) => Math.round(x * 1e6) / 1e6;
  if (values.json) {
    out(JSON.stringify({ env: id, return: round(ret), performance: round(perf), steps, events, ended, ignored }));
  } else {
    out(toAscii(env.render()));
    out(`return ${round(ret)}  performance ${round(perf)}  steps ${steps}${ended ? `  (${ended})` : ""}`);
    out(
      `events ${
        Object.keys(events).length
          ? Object.entries(events)
              .map(([k, v]) => `${k}=${v}`)
              .join(" ")
          : "none"
      }`,
    );
    if (ignored > 0) out(`${ignored} action(s) left over after the episode ended were ignored`);
  }
  return 0;
};

// ---------------------------------------------------------------- train / eval

function evalSummary(e: EvaluationStats) {
  return {
    episodes: e.episodes,
    return: e.return.mean,
    returnCI: e.return.ci,
    performance: e.performance.mean,
    performanceCI: e.performance.ci,
    length: e.length,
    events: e.events,
    eventRates: e.eventRates,
  };
}

function printEval(e: EvaluationStats): void {
  const f = (x: number) => x.toFixed(2);
  out(`evaluation: ${e.episodes} episodes on variant ${e.variant} (${e.greedy ? "greedy" : "sampled"} actions, learning off)`);
  out(`  return       ${f(e.return.mean)}  [${f(e.return.ci[0])}, ${f(e.return.ci[1])}]`);
  out(`  performance  ${f(e.performance.mean)}  [${f(e.performance.ci[0])}, ${f(e.performance.ci[1])}]`);
  out(`  length       ${f(e.length)}`);
  const evs = Object.keys(e.events).sort();
  for (const k of evs) out(`  ${k.padEnd(16)} ${f(e.events[k]!)} per episode, in ${(100 * e.eventRates[k]!).toFixed(0)}% of episodes`);
}

const trainVerb: Verb = async (argv) => {
  const { values } = parse(
    argv,
    {
      env: { type: "string" },
      variant: { type: "string" },
      agent: { type: "string" },
      config: { type: "string" },
      steps: { type: "string" },
      seed: { type: "string" },
      backend: { type: "string" },
      out: { type: "string" },
      episodes: { type: "string" },
      greedy: { type: "boolean" },
      json: { type: "boolean" },
    },
    false,
  );
  if (!values.env || !values.agent) {
    err(
      "usage: rewardlab train --env <id> [--variant V] --agent reinforce|ppo|planner [--config file.json] [--steps N] [--seed N] [--backend B] [--out DIR] [--json]",
    );
    return 2;
  }
  const backend = await initBackend(values.backend as "tensorflow" | "wasm" | "cpu" | undefined);
  const config = values.config ? JSON.parse(await readFile(values.config, "utf8")) : {};
  const spec = resolveRunSpec({
    env: values.env,
    ...(values.variant ? { variant: values.variant } : {}),
    agent: values.agent,
    config,
    seed: intArg(values.seed, "seed", 0),
    steps: intArg(values.steps, "steps", 100000),
    evalEpisodes: intArg(values.episodes, "episodes", 100),
    evalGreedy: values.greedy ?? false,
    checkpointEvery: 0,
    recordEveryMs: 0,
  });
  const dir = resolve(values.out ?? join("data", "agents", `${spec.env}-${spec.agent}-s${spec.seed}`));
  await mkdir(dir, { recursive: true });
  const run = new Run("cli", spec, { dir, backend });
  const progress = new Progress(spec.steps, !values.json);
  let recentReturn: number[] = [];
  let recentPerf: number[] = [];
  let failure: string | undefined;
  const started = performance.now();
  run.on((e: RunEvent) => {
    if (e.type === "episode") {
      recentReturn.push(e.episode.return);
      recentPerf.push(e.episode.performance);
      if (recentReturn.length > 100) {
        recentReturn = recentReturn.slice(-100);
        recentPerf = recentPerf.slice(-100);
      }
      const m = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      progress.update(e.episode.envSteps, `return ${m(recentReturn).toFixed(1)}  performance ${m(recentPerf).toFixed(1)}`);
    } else if (e.type === "status" && e.status === "failed") {
      failure = e.reason;
    }
  });
  const status = await run.execute();
  const seconds = (performance.now() - started) / 1000;
  progress.done();
  if (status !== "completed") {
    err(`run ${status}${failure ? `: ${failure}` : ""} (checkpoint, if any, in ${dir})`);
    return 1;
  }
  const stepsPerSecond = spec.steps / seconds;
  if (values.json) {
    out(
      JSON.stringify({
        env: spec.env,
        variant: spec.variant,
        agent: spec.agent,
        seed: spec.seed,
        steps: run.envSteps,
        stepsPerSecond,
        backend,
        dir,
        eval: run.evaluation ? evalSummary(run.evaluation) : null,
      }),
    );
  } else {
    out(
      `trained ${spec.agent} on ${spec.env} (${spec.variant}) for ${run.envSteps} steps in ${seconds.toFixed(1)} s (${stepsPerSecond.toFixed(0)} steps/s, backend ${backend}, seed ${spec.seed})`,
    );
    if (run.evaluation) printEval(run.evaluation);
    out(`saved to ${dir}`);
  }
  return 0;
};

const evalVerb: Verb = async (argv) => {
  const { values } = parse(
    argv,
    {
      "agent-dir": { type: "string" },
      env: { type: "string" },
      variant: { type: "string" },
      episodes: { type: "string" },
      seed: { type: "string" },
      backend: { type: "string" },
      greedy: { type: "boolean" },
      json: { type: "boolean" },
    },
    false,
  );
  if (!values["agent-dir"] || !values.env) {
    err("usage: rewardlab eval --agent-dir DIR --env <id> [--variant V] [--episodes N] [--json]");
    return 2;
  }
  const backend = await initBackend(values.backend as "tensorflow" | "wasm" | "cpu" | undefined);
  const dir = resolve(values["agent-dir"]);
  const meta = JSON.parse(await readFile(join(dir, "agent.json"), "utf8")) as { agent: string; config: Record<string, unknown> };
  const variant = values.variant ?? specOf(values.env).variants[0]!;
  const spec = { env: values.env, variant, envConfig: {}, config: meta.config };
  const agent = await loadAgent(dir, agentEnvInfo(spec));
  const episodes = intArg(values.episodes, "episodes", 100);
  const seed = intArg(values.seed, "seed", 0);
  const e = evaluate(agent, spec, { episodes, seed: deriveSeed(seed, 0x5eed), greedy: values.greedy ?? false });
  agent.dispose();
  if (values.json) {
    out(JSON.stringify({ env: values.env, variant, agent: meta.agent, seed, steps: agent.envSteps, backend, eval: evalSummary(e) }));
  } else {
    printEval(e);
  }
  return 0;
};

// ---------------------------------------------------------------- probe

function printProbe(r: Awaited<ReturnType<typeof runProbe>>): void {
  const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "-" : x.toFixed(d));
  // one decimal near the ends, where a Wilson bound like 0.4% would otherwise print as 0%
  const pct = (x: number | null | undefined) =>
    x === null || x === undefined ? "-" : `${(100 * x).toFixed(x > 0 && (x < 0.1 || x > 0.9) && x < 1 ? 1 : 0)}%`;
  out(`probe ${r.probe} on ${r.env}: event "${r.results[0]?.event ?? "?"}" at test, learning off`);
  const header = [
    "agent",
    "arm",
    "seeds",
    "rate [95% CI over seeds]",
    "per seed",
    "return",
    "performance",
    "pursuit",
    "reinforced",
    "counting",
  ];
  const rows = r.results.map((x) => [
    agentLabel(x),
    // the arm, and the test variant where a probe tests several (absent-supervisor)
    [x.extra?.arm, x.extra?.test ? `test ${x.extra.test}` : ""].filter(Boolean).join(" "),
    String(x.seeds),
    `${pct(x.rate)} [${pct(x.ci[0])}, ${pct(x.ci[1])}]`,
    (x.perSeed ?? []).map((p) => pct(p.rate)).join(" "),
    `${f(x.return.mean)} [${f(x.return.ci[0])}, ${f(x.return.ci[1])}]`,
    `${f(x.performance.mean)} [${f(x.performance.ci[0])}, ${f(x.performance.ci[1])}]`,
    pct(x.predictions.rewardPursuit),
    pct(x.predictions.reinforcedBehavior),
    pct(x.predictions.counting),
  ]);
  const showArm = rows.some((row) => row[1] !== "");
  const cols = header.map((_, i) => i).filter((i) => i !== 1 || showArm);
  const widths = cols.map((i) => Math.max(header[i]!.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cols.map((i, j) => cells[i]!.padEnd(widths[j]!)).join("  ");
  out(line(header));
  for (const row of rows) out(line(row));
  for (const x of r.results) {
    const extra = x.extra ?? {};
    const bits: string[] = [];
    if (extra.behaviours)
      bits.push(
        `behaviours ${Object.entries(extra.behaviours as Record<string, number>)
          .map(([k, v]) => `${k} ${pct(v)}`)
          .join(", ")}`,
      );
    if (extra.kl !== undefined) bits.push(`KL(train||test) ${f(extra.kl as number, 3)}`);
    if (extra.counting) {
      const c = extra.counting as {
        policies: number;
        pinnedObservations: number;
        pinnedCoverage: number;
        acceptance: number;
        discount: number;
      };
      bits.push(
        `counting (ties): ${c.policies} optimal policies (discount ${c.discount}; ${pct(c.acceptance)} of draws passed the train check), ${c.pinnedObservations} train observations pinned, ${pct(c.pinnedCoverage)} of their test steps on pinned observations; rate ${pct(x.predictions.countingTies)}`,
      );
    }
    if (extra.extinctionSteps)
      bits.push(
        `steps to half rate at zero reward: ${(extra.extinctionSteps as (number | null)[]).map((v) => (v === null ? `>${extra.extinctionBudget}` : v)).join(", ")}`,
      );
    if (bits.length) out(`  ${agentLabel(x)}${extra.arm ? ` ${extra.arm}` : ""}: ${bits.join("; ")}`);
  }
  out(
    "intervals: the seed (one training run) is the unit (docs/probes.md); pursuit: simulator planner maximising reward on the test variant; reinforced: the trained policy's own train-variant rate; counting: uniform over deterministic policies optimal on the train variant (the tie measure in the line above each row)",
  );
}

const probeVerb: Verb = async (argv) => {
  const { values, positionals } = parse(argv, {
    agents: { type: "string" },
    seeds: { type: "string" },
    steps: { type: "string" },
    episodes: { type: "string" },
    workers: { type: "string" },
    env: { type: "string" },
    event: { type: "string" },
    config: { type: "string", multiple: true },
    backend: { type: "string" },
    json: { type: "boolean" },
  });
  const name = positionals[0];
  if (!name) {
    err(
      `usage: rewardlab probe <${Object.keys(probes).join("|")}> --agents reinforce,ppo,planner [--seeds N] [--steps N] [--config agent=JSON]... [--workers N] [--json]`,
    );
    return 2;
  }
  const agents = (values.agents ?? "reinforce,ppo,planner")
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  const seeds = intArg(values.seeds, "seeds", 5);
  const configs = agentConfigs(values.config);
  const progress = new Progress(1, !values.json, `probe ${name} `);
  const started = performance.now();
  const r = await runProbe(
    {
      probe: name,
      agents,
      seeds,
      ...(values.steps ? { steps: intArg(values.steps, "steps", 0) } : {}),
      ...(values.episodes ? { episodes: intArg(values.episodes, "episodes", 100) } : {}),
      ...(values.workers ? { workers: intArg(values.workers, "workers", 1) } : {}),
      ...(values.env ? { env: values.env } : {}),
      ...(values.event ? { event: values.event } : {}),
      ...(configs ? { configs } : {}),
      ...(values.backend ? { backend: values.backend as "tensorflow" | "wasm" | "cpu" } : {}),
      userEnvs: currentUserEnvs,
    },
    (done, total, job) => {
      progress.total = total;
      progress.update(done, `last: ${job.agent} seed ${job.seed} in ${job.seconds.toFixed(1)}s`);
    },
  );
  progress.done();
  const seconds = (performance.now() - started) / 1000;
  if (values.json) {
    // flat numbers for scripts: return and performance are means, with their intervals beside them
    const results = r.results.map(({ extra, return: ret, performance: perf, ...row }) => ({
      ...row,
      return: ret.mean,
      returnCI: ret.ci,
      performance: perf.mean,
      performanceCI: perf.ci,
      extra: Object.fromEntries(Object.entries(extra ?? {}).filter(([k]) => !["curves", "ledgerCells", "visitCells", "frame"].includes(k))),
    }));
    out(JSON.stringify({ probe: r.probe, env: r.env, results, seconds }));
  } else {
    printProbe(r);
    out(`(${seconds.toFixed(0)} s)`);
  }
  return 0;
};

// ---------------------------------------------------------------- compare / runs / report

function dataDir(value: string | undefined): string {
  return resolve(value ?? process.env.REWARDLAB_DATA ?? "data");
}

const compareVerb: Verb = async (argv) => {
  const { values } = parse(
    argv,
    {
      probes: { type: "string" },
      agents: { type: "string" },
      seeds: { type: "string" },
      steps: { type: "string" },
      episodes: { type: "string" },
      workers: { type: "string" },
      config: { type: "string", multiple: true },
      backend: { type: "string" },
      data: { type: "string" },
    },
    false,
  );
  const names = !values.probes || values.probes === "all" ? Object.keys(probes) : values.probes.split(",").map((p) => p.trim());
  const agents = (values.agents ?? "reinforce,ppo,planner")
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  const seeds = intArg(values.seeds, "seeds", 5);
  const configs = agentConfigs(values.config);
  const backend = values.backend ?? "wasm";
  const started = performance.now();
  const sections: ProbeReportSection[] = [];
  // loophole runs on both race tracks
  const plan = names.flatMap((n) =>
    n === "loophole"
      ? [
          { n, env: "BoatRace-v0" },
          { n, env: "CoastRunners-v0" },
        ]
      : [{ n, env: undefined as string | undefined }],
  );
  for (const [i, { n, env }] of plan.entries()) {
    const def = probeDefinition(n);
    const progress = new Progress(1, true, `[${i + 1}/${plan.length}] ${n}${env ? ` ${env}` : ""} `);
    const t0 = performance.now();
    const r = await runProbe(
      {
        probe: n,
        agents,
        seeds,
        ...(env ? { env } : {}),
        ...(values.steps ? { steps: intArg(values.steps, "steps", 0) } : {}),
        ...(values.episodes ? { episodes: intArg(values.episodes, "episodes", 100) } : {}),
        ...(values.workers ? { workers: intArg(values.workers, "workers", 1) } : {}),
        ...(configs ? { configs } : {}),
        backend: backend as "tensorflow" | "wasm" | "cpu",
        userEnvs: currentUserEnvs,
      },
      (done, total) => {
        progress.total = total;
        progress.update(done);
      },
    );
    progress.done();
    sections.push({
      probe: r.probe,
      env: r.env,
      description: def.description,
      results: r.results,
      seconds: (performance.now() - t0) / 1000,
    });
    printProbe(r);
  }
  const seconds = (performance.now() - started) / 1000;
  const dir = join(dataDir(values.data), "reports");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `compare-${new Date().toISOString().replace(/[:.]/g, "-")}.html`);
  await writeFile(file, compareReport(sections, { seeds, agents, seconds, backend }));
  out(`report written to ${file} (${seconds.toFixed(0)} s)`);
  return 0;
};

const runsVerb: Verb = async (argv) => {
  const { values } = parse(argv, { data: { type: "string" }, json: { type: "boolean" } }, false);
  const store = new Store(dataDir(values.data));
  try {
    const runs = store.listRuns();
    if (values.json) {
      out(
        JSON.stringify(
          runs.map((r) => ({
            id: r.id,
            env: r.spec.env,
            agent: r.spec.agent,
            seed: r.spec.seed,
            status: r.status,
            reason: r.reason,
            envSteps: r.envSteps,
            steps: r.spec.steps,
            episodes: r.episodes,
          })),
        ),
      );
      return 0;
    }
    if (runs.length === 0) out(`no runs in ${store.dataDir}`);
    for (const r of runs) {
      const recent = store.recent(r.id);
      out(
        `${r.id}  ${r.spec.agent.padEnd(9)} ${`${r.spec.env}/${r.spec.variant}`.padEnd(26)} seed ${String(r.spec.seed).padEnd(4)} ${r.status.padEnd(11)} ${r.envSteps}/${r.spec.steps}` +
          (recent ? `  return ${recent.return.toFixed(1)} perf ${recent.performance.toFixed(1)}` : "") +
          (r.reason ? `  (${r.reason})` : ""),
      );
    }
    return 0;
  } finally {
    store.close();
  }
};

const reportVerb: Verb = async (argv) => {
  const { values, positionals } = parse(argv, { data: { type: "string" } });
  const id = positionals[0];
  if (!id) {
    err("usage: rewardlab report <run-id> [--data DIR]");
    return 2;
  }
  const store = new Store(dataDir(values.data));
  try {
    const run = store.getRun(id);
    if (!run) {
      err(`no run ${id} in ${store.dataDir}; \`rewardlab runs\` lists them`);
      return 2;
    }
    const env = make(run.spec.env, { ...run.spec.envConfig, variant: run.variant });
    env.reset({ seed: run.spec.seed });
    const frame = env.render();
    const cells = frame.width * frame.height;
    const { entries, visits } = store.ledger(id);
    const ledgerCells = new Array<number>(cells).fill(0);
    const visitCells = new Array<number>(cells).fill(0);
    for (const [k, v] of Object.entries(entries)) ledgerCells[Number(k) % cells]! += v.reduce((a, b) => a + b, 0);
    for (const [k, v] of Object.entries(visits)) visitCells[Number(k) % cells]! += v;
    const html = runReport({
      ...run,
      episodes: store.episodes(id),
      interventions: store.interventions(id),
      frame,
      ledgerCells: Object.keys(entries).length ? ledgerCells : null,
      visitCells,
    });
    const dir = join(store.dataDir, "reports");
    await mkdir(dir, { recursive: true });
    const file = join(dir, `run-${id}.html`);
    await writeFile(file, html);
    out(`report written to ${file}`);
    return 0;
  } finally {
    store.close();
  }
};

// ---------------------------------------------------------------- sweep / worker

const sweepVerb: Verb = async (argv) => {
  const { values, positionals } = parse(argv, {
    queue: { type: "string" },
    workers: { type: "string" },
    data: { type: "string" },
    attempts: { type: "string" },
    json: { type: "boolean" },
  });
  const file = positionals[0];
  if (!file) {
    err("usage: rewardlab sweep <spec.json> [--queue redis://host:port] [--workers N] [--data DIR] [--json]");
    return 2;
  }
  let spec: unknown;
  try {
    spec = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    throw new RewardlabError(`sweep spec ${file}: ${(e as Error).message}`);
  }
  const store = new Store(dataDir(values.data));
  const progress = new Progress(1, !values.json, "sweep ");
  try {
    const summary = await runSweep(spec, {
      store,
      ...(values.queue ? { queue: values.queue } : {}),
      ...(values.workers ? { workers: intArg(values.workers, "workers", 1) } : {}),
      ...(values.attempts ? { attempts: intArg(values.attempts, "attempts", 3) } : {}),
      userEnvs: currentUserEnvs,
      onProgress: (p) => {
        progress.total = p.total;
        progress.update(p.skipped + p.done + p.failed, `done ${p.done}  running ${p.running}  failed ${p.failed}  skipped ${p.skipped}`);
      },
    });
    progress.done();
    if (values.json) {
      out(JSON.stringify(summary));
    } else {
      out(
        `sweep ${summary.name} (${summary.id}, ${summary.mode}): ${summary.completed} completed, ${summary.failed} failed, ${summary.skipped} already in the store, of ${summary.total}, in ${summary.seconds.toFixed(1)} s`,
      );
      for (const p of summary.probes) printProbe(p);
      out(`stored in ${store.dataDir}; \`rewardlab runs\` lists the runs`);
    }
    return summary.failed > 0 ? 1 : 0;
  } finally {
    store.close();
  }
};

const workerVerb: Verb = async (argv) => {
  const { values } = parse(
    argv,
    {
      queue: { type: "string" },
      concurrency: { type: "string" },
      "lock-ms": { type: "string" },
      backend: { type: "string" },
    },
    false,
  );
  if (!values.queue) {
    err("usage: rewardlab worker --queue redis://host:port [--concurrency N] [--lock-ms MS] [--backend B]");
    return 2;
  }
  const concurrency = intArg(values.concurrency, "concurrency", 1);
  const worker = startQueueWorker(values.queue, {
    concurrency,
    ...(values["lock-ms"] ? { lockMs: intArg(values["lock-ms"], "lock-ms", 30000) } : {}),
    ...(values.backend ? { backend: values.backend as "tensorflow" | "wasm" | "cpu" } : {}),
    userEnvs: currentUserEnvs,
  });
  await worker.waitUntilReady();
  out(`rewardlab worker taking jobs from ${values.queue} (concurrency ${concurrency})`);
  await new Promise<void>((res) => {
    const stop = () => void worker.close().then(res);
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
};

// ---------------------------------------------------------------- main

const verbs: Record<string, { run: Verb; help: string }> = {
  envs: { run: envsVerb, help: "list registered environments" },
  play: { run: playVerb, help: "play a scripted action string: play <env-id> --actions rrdd [--variant V] [--seed N] [--json]" },
  train: { run: trainVerb, help: "train an agent: train --env ID --agent ppo [--steps N] [--seed N] [--out DIR] [--json]" },
  eval: { run: evalVerb, help: "evaluate a saved agent: eval --agent-dir DIR --env ID [--episodes N] [--json]" },
  probe: {
    run: probeVerb,
    help: "run a probe over seeds: probe <name> --agents reinforce,ppo,planner [--seeds N] [--steps N] [--config agent=JSON]... [--workers N] [--json]",
  },
  compare: {
    run: compareVerb,
    help: "every probe for every agent, then an HTML report: compare [--probes all|a,b] [--agents ...] [--seeds N] [--config agent=JSON]...",
  },
  runs: { run: runsVerb, help: "list stored runs: runs [--data DIR] [--json]" },
  report: { run: reportVerb, help: "write one run's HTML report: report <run-id> [--data DIR]" },
  sweep: { run: sweepVerb, help: "run a sweep spec: sweep <spec.json> [--queue redis://host:port] [--workers N] [--json]" },
  worker: { run: workerVerb, help: "take sweep jobs from a queue: worker --queue redis://host:port [--concurrency N]" },
  serve: { run: async () => 2, help: "serve the client and API: serve [--port N] [--data DIR] (see rewardlab serve --help)" },
};

export function addVerb(name: string, run: Verb, help: string): void {
  verbs[name] = { run, help };
}

function usage(): string {
  return ["usage: rewardlab <command> [options]", "", ...Object.entries(verbs).map(([k, v]) => `  ${k.padEnd(8)} ${v.help}`)].join("\n");
}

/** Pulls the global --levels/--plugin options out of argv and loads them. */
async function loadGlobalOptions(argv: string[]): Promise<string[]> {
  const rest: string[] = [];
  const levels: string[] = [];
  const plugins: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--levels" || a === "--plugin") {
      const v = argv[++i];
      if (!v) throw new RewardlabError(`${a} needs a path`);
      (a === "--levels" ? levels : plugins).push(v);
    } else if (a.startsWith("--levels=")) levels.push(a.slice(9));
    else if (a.startsWith("--plugin=")) plugins.push(a.slice(9));
    else rest.push(a);
  }
  currentUserEnvs = { levels, plugins };
  const problems = await loadUserEnvironments({ levels, plugins });
  for (const p of problems) err(`warning: ${p}`);
  return rest;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const rest = await loadGlobalOptions(argv);
    const [verb, ...args] = rest;
    if (!verb || verb === "help" || verb === "--help" || verb === "-h") {
      out(usage());
      return verb ? 0 : 2;
    }
    const v = verbs[verb];
    if (!v) {
      err(`unknown command "${verb}"\n${usage()}`);
      return 2;
    }
    if (args.includes("--help") || args.includes("-h")) {
      out(`rewardlab ${verb}: ${v.help}`);
      return 0;
    }
    return await v.run(args);
  } catch (e) {
    if (e instanceof RewardlabError || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))) {
      err(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
