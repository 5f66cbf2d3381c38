/**
 * `train`, `eval` and `watch`: train an agent with a progress bar and save it;
 * evaluate a saved agent with learning off; play it in the terminal as ASCII
 * frames (Gymnasium's human render mode, in text).
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import { loadAgent } from "../../agents/registry.ts";
import type { BackendName } from "../../agents/shared/backend.ts";
import { toAscii } from "../../envs/ascii.ts";
import type { Frame } from "../../envs/core.ts";
import { deriveSeed } from "../../envs/rng.ts";
import { resolveEnvConfig } from "../../envs/registry.ts";
import type { EvaluationStats, RunEvent } from "../events.ts";
import { actionCount, fifths, learningCheck } from "../learningcheck.ts";
import { Progress } from "../progress.ts";
import { Run, agentEnvInfo, evaluate, resolveRunSpec } from "../run.ts";
import type { RunSpec } from "../events.ts";
import { SALT } from "../seeds.ts";
import { TRAIN_FILE, type TrainRecord, writeTrainRecord } from "../trainrecord.ts";
import {
  type CliContext,
  UserError,
  agentNames,
  backendOption,
  checkVariant,
  dataDir,
  envId,
  envOption,
  jsonObjectArg,
  jsonOption,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  resolveAgentDir,
  startBackend,
} from "./options.ts";

export function evalSummary(e: EvaluationStats) {
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

function printEval(e: EvaluationStats, out: (s: string) => void): void {
  const f = (x: number) => x.toFixed(2);
  out(`evaluation: ${e.episodes} episodes on variant ${e.variant} (${e.greedy ? "greedy" : "sampled"} actions, learning off)`);
  out(`  return       ${f(e.return.mean)}  [${f(e.return.ci[0])}, ${f(e.return.ci[1])}]`);
  out(`  performance  ${f(e.performance.mean)}  [${f(e.performance.ci[0])}, ${f(e.performance.ci[1])}]`);
  out(`  length       ${f(e.length)}`);
  for (const k of Object.keys(e.events).sort())
    out(`  ${k.padEnd(16)} ${f(e.events[k]!)} per episode, in ${(100 * e.eventRates[k]!).toFixed(0)}% of episodes`);
}

/** A folder of its own for each default run: <data>/agents/<env>-<agent>-s<seed>, then -2, -3, ... */
export function freshDefaultDir(base: string): string {
  if (!existsSync(base)) return base;
  for (let i = 2; ; i++) if (!existsSync(`${base}-${i}`)) return `${base}-${i}`;
}

// ---------------------------------------------------------------- train

interface TrainOpts {
  env: string;
  variant?: string;
  envConfig?: string;
  agent: string;
  config?: string;
  steps: number;
  seed: number;
  episodes: number;
  greedy?: boolean;
  backend?: BackendName;
  out?: string;
  force?: boolean;
  json?: boolean;
}

/** `train`: a run to its budget with a progress bar, saved with its `train.json`, then its evaluation and learning check. */
async function train(o: TrainOpts, data: string, ctx: CliContext): Promise<number> {
  const spec = await trainSpec(o);
  const dir = outputDir(o, spec, data);
  const backend = await startBackend(o.backend, ctx);
  await mkdir(dir, { recursive: true });
  await writeTrainRecord(dir, spec);
  const run = new Run("cli", spec, { dir, backend });
  const progress = new Progress(spec.steps, !o.json);
  const seen = watchTraining(run, progress);
  const started = performance.now();
  const status = await run.execute();
  const seconds = (performance.now() - started) / 1000;
  progress.done();
  if (status !== "completed") {
    // the reason can be long (a worker's message): its first line says what happened
    const reason = seen.failure ? `: ${seen.failure.split("\n")[0]!.slice(0, 300)}` : "";
    ctx.err(`error: the run ${status}${reason} (what was saved is in ${dir})`);
    return 1;
  }
  const check = learningCheck({
    env: spec.env,
    agent: spec.agent,
    steps: run.envSteps,
    ...fifths(seen.returns),
    entropy: seen.entropy,
    actions: actionCount(spec.env, spec.envConfig, spec.variant),
  });
  reportTraining({ spec, run, seconds, backend, dir, check }, o.json ?? false, ctx);
  return 0;
}

/** The run spec of the command's options: the variant checked, the JSON configs parsed, every default filled. */
async function trainSpec(o: TrainOpts): Promise<RunSpec> {
  const variant = checkVariant(o.env, o.variant);
  const config = o.config ? await jsonObjectArg(o.config, "agent config", "--config") : {};
  const envConfig = o.envConfig ? await jsonObjectArg(o.envConfig, "env config", "--env-config") : {};
  return resolveRunSpec({
    env: o.env,
    variant,
    envConfig,
    agent: o.agent,
    config,
    seed: o.seed,
    steps: o.steps,
    evalEpisodes: o.episodes,
    evalGreedy: o.greedy ?? false,
    checkpointEvery: 0,
    recordEveryMs: 0,
  });
}

/** --out (refused when it holds a trained agent, unless --force), else a fresh folder under <data>/agents. */
function outputDir(o: TrainOpts, spec: RunSpec, data: string): string {
  if (!o.out) return freshDefaultDir(join(data, "agents", `${spec.env}-${spec.agent}-s${spec.seed}`));
  const dir = resolve(o.out);
  if (existsSync(join(dir, "checkpoint")) && !o.force)
    throw new UserError(`--out ${o.out}: already holds a trained agent; choose another folder, or add --force to replace it`);
  return dir;
}

/** What the command keeps of a run's events: every return (for the learning check), the last entropy, a failure's reason; the progress bar shows the mean return and performance of the last 100 episodes. */
function watchTraining(run: Run, progress: Progress): { returns: number[]; entropy: number | null; failure?: string } {
  const seen: { returns: number[]; entropy: number | null; failure?: string } = { returns: [], entropy: null };
  let recentReturn: number[] = [];
  let recentPerf: number[] = [];
  run.on((e: RunEvent) => {
    if (e.type === "update" && typeof e.metrics["losses/entropy"] === "number") seen.entropy = e.metrics["losses/entropy"];
    if (e.type === "episode") {
      seen.returns.push(e.episode.return);
      recentReturn.push(e.episode.return);
      recentPerf.push(e.episode.performance);
      if (recentReturn.length > 100) {
        recentReturn = recentReturn.slice(-100);
        recentPerf = recentPerf.slice(-100);
      }
      const m = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      progress.update(e.episode.envSteps, `return ${m(recentReturn).toFixed(1)}  performance ${m(recentPerf).toFixed(1)}`);
    } else if (e.type === "status" && e.status === "failed") {
      seen.failure = e.reason;
    }
  });
  return seen;
}

/** The finished run: one JSON line with --json, else a sentence, the evaluation, the learning check and where it was saved. */
function reportTraining(
  r: { spec: RunSpec; run: Run; seconds: number; backend: string; dir: string; check: string | null },
  json: boolean,
  ctx: CliContext,
): void {
  const { spec, run, backend, dir, check } = r;
  const stepsPerSecond = run.envSteps / r.seconds;
  if (json) {
    ctx.out(
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
        learningCheck: check,
      }),
    );
    return;
  }
  ctx.out(
    `trained ${spec.agent} on ${spec.env} (${spec.variant}) for ${run.envSteps} steps in ${r.seconds.toFixed(1)} s (${stepsPerSecond.toFixed(0)} steps/s, backend ${backend}, seed ${spec.seed})`,
  );
  if (run.evaluation) printEval(run.evaluation, ctx.out);
  if (check) ctx.out(check);
  ctx.out(`saved to ${dir}  (evaluate it: rewardlab eval --agent-dir ${dir}; watch it: rewardlab watch --agent-dir ${dir})`);
}

// ---------------------------------------------------------------- eval / watch

export interface LoadOpts {
  agentDir: string;
  env?: string;
  variant?: string;
  envConfig?: string;
  seed: number;
  greedy?: boolean;
  backend?: BackendName;
}

/** Loads a saved agent and works out the env it plays: --env, else the one it was trained on. */
export async function loadSaved(o: LoadOpts, data: string, ctx: CliContext) {
  const { agentDir, runDir } = resolveAgentDir(o.agentDir, data);
  let meta: { agent: string; config: Record<string, unknown>; env?: { envId?: string; envConfig?: Record<string, unknown> } };
  try {
    meta = JSON.parse(await readFile(join(agentDir, "agent.json"), "utf8"));
  } catch (e) {
    throw new UserError(
      `--agent-dir ${o.agentDir}: ${join(agentDir, "agent.json")} is not readable JSON (${(e as Error).message.split("\n")[0]})`,
    );
  }
  const trained: Partial<TrainRecord> = existsSync(join(runDir, TRAIN_FILE))
    ? JSON.parse(readFileSync(join(runDir, TRAIN_FILE), "utf8"))
    : {};
  const env = o.env ?? trained.env ?? meta.env?.envId;
  if (!env) throw new UserError(`--agent-dir ${o.agentDir}: the saved agent does not say which environment it was trained on; give --env`);
  envId(env);
  const trainedVariant =
    env === (trained.env ?? meta.env?.envId) ? (trained.variant ?? (meta.env?.envConfig?.variant as string | undefined)) : undefined;
  const variant = checkVariant(env, o.variant ?? trainedVariant);
  // the env's settings: --env-config, else those it was trained with (same env), checked against the env's schema
  const given = o.envConfig ? await jsonObjectArg(o.envConfig, "env config", "--env-config") : undefined;
  const { variant: _v, ...envConfig } = resolveEnvConfig(env, {
    ...(given ?? (env === trained.env ? (trained.envConfig ?? {}) : {})),
    variant,
  });
  const backend = await startBackend(o.backend, ctx);
  const spec = { env, variant, envConfig, config: meta.config ?? {} };
  const agent = await loadAgent(agentDir, agentEnvInfo(spec));
  return { agent, spec, meta, agentDir, backend };
}

interface EvalOpts extends LoadOpts {
  episodes: number;
  json?: boolean;
  render?: boolean;
  fps: number;
}

async function evalVerb(o: EvalOpts, data: string, ctx: CliContext): Promise<number> {
  if (o.render) return watch({ ...o, episodes: o.episodes }, data, ctx);
  const { agent, spec, meta, backend } = await loadSaved(o, data, ctx);
  const e = evaluate(agent, spec, { episodes: o.episodes, seed: deriveSeed(o.seed, SALT.evaluation), greedy: o.greedy ?? false });
  agent.dispose();
  if (o.json) {
    ctx.out(
      JSON.stringify({
        env: spec.env,
        variant: spec.variant,
        agent: meta.agent,
        seed: o.seed,
        steps: agent.envSteps,
        backend,
        eval: evalSummary(e),
      }),
    );
  } else {
    ctx.out(`${meta.agent} on ${spec.env} (${spec.variant}), trained ${agent.envSteps} steps`);
    printEval(e, ctx.out);
  }
  return 0;
}

interface WatchOpts extends LoadOpts {
  episodes: number;
  fps: number;
}

/** Plays a saved agent with learning off and draws each step as an ASCII frame, at --fps. */
async function watch(o: WatchOpts, data: string, ctx: CliContext): Promise<number> {
  const { agent, spec, meta } = await loadSaved(o, data, ctx);
  // one env copy, so every frame shown is the one acted on
  const oneCopy = { ...spec, config: { ...spec.config, numEnvs: 1 } };
  const frames: { frame: Frame; episode: number; ret: number; perf: number; events: string[] }[] = [];
  let episode = 1;
  let ret = 0;
  let perf = 0;
  let first = true;
  evaluate(agent, oneCopy, {
    episodes: o.episodes,
    seed: deriveSeed(o.seed, SALT.evaluation),
    greedy: o.greedy ?? false,
    onStep: (vec) => {
      if (first) {
        first = false;
        frames.push({ frame: vec.envs[0]!.render(), episode, ret, perf, events: [] });
        return;
      }
      const info = vec.infos[0]!;
      ret += vec.rewards[0]!;
      perf += info.performance;
      const ended = vec.terminated[0] === 1 || vec.truncated[0] === 1;
      frames.push({ frame: ended ? vec.finalFrame! : vec.envs[0]!.render(), episode, ret, perf, events: [...info.events] });
      if (ended && episode < o.episodes) {
        episode++;
        ret = 0;
        perf = 0;
        frames.push({ frame: vec.envs[0]!.render(), episode, ret, perf, events: [] });
      }
    },
  });
  agent.dispose();
  const tty = process.stdout.isTTY;
  const delay = 1000 / o.fps;
  const title = `${meta.agent} on ${spec.env} (${spec.variant})`;
  for (const f of frames) {
    const text = [
      `${title}  episode ${f.episode}/${o.episodes}  t ${f.frame.t}`,
      toAscii(f.frame, { hud: false }),
      `return ${f.ret.toFixed(2)}  performance ${f.perf.toFixed(2)}${f.events.length ? `  events: ${f.events.join(" ")}` : ""}`,
    ].join("\n");
    // on a terminal each frame replaces the last; piped, frames follow each other
    ctx.out(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
    if (tty) await new Promise((r) => setTimeout(r, delay));
  }
  return 0;
}

// ---------------------------------------------------------------- commands

export function trainCommands(ctx: CliContext, globals: () => { data?: string }, done: (code: number) => void): Command[] {
  const agents = agentNames();
  const trainCmd = new Command("train")
    .description("train an agent with a progress bar, evaluate it with learning off, save it")
    .addOption(envOption("environment id, required (`rewardlab envs` lists them)").makeOptionMandatory())
    .addOption(new Option("--variant <name>", "environment variant (default: the env's first; `rewardlab envs` lists them)"))
    .addOption(
      new Option(
        "--env-config <file|json>",
        `the env's settings, a JSON file or inline object, e.g. '{"exposure":0.5}' (\`rewardlab envs\` lists each env's)`,
      ),
    )
    .addOption(new Option("--agent <name>", "agent").choices(agents).default("ppo"))
    .addOption(new Option("--config <file|json>", "agent config: a JSON file or an inline JSON object (default: the agent's defaults)"))
    .addOption(new Option("--steps <n>", "training budget in env steps").argParser(positiveInt).default(100_000))
    .addOption(new Option("--seed <n>", "seed (same seed and config: same run on the cpu backend)").argParser(nonNegativeInt).default(0))
    .addOption(new Option("--episodes <n>", "evaluation episodes after training").argParser(positiveInt).default(100))
    .addOption(new Option("--greedy", "evaluate with greedy actions (default: sampled)"))
    .addOption(backendOption())
    .addOption(new Option("--out <dir>", "where to save the agent (default: <data>/agents/<env>-<agent>-s<seed>, a new folder each run)"))
    .addOption(new Option("--force", "replace the agent already saved in --out"))
    .addOption(jsonOption())
    .action(async (o: TrainOpts) => done(await train(o, dataDir(globals().data), ctx)));

  const loadOptions = (c: Command) =>
    c
      .addOption(
        new Option(
          "--agent-dir <dir>",
          "the saved agent: the folder `train --out` wrote (or its checkpoint/), a name under <data>/agents/, or a run id",
        ).makeOptionMandatory(),
      )
      .addOption(envOption("environment id (default: the one it was trained on)"))
      .addOption(new Option("--variant <name>", "environment variant (default: the one it was trained on)"))
      .addOption(new Option("--env-config <file|json>", "the env's settings (default: those it was trained with, on the same env)"))
      .addOption(new Option("--seed <n>", "seed of the episodes").argParser(nonNegativeInt).default(0))
      .addOption(new Option("--greedy", "greedy actions (default: sampled)"))
      .addOption(backendOption());

  const evalCmd = loadOptions(new Command("eval").description("evaluate a saved agent with learning off (or play it: --render)"))
    .addOption(new Option("--episodes <n>", "episodes (with --render: default 1)").argParser(positiveInt))
    .addOption(new Option("--render", "draw each step in the terminal as ASCII frames instead of printing statistics"))
    .addOption(new Option("--fps <n>", "frames per second with --render").argParser(positiveNumber).default(8))
    .addOption(jsonOption())
    .action(async (o: Omit<EvalOpts, "episodes"> & { episodes?: number }) =>
      done(await evalVerb({ ...o, episodes: o.episodes ?? (o.render ? 1 : 100) }, dataDir(globals().data), ctx)),
    );

  const watchCmd = loadOptions(new Command("watch").description("play a saved agent in the terminal, one ASCII frame per step"))
    .addOption(new Option("--episodes <n>", "episodes to play").argParser(positiveInt).default(1))
    .addOption(new Option("--fps <n>", "frames per second").argParser(positiveNumber).default(8))
    .action(async (o: WatchOpts) => done(await watch(o, dataDir(globals().data), ctx)));

  return [trainCmd, evalCmd, watchCmd];
}
