/**
 * The `rewardlab` command line, on commander: every verb has generated help
 * (each flag with its default and choices), typed option parsing, and
 * did-you-mean for a mistyped verb or flag. The verbs live in cli/ and all
 * consume the same run event stream as the store and the server.
 *
 * Errors: a user's mistake (a bad flag value, a missing file, bad JSON, an
 * unknown id) prints one line, "error: what; how to fix", and exits 2. Anything
 * else is an internal error: a short message, the full trace written to a
 * file whose path is printed, exit 1. Stacks never reach the terminal (a
 * tfjs-wasm stack carries its whole minified source).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { PoolStopped } from "./pool.ts";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { inspect } from "node:util";
import { Command, CommanderError, Option } from "commander";
import "../envs/index.ts";
import { RewardlabError } from "../envs/errors.ts";
import { envCommands } from "./cli/envs.ts";
import type { CliContext } from "./cli/options.ts";
import { probeCommands } from "./cli/probe.ts";
import { steerCommand } from "./cli/steer.ts";
import { storeCommands } from "./cli/store.ts";
import { trainCommands } from "./cli/train.ts";
import { loadUserEnvironments } from "./plugins.ts";

export type { CliContext } from "./cli/options.ts";

/** Global options every verb accepts. */
export interface GlobalOptions {
  data?: string;
}

/** A verb defined outside experiments/ (`serve` lives in server/, which experiments/ never imports). */
export type CommandFactory = (ctx: CliContext, globals: () => GlobalOptions, done: (code: number) => void) => Command;

const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** The program with every verb; `result.code` is set by the verb that ran. */
export function buildProgram(ctx: CliContext, extra: CommandFactory[] = []): { program: Command; result: { code: number } } {
  const result = { code: 0 };
  const done = (code: number) => {
    result.code = code;
  };
  const program = new Command("rewardlab")
    .description("rewardlab: does a trained policy pursue reward, or repeat what reward reinforced? Train, probe and compare agents.")
    .version(VERSION, "-V, --version", "print the version")
    .addOption(new Option("--data <dir>", "the data folder (store, runs, agents, reports); default: REWARDLAB_DATA, else ./data"))
    .addOption(new Option("--levels <dir>", "load level files from a folder (repeatable; also REWARDLAB_LEVELS, :-separated)"))
    .addOption(new Option("--plugin <path>", "load a module that registers environments or probes (repeatable)"))
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.out(s.replace(/\n$/, "")),
      // an error and its did-you-mean on one line
      writeErr: (s) => ctx.err(s.replace(/\n$/, "").replace(/\n\(Did you mean (.*)\)/, " (did you mean $1)")),
    });
  const globals = () => program.opts<GlobalOptions>();
  const commands = [
    ...envCommands(ctx, done),
    ...trainCommands(ctx, globals, done),
    ...probeCommands(ctx, globals, done),
    ...storeCommands(ctx, globals, done),
    steerCommand(ctx, globals, done),
    ...extra.map((f) => f(ctx, globals, done)),
  ];
  for (const c of commands) {
    // subcommands inherit the output, the error handling and suggestions
    c.exitOverride().showSuggestionAfterError(true).configureHelp({ showGlobalOptions: true });
    c.configureOutput(program.configureOutput());
    program.addCommand(c);
  }
  return { program, result };
}

/** Takes --levels/--plugin out of argv (wherever they are) and loads them before the verbs are built: they add envs and probes. */
async function loadGlobalOptions(argv: string[], ctx: CliContext): Promise<string[]> {
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
  ctx.userEnvs = { levels, plugins };
  const fromEnv = (process.env.REWARDLAB_LEVELS ?? "").split(delimiter).filter(Boolean);
  for (const [dir, from] of [...fromEnv.map((d) => [d, "REWARDLAB_LEVELS"] as const), ...levels.map((d) => [d, "--levels"] as const)]) {
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new RewardlabError(`${from} ${dir}: no such folder (${resolve(dir)}); give a folder of level .json files`);
  }
  for (const p of plugins) if (!existsSync(p)) throw new RewardlabError(`--plugin ${p}: no such file (${resolve(p)})`);
  for (const p of await loadUserEnvironments({ levels, plugins })) ctx.err(`warning: ${oneLine(p, 300)}`);
  return rest;
}

/** One line: newlines folded, and long messages cut (they never need more to say what to fix). */
function oneLine(message: string, max = 400): string {
  const s = message.replace(/\s*\n\s*/g, "; ").trim();
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** Writes the whole error (stack, cause, argv) to a file and returns its path. */
function writeTrace(e: unknown, argv: string[]): string | null {
  const file = join(tmpdir(), `rewardlab-error-${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}.log`);
  try {
    writeFileSync(
      file,
      [`rewardlab ${VERSION}, node ${process.version}`, `argv: ${JSON.stringify(argv)}`, "", inspect(e, { depth: 6 }), ""].join("\n"),
    );
    return file;
  } catch {
    return null;
  }
}

/** The exit code of an error: 2 for the user's mistakes (printed as one line), 1 for internal errors (trace in a file). */
export function reportError(e: unknown, argv: string[], ctx: Pick<CliContext, "err">): number {
  if (e instanceof CommanderError) {
    // commander already printed it (with a did-you-mean); help and version are not errors
    if (e.code === "commander.helpDisplayed" || e.code === "commander.help" || e.code === "commander.version") return 0;
    return 2;
  }
  if (e instanceof RewardlabError) {
    ctx.err(`error: ${oneLine(e.message)}`);
    return 2;
  }
  if (e instanceof PoolStopped) {
    // Ctrl-C (or SIGTERM) during a probe, compare or sweep: the pool has already ended its worker threads
    ctx.err(`stopped: ${oneLine(e.message)}; worker threads ended, nothing was stored for the unfinished jobs`);
    return 130;
  }
  const file = writeTrace(e, argv);
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  ctx.err(`internal error: ${oneLine(what, 200)}`);
  ctx.err(file ? `the full trace is in ${file}; please include it when you report this` : "(the trace could not be written to a file)");
  return 1;
}

/** Verbs that never touch an agent: they run without loading the agents or TensorFlow.js. */
const ENV_VERBS = new Set(["envs", "play", "check-env"]);

/** The verb of an argument list: its first word that is neither an option nor the value of a global one ("" when none). */
function verbOf(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--data" || a === "--levels" || a === "--plugin") i++;
    else if (!a.startsWith("-")) return a;
  }
  return "";
}

export async function main(argv: string[], extra: CommandFactory[] = []): Promise<number> {
  // `rewardlab watch ... | head`: a closed pipe ends the output, quietly
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  const ctx: CliContext = {
    userEnvs: {},
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
  };
  try {
    // the agents (and TensorFlow.js with them) load unless the verb is about environments alone;
    // before plugins, as when they were a static import (a plugin's agents register after the built-in ones)
    if (!ENV_VERBS.has(verbOf(argv))) await import("../agents/index.ts");
    const rest = await loadGlobalOptions(argv, ctx);
    const { program, result } = buildProgram(ctx, extra);
    if (rest.length === 0) {
      ctx.out(program.helpInformation().replace(/\n$/, ""));
      return 2;
    }
    await program.parseAsync(rest, { from: "user" });
    return result.code;
  } catch (e) {
    return reportError(e, argv, ctx);
  }
}
