/**
 * Vitest global setup: every temporary folder the tests make (os.tmpdir(),
 * in this process, its forks and the CLIs and servers they spawn) goes under
 * one fresh folder, removed when the run ends. Tests then need no cleanup of
 * their own, and a run leaves nothing in /tmp.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), "rewardlab-tests-"));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(root, { recursive: true, force: true });
  };
}
