/**
 * What every verb of the command line shares: typed option parsers (a bad
 * value is refused before any work, with what was wrong and what to give
 * instead), the data folder, JSON files read with a clear error, and the
 * user error that the entry point prints as one line with exit code 2.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { InvalidArgumentError, Option } from "commander";
import { agentRegistration, agentRegistrations } from "../../agents/registry.ts";
import { AGENT_ENTRY_PATTERN, entryAgent } from "../probes/request.ts";
import { BACKENDS, type BackendName } from "../../agents/shared/backendnames.ts";
import { RewardlabError } from "../../envs/errors.ts";
import { registered, registration } from "../../envs/registry.ts";
import type { UserEnvironments } from "../plugins.ts";

/** A mistake in what the user gave (a flag, a file, a folder): printed as one line, exit code 2. */
export class UserError extends RewardlabError {}

/** What the verbs share at run time: the global options, already applied. */
export interface CliContext {
  /** --levels/--plugin, handed on to worker threads. */
  userEnvs: UserEnvironments;
  out(line: string): void;
  err(line: string): void;
}

/** The data folder: --data, else REWARDLAB_DATA, else ./data. */
export function dataDir(value: string | undefined): string {
  return resolve(value ?? process.env.REWARDLAB_DATA ?? "data");
}

// ---------------------------------------------------------------- value parsers

function integer(value: string, min: number, what: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n)) throw new InvalidArgumentError(`must be ${what}.`);
  if (n < min) throw new InvalidArgumentError(`must be ${what}.`);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`must be at most ${Number.MAX_SAFE_INTEGER}.`);
  return n;
}

/** 1, 2, 3, ...: counts that must be at least one (steps, seeds, episodes, workers). */
export const positiveInt = (value: string): number => integer(value, 1, "a positive integer (1 or more)");
/** 0, 1, 2, ...: seeds. */
export const nonNegativeInt = (value: string): number => integer(value, 0, "a non-negative integer (0 or more)");

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a positive number.");
  return n;
}

export function agentNames(): string[] {
  return agentRegistrations().map((r) => r.name);
}

/** `--agents a,b,c`: every name registered (did-you-mean otherwise), no repeats; `name:tag` is a further config of an agent (probes). */
export function agentList(value: string): string[] {
  const names = value
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError(`give one or more agents, comma-separated (${agentNames().join(", ")}).`);
  for (const n of names) {
    if (!new RegExp(AGENT_ENTRY_PATTERN).test(n))
      throw new InvalidArgumentError(`"${n}": write an agent's name, or name:tag for another config of it (e.g. planner:neural).`);
    try {
      agentRegistration(entryAgent(n));
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  }
  return [...new Set(names)];
}

/** An environment id, checked against the registry (the message names the closest ids). */
export function envId(value: string): string {
  try {
    registration(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return value;
}

/** Checks a variant against the env's list, naming the valid ones. */
export function checkVariant(env: string, variant: string | undefined): string {
  const variants = registration(env).variants;
  if (variant === undefined) return variants[0]!;
  if (!variants.includes(variant)) {
    throw new UserError(`--variant ${variant}: not a variant of ${env}; use one of ${variants.join(", ")}`);
  }
  return variant;
}

// ---------------------------------------------------------------- shared options

export const backendOption = () =>
  new Option("--backend <name>", "TensorFlow.js backend (default: REWARDLAB_BACKEND, else the fastest available)").choices(BACKENDS);

export const jsonOption = () => new Option("--json", "print one JSON object instead of text");

export const envOption = (description = "environment id (`rewardlab envs` lists them)") =>
  new Option("--env <id>", description).argParser(envId);

/** Initialises the backend; says so when the one asked for is not available here. */
export async function startBackend(wanted: BackendName | undefined, ctx: CliContext): Promise<BackendName> {
  const why: string[] = [];
  // TensorFlow.js loads here, with the first command that trains or plays an agent
  const { initBackend } = await import("../../agents/shared/backend.ts");
  const got = await initBackend(wanted, (line) => why.push(line));
  if (wanted && got !== wanted) ctx.err(`warning: backend ${wanted} is not available on this machine; using ${got}`);
  else if (!wanted && !BACKENDS.includes(process.env.REWARDLAB_BACKEND as BackendName) && got !== "tensorflow")
    ctx.err(
      nativeBackendNote(
        got,
        why.find((l) => l.startsWith("tensorflow unavailable")),
      ),
    );
  return got;
}

/** One line: why the native backend is not in use and how to get it (or how to choose a backend and silence this). */
export function nativeBackendNote(got: BackendName, reason: string | undefined): string {
  const missing = !reason || /Cannot find (package|module)|ERR_MODULE_NOT_FOUND/.test(reason);
  const cause = missing
    ? "@tensorflow/tfjs-node is not installed"
    : `@tensorflow/tfjs-node did not load (${reason!.replace(/^tensorflow unavailable: /, "").slice(0, 120)})`;
  return `note: running on ${got}: ${cause}; for the native backend run \`npm install @tensorflow/tfjs-node\` (downloads libtensorflow), or pick one with --backend / REWARDLAB_BACKEND`;
}

// ---------------------------------------------------------------- files

/** Reads a JSON file the user named; a missing file or bad JSON is a UserError naming the file and the fix. */
export async function readJsonFile(path: string, what: string, flag: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a file" : (code ?? "cannot read it");
    throw new UserError(`${flag} ${path}: ${why}; give the path of a JSON ${what}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${flag} ${path}: not valid JSON (${jsonWhere((e as Error).message, text)}); fix the file and run again`);
  }
}

/** A JSON object given inline (starts with "{") or as a file path. */
export async function jsonObjectArg(value: string, what: string, flag: string): Promise<Record<string, unknown>> {
  let parsed: unknown;
  if (value.trim().startsWith("{")) {
    try {
      parsed = JSON.parse(value);
    } catch (e) {
      throw new UserError(`${flag}: not valid JSON (${jsonWhere((e as Error).message, value)}); give a JSON object or a file path`);
    }
  } else {
    parsed = await readJsonFile(value, what, flag);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new UserError(`${flag} ${value}: must be a JSON object`);
  return parsed as Record<string, unknown>;
}

/** "... at position 57" -> "... at line 3, column 12". */
function jsonWhere(message: string, text: string): string {
  const m = /position (\d+)/.exec(message);
  const firstLine = message.split("\n")[0]!;
  if (!m || /line \d+/.test(message)) return firstLine;
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return `${firstLine.replace(/ in JSON at position \d+.*$/, "")} at line ${line}, column ${column}`;
}

/** `--config agent=JSON`, repeatable: agent configs for probes, e.g. --config 'planner={"model":"learned"}'. */
export function agentConfigs(values: string[] | undefined): Record<string, Record<string, unknown>> | undefined {
  if (!values?.length) return undefined;
  const configs: Record<string, Record<string, unknown>> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UserError(`--config takes agent=JSON (e.g. --config 'planner={"model":"learned"}'), got "${v}"`);
    const agent = v.slice(0, eq).trim();
    let config: unknown;
    try {
      config = JSON.parse(v.slice(eq + 1));
    } catch (e) {
      throw new UserError(`--config ${agent}=...: not JSON (${jsonWhere((e as Error).message, v.slice(eq + 1))})`);
    }
    if (config === null || typeof config !== "object" || Array.isArray(config))
      throw new UserError(`--config ${agent}=...: must be a JSON object`);
    configs[agent] = { ...configs[agent], ...(config as Record<string, unknown>) };
  }
  return configs;
}

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

// ---------------------------------------------------------------- where a trained agent lives

/** The folder holding agent.json inside what the user named, or null. */
function agentFilesIn(dir: string): string | null {
  if (existsSync(join(dir, "agent.json"))) return dir;
  if (existsSync(join(dir, "checkpoint", "agent.json"))) return join(dir, "checkpoint");
  return null;
}

/**
 * Finds a saved agent: the folder itself (agent.json), a run or train folder
 * (checkpoint/agent.json), a name under <data>/agents/, or a stored run's id
 * (or a unique prefix of it) under <data>/runs/.
 */
export function resolveAgentDir(value: string, data: string): { agentDir: string; runDir: string } {
  const direct = resolve(value);
  const candidates = [direct, join(data, "agents", value)];
  const runs = join(data, "runs");
  if (/^[0-9a-f-]{4,}$/i.test(value) && existsSync(runs)) {
    const matches = readdirSync(runs).filter((d) => d.startsWith(value));
    if (matches.length > 1)
      throw new UserError(
        `--agent-dir ${value}: matches ${matches.length} runs (${matches.slice(0, 3).join(", ")}...); give more characters`,
      );
    if (matches.length === 1) candidates.push(join(runs, matches[0]!));
  }
  for (const c of candidates) {
    const found = existsSync(c) && statSync(c).isDirectory() ? agentFilesIn(c) : null;
    if (found) return { agentDir: found, runDir: c };
  }
  if (!existsSync(direct))
    throw new UserError(
      `--agent-dir ${value}: no such folder; give the folder \`rewardlab train --out\` wrote (or a run id from \`rewardlab runs\`)`,
    );
  throw new UserError(
    `--agent-dir ${value}: no saved agent there (no agent.json or checkpoint/agent.json); train one with \`rewardlab train --out ${value}\``,
  );
}

/** Names every registered environment, for help texts. */
export function envIds(): string[] {
  return registered().map((r) => r.id);
}
