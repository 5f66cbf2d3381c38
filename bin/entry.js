// Which code `rewardlab` runs: the compiled JavaScript in dist/ (bin/build-cli.js) while
// no source it was built from is newer than its stamp, else the TypeScript through tsx.
// With --plugin always the sources: a plugin imports them (envs/registry.ts, ...) and
// must register into the very modules the command line uses.
import { readdirSync, statSync } from "node:fs";

/** Folders and files the build compiles or copies: a change to any of them makes dist/ stale. */
export const SOURCE_DIRS = ["envs/", "agents/", "experiments/", "server/"];
export const SOURCE_FILES = ["package.json", "tsconfig.json", "tsconfig.build.json", "bin/build-cli.js", "bin/entry.js"];

/** Newest modification time (ms) of the sources under `root` (a file: URL ending in /). */
export function newestSource(root) {
  let newest = 0;
  const visit = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const url = new URL(e.name + (e.isDirectory() ? "/" : ""), dir);
      if (e.isDirectory()) visit(url);
      else newest = Math.max(newest, statSync(url).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) visit(new URL(d, root));
  for (const f of SOURCE_FILES) newest = Math.max(newest, statSync(new URL(f, root)).mtimeMs);
  return newest;
}

/** { use: "dist" } when the build is current; else { use: "tsx", reason }. */
export function chooseEntry(root, args) {
  if (args.some((a) => a === "--plugin" || a.startsWith("--plugin="))) return { use: "tsx", reason: "plugins import the sources" };
  let built;
  try {
    built = statSync(new URL("dist/.stamp", root)).mtimeMs;
  } catch {
    return { use: "tsx", reason: "dist/ is not built" };
  }
  if (newestSource(root) > built) return { use: "tsx", reason: "dist/ is older than the sources" };
  return { use: "dist" };
}
