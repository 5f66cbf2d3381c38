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
import { existsSync, readFileSync } from "node:fs";
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
  await mkdir(next, { recursive: true });
  await save(next);
  if (!complete(next)) throw new Error(`the agent's save wrote no agent.json into ${next}`);
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

/** The newest complete checkpoint in a run's folder, or null if there is none. */
export function resumableCheckpoint(runDir: string): string | null {
  for (const name of [CHECKPOINT_DIR, PREV]) {
    const dir = join(runDir, name);
    if (complete(dir)) return dir;
  }
  return null;
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
