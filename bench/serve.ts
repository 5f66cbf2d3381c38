/**
 * A server for a benchmark, in its own process (`rewardlab serve` on a free
 * port, demo off), so that the memory and event loop it reports are the
 * server's alone. bench/server.ts's soak and bench/abuse.ts start it here.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface ServeOptions {
  /** The data folder (its store, checkpoints). */
  data: string;
  /** --max-runs: runs training at once. */
  maxRuns: number;
  /** REWARDLAB_LOG_LEVEL of the server. */
  logLevel: "warn" | "error";
  /** Another rewardlab checkout whose server to start (a before/after comparison); default this one. */
  root?: string;
}

/** Starts the server process (with --expose-gc, for /api/health?gc=1) and resolves with its URL once it listens. */
export async function serveChild(opts: ServeOptions): Promise<{ child: ChildProcess; url: string }> {
  const bin = opts.root ? join(opts.root, "bin/rewardlab.js") : fileURLToPath(new URL("../bin/rewardlab.js", import.meta.url));
  const args = ["--expose-gc", bin, "serve", "--port", "0", "--data", opts.data, "--no-demo", "--max-runs", String(opts.maxRuns)];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, REWARDLAB_LOG_LEVEL: opts.logLevel },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, url };
}
