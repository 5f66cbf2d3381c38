/**
 * train.json: what was trained (env, variant, agent, seed, steps, configs),
 * written beside a saved agent's checkpoint by `train` and by a probe that
 * saves its policies, so `eval`, `watch` and `steer` know the env without
 * being told.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RunSpec } from "./events.ts";

export const TRAIN_FILE = "train.json";

/** The run spec's fields that say what was trained, as `train.json` keeps them. */
const RECORD_FIELDS = ["env", "variant", "agent", "seed", "steps", "config", "envConfig"] as const;
export type TrainRecord = Pick<RunSpec, (typeof RECORD_FIELDS)[number]>;

/** Writes `dir`/train.json from a resolved run spec. */
export async function writeTrainRecord(dir: string, spec: RunSpec): Promise<void> {
  const record = Object.fromEntries(RECORD_FIELDS.map((k) => [k, spec[k]])) as TrainRecord;
  await writeFile(join(dir, TRAIN_FILE), JSON.stringify(record, null, 2));
}
