/** The source a command runs from: the git commit of this checkout (with "-dirty" when tracked files changed), for outputs that name their commit. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** e.g. "851b5e2", "851b5e2-dirty", or "unknown (rewardlab 0.1.0, not a git checkout)". */
export function sourceCommit(): string {
  const git = (args: string[]) =>
    execFileSync("git", ["-C", ROOT, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const head = git(["rev-parse", "--short=7", "HEAD"]);
    const dirty = git(["status", "--porcelain", "--untracked-files=no"]) !== "";
    return dirty ? `${head}-dirty` : head;
  } catch {
    let version = "?";
    try {
      version = (JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8")) as { version?: string }).version ?? "?";
    } catch {
      // no package.json beside the sources: the version stays unknown
    }
    return `unknown (rewardlab ${version}, not a git checkout)`;
  }
}
