/**
 * User environments: level folders (--levels DIR, REWARDLAB_LEVELS) and
 * modules (--plugin PATH) that call the public register() API. Plugins come
 * only from the local command line or config, never from the network.
 */
import { resolve, delimiter } from "node:path";
import { pathToFileURL } from "node:url";
import { loadLevelDir } from "../envs/index.ts";

export interface UserEnvironments {
  levels?: string[];
  plugins?: string[];
}

/** Loads every level folder and plugin; returns one message per broken file (the rest still load). */
export async function loadUserEnvironments(opts: UserEnvironments): Promise<string[]> {
  const problems: string[] = [];
  const fromEnv = (process.env.REWARDLAB_LEVELS ?? "").split(delimiter).filter(Boolean);
  for (const dir of [...fromEnv, ...(opts.levels ?? [])]) {
    try {
      const { errors } = loadLevelDir(resolve(dir));
      for (const e of errors) problems.push(e.message);
    } catch (e) {
      problems.push(`levels folder ${dir}: ${(e as Error).message}`);
    }
  }
  for (const p of opts.plugins ?? []) {
    try {
      await import(pathToFileURL(resolve(p)).href);
    } catch (e) {
      problems.push(`plugin ${p}: ${(e as Error).message}`);
    }
  }
  return problems;
}
