/**
 * `steer`: the maze probe's analysis and steering of trained Maze-v0
 * policies (experiments/steer.ts): the unsteered policy beside chance and the
 * simulator planner on held-out test mazes with the decision-square
 * analysis, the cheese-vector table per coefficient and the single-channel
 * retargeting table. Prints tables; --json prints the result, --out writes it.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command, Option } from "commander";
import type { Agent } from "../../agents/core.ts";
import type { BackendName } from "../../agents/shared/backend.ts";
import { MAZE_ID } from "../../envs/maze.ts";
import { formatMazeRows } from "../probes/maze.ts";
import { formatSteer, runSteer } from "../steer.ts";
import {
  type CliContext,
  UserError,
  backendOption,
  collect,
  dataDir,
  jsonObjectArg,
  jsonOption,
  nonNegativeInt,
  positiveInt,
  resolveAgentDir,
} from "./options.ts";
import { loadSaved } from "./train.ts";

interface SteerOpts {
  agentDir: string[];
  layer: string;
  coeffs: string;
  mazes: number;
  pairs: number;
  seed: number;
  targets: number;
  channel?: number;
  value?: string;
  envConfig?: string;
  greedy?: boolean;
  references?: boolean;
  perMaze?: boolean;
  otherMaze?: boolean;
  clearCheese?: boolean;
  backend?: BackendName;
  out?: string;
  json?: boolean;
}

/** The seed `train` recorded beside a saved agent (train.json), if any. */
function trainedSeed(dir: string, data: string): number | undefined {
  const file = join(resolveAgentDir(dir, data).runDir, "train.json");
  if (!existsSync(file)) return undefined;
  const seed = (JSON.parse(readFileSync(file, "utf8")) as { seed?: unknown }).seed;
  return typeof seed === "number" ? seed : undefined;
}

/** "-2,-1,0,1,2" -> numbers; a bad list is a one-line error. */
export function coeffList(value: string): number[] {
  const xs = value.split(",").map((s) => Number(s.trim()));
  if (!value.trim() || xs.some((x) => !Number.isFinite(x) || Math.abs(x) > 100))
    throw new UserError(`--coeffs takes comma-separated numbers between -100 and 100, e.g. -2,-1,0,1,2; got "${value}"`);
  return xs;
}

async function steer(o: SteerOpts, data: string, ctx: CliContext): Promise<number> {
  const coeffs = coeffList(o.coeffs);
  const value = o.value === undefined ? undefined : Number(o.value);
  if (value !== undefined && !Number.isFinite(value)) throw new UserError(`--value must be a number, got "${o.value}"`);
  const given = o.envConfig ? await jsonObjectArg(o.envConfig, "env config", "--env-config") : {};
  const envConfig: Record<string, unknown> = { ...given };
  const agents: Agent[] = [];
  const seeds: number[] = [];
  let backend = "";
  try {
    for (const dir of o.agentDir) {
      const loaded = await loadSaved({ agentDir: dir, seed: 0, ...(o.backend ? { backend: o.backend } : {}) }, data, ctx);
      agents.push(loaded.agent);
      backend = loaded.backend;
      if (loaded.spec.env !== MAZE_ID)
        throw new UserError(`--agent-dir ${dir}: trained on ${loaded.spec.env}; steer works on ${MAZE_ID} policies`);
      // the maze settings it was trained with, unless --env-config says otherwise
      for (const [k, v] of Object.entries(loaded.spec.envConfig)) if (!(k in given)) envConfig[k] = v;
      seeds.push(trainedSeed(dir, data) ?? seeds.length);
    }
    const result = runSteer(agents, seeds, {
      layer: o.layer,
      coeffs,
      mazes: o.mazes,
      pairs: o.pairs,
      seed: o.seed,
      envConfig,
      explore: !o.greedy,
      targets: o.targets,
      ...(o.channel !== undefined ? { channel: o.channel } : {}),
      ...(value !== undefined ? { value } : {}),
      references: o.references !== false,
      ...(o.perMaze || o.otherMaze ? { perMaze: true } : {}),
      ...(o.otherMaze ? { otherMaze: true } : {}),
      ...(o.clearCheese ? { clearCheese: true } : {}),
    });
    const full = { ...result, backend, agentDirs: o.agentDir };
    if (o.out) await writeFile(o.out, `${JSON.stringify(full, null, 1)}\n`);
    if (o.json) ctx.out(JSON.stringify(full));
    else {
      ctx.out(`maze probe: ${o.mazes} held-out test mazes (seed ${o.seed}), backend ${backend}`);
      for (const l of formatMazeRows(result.probe)) ctx.out(l);
      ctx.out("");
      for (const l of formatSteer(result)) ctx.out(l);
      if (o.out) ctx.out(`\nwrote ${o.out}`);
    }
  } finally {
    for (const a of agents) a.dispose();
  }
  return 0;
}

export function steerCommand(ctx: CliContext, globals: () => { data?: string }, done: (code: number) => void): Command {
  return new Command("steer")
    .description("steer trained Maze-v0 policies: the cheese vector per coefficient, single-channel retargeting, the maze probe's analysis")
    .addOption(
      new Option("--agent-dir <dir>", "a trained Maze-v0 policy (`train --out`), repeatable: one per seed")
        .argParser(collect)
        .makeOptionMandatory(),
    )
    .addOption(new Option("--layer <name>", "layer of the vector and the edit (an unknown name lists the layers)").makeOptionMandatory())
    .addOption(new Option("--coeffs <list>", "coefficients of the cheese vector").default("-2,-1,0,1,2"))
    .addOption(
      new Option(
        "--per-maze",
        "each held-out maze its own cheese vector (with its cheese minus without), not the mean over --pairs others",
      ),
    )
    .addOption(
      new Option("--other-maze", "the control for --per-maze: each maze gets the next held-out maze's vector (its cheese elsewhere)"),
    )
    .addOption(new Option("--mazes <n>", "held-out test mazes per coefficient").argParser(positiveInt).default(100))
    .addOption(new Option("--pairs <n>", "mazes the cheese vector is averaged over").argParser(positiveInt).default(100))
    .addOption(new Option("--seed <n>", "seed of the maze sets").argParser(nonNegativeInt).default(0))
    .addOption(new Option("--targets <n>", "target squares for retargeting (0: skip)").argParser(nonNegativeInt).default(5))
    .addOption(new Option("--channel <n>", "retargeting channel (default: the one whose peak tracks the cheese)").argParser(nonNegativeInt))
    .addOption(new Option("--value <x>", "activation set at the target (default: 2 x the channel's mean peak)"))
    .addOption(
      new Option("--clear-cheese", "retargeting also sets the channel at the cheese's square to its value there without the cheese"),
    )
    .addOption(new Option("--env-config <file|json>", "Maze-v0 settings of the test mazes (default: those trained with)"))
    .addOption(new Option("--greedy", "greedy actions (default: sampled)"))
    .addOption(new Option("--no-references", "skip the chance and simulator-planner rows"))
    .addOption(backendOption())
    .addOption(new Option("--out <file>", "write the result as JSON"))
    .addOption(jsonOption())
    .action(async (o: SteerOpts) => done(await steer(o, dataDir(globals().data), ctx)));
}
