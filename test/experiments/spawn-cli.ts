/** Runs the real command line (`node bin/rewardlab.js ...`) as a user would, for the CLI tests. */
import { spawn } from "node:child_process";
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ["bin/rewardlab.js", ...args], {
      cwd: ROOT,
      env: { ...process.env, REWARDLAB_LOG_LEVEL: "warn", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    p.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    p.on("error", rej);
    p.on("close", (code) => res({ code, stdout, stderr }));
  });
}
