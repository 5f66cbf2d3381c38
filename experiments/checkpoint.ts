/**
 * Checkpoints that a crash cannot tear.
 *
 * An agent's save writes several files (agent.json, weights, ledger). Written
 * in place, a kill -9 in the middle leaves a directory that mixes two saves or
 * holds a truncated file, and the run can never be resumed. So a checkpoint is
 * written whole into `checkpoint.next/` and then swapped in by renames:
 *
 *   checkpoint/       -> checkpoint.prev/   (rename)
 *   checkpoint.next/  -> checkpoint/        (rename)
 *   checkpoint.prev/  removed
 *
 * A crash at any point leaves `checkpoint/` or `checkpoint.prev/` complete, and
 * `resumableCheckpoint` picks the newest complete one. A save is complete when
 * its agent.json (written last by every agent's save) is present.
 *
 * This guards against the process dying, not against the machine losing power
 * (the files are not fsync'ed: the page cache survives a killed process).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { RunSpec } from "./events.ts";

export const CHECKPOINT_DIR = "checkpoint";
const NEXT = `${CHECKPOINT_DIR}.next`;
const PREV = `${CHECKPOINT_DIR}.prev`;

const complete = (dir: string) => existsSync(join(dir, "agent.json"));

/** Saves through `save(dir)` into a fresh directory, then swaps it in; returns the checkpoint's path. */
export async function writeCheckpoint(runDir: string, save: (dir: string) => Promise<void>): Promise<string> {
  const next = join(runDir, NEXT);
  const current = join(runDir, CHECKPOINT_DIR);
  const prev = join(runDir, PREV);
  await rm(next, { recursive: true, force: true });
  try {
    await mkdir(next, { recursive: true });
    await save(next);
    if (!complete(next)) throw new Error(`the agent's save wrote no agent.json into ${next}`);
  } catch (e) {
    // a full disk leaves no half-written checkpoint behind; the previous one stays in place
    await rm(next, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  if (existsSync(current)) {
    // keep a complete older checkpoint as the fallback until the new one is in place
    if (complete(current)) {
      await rm(prev, { recursive: true, force: true });
      await rename(current, prev);
    } else {
      await rm(current, { recursive: true, force: true });
    }
  }
  await rename(next, current);
  await rm(prev, { recursive: true, force: true });
  return current;
}

/** The newest complete and valid checkpoint in a run's folder (checkpoint/, else checkpoint.prev/), or null if there is none. */
export function resumableCheckpoint(runDir: string): string | null {
  for (const name of [CHECKPOINT_DIR, PREV]) {
    const dir = join(runDir, name);
    if (complete(dir) && checkpointProblem(dir) === null) return dir;
  }
  return null;
}

/** Why the newest checkpoint of a run's folder cannot be loaded (naming the file), or null when it can. */
export function checkpointProblems(runDir: string): string[] {
  const out: string[] = [];
  for (const name of [CHECKPOINT_DIR, PREV]) {
    const dir = join(runDir, name);
    if (!existsSync(dir)) continue;
    out.push(complete(dir) ? (checkpointProblem(dir) ?? "") : `${join(dir, "agent.json")} is missing (an unfinished save)`);
  }
  return out.filter(Boolean);
}

const BYTES_PER: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, complex64: 8 };

/** Checks without loading the agent: every JSON file parses (agent.json to an object), run.json has a step count, weights match their manifest. */
function validateCheckpoint(dir: string): string | null {
  const json = (file: string): unknown => {
    const path = join(dir, file);
    try {
      return JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new Error(`${path} cannot be read: ${(e as Error).message}`);
    }
  };
  try {
    const files = readdirSync(dir);
    const meta = json("agent.json");
    if (!meta || typeof meta !== "object" || Array.isArray(meta)) return `${join(dir, "agent.json")} is not a JSON object`;
    if (files.includes(RUN_STATE_FILE)) {
      const state = json(RUN_STATE_FILE) as { envSteps?: unknown } | null;
      if (!state || typeof state.envSteps !== "number" || !(state.envSteps >= 0)) return `${join(dir, RUN_STATE_FILE)} has no envSteps`;
    }
    for (const f of files) if (f.endsWith(".json") && f !== "agent.json" && f !== RUN_STATE_FILE) json(f);
    if (files.includes("weights.json")) {
      const manifest = json("weights.json") as {
        weightsManifest?: { paths?: unknown; weights?: { shape?: number[]; dtype?: string }[] }[];
      };
      if (!Array.isArray(manifest?.weightsManifest)) return `${join(dir, "weights.json")} has no weightsManifest`;
      for (const group of manifest.weightsManifest) {
        if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) return `${join(dir, "weights.json")} is malformed`;
        let expected = 0;
        for (const w of group.weights) expected += (w.shape ?? []).reduce((a, b) => a * b, 1) * (BYTES_PER[w.dtype ?? "float32"] ?? 4);
        let actual = 0;
        for (const p of group.paths) {
          if (typeof p !== "string" || p.includes("/") || p.includes("\\") || !files.includes(p))
            return `${join(dir, "weights.json")} names a missing file ${String(p)}`;
          actual += statSync(join(dir, p)).size;
        }
        if (actual !== expected) return `${join(dir, String(group.paths[0]))} holds ${actual} bytes, its manifest says ${expected}`;
      }
    }
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const verdicts = new Map<string, { stamp: string; problem: string | null }>();

/** validateCheckpoint, remembered until a file of the checkpoint changes (run lists ask for every run). */
export function checkpointProblem(dir: string): string | null {
  let stamp = "";
  try {
    for (const f of readdirSync(dir).sort()) {
      const st = statSync(join(dir, f));
      stamp += `${f}:${st.size}:${st.mtimeMs}:${st.ino};`;
    }
  } catch (e) {
    return `${dir} cannot be read: ${(e as Error).message}`;
  }
  const known = verdicts.get(dir);
  if (known?.stamp === stamp) return known.problem;
  const problem = validateCheckpoint(dir);
  if (verdicts.size > 10_000) verdicts.clear();
  verdicts.set(dir, { stamp, problem });
  return problem;
}

/** The run's own state at the checkpoint (step count, variant, learning, reward), beside the agent's files. */
export const RUN_STATE_FILE = "run.json";

/** The run's own state at a checkpoint (run.json beside the agent's files). */
export interface RunCheckpointState {
  /** The run's step count (the agent's own count leaves out steps taken with learning off). */
  envSteps: number;
  variant: string;
  learning: boolean;
  reward: RunSpec["reward"];
}

/** What a checkpoint says about where it was taken: the run's state and the ledger's running total (if the agent keeps one). */
export function readCheckpointPoint(dir: string): {
  state: Partial<RunCheckpointState> & { envSteps: number };
  ledger: Record<string, number[]> | null;
} {
  let state: Partial<RunCheckpointState> & { envSteps: number };
  try {
    state = JSON.parse(readFileSync(join(dir, RUN_STATE_FILE), "utf8"));
  } catch {
    // checkpoints from before run.json: the agent's own step count is the best there is
    const meta = JSON.parse(readFileSync(join(dir, "agent.json"), "utf8")) as { envSteps?: unknown };
    if (typeof meta.envSteps !== "number") throw new Error(`${dir}/agent.json has no envSteps`);
    state = { envSteps: meta.envSteps };
  }
  let ledger: Record<string, number[]> | null = null;
  try {
    const saved = JSON.parse(readFileSync(join(dir, "ledger.json"), "utf8")) as { total?: { entries?: Record<string, number[]> } };
    ledger = saved.total?.entries ?? null;
  } catch {
    // agents without a ledger (the planner) save none
  }
  return { state, ledger };
}
