/** A real Redis server on a free loopback port and `rewardlab worker` processes, for the queue tests; `stopAll` ends every process started here. */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { ROOT } from "./spawn-cli.ts";

const children: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts redis-server (no persistence) and resolves with its port once it accepts connections. */
export async function startRedis(): Promise<number> {
  const port = await freePort();
  const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  children.push(redis);
  await new Promise<void>((resolve, reject) => {
    let out = "";
    redis.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) resolve();
    });
    redis.on("exit", (code) => reject(new Error(`redis-server exited with code ${code}`)));
  });
  return port;
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Resolves when the worker has taken its first job. */
  taken: Promise<void>;
  /** Everything the worker logged so far (pino JSON lines on stderr). */
  log(): string;
}

/** `rewardlab worker --queue url` with a short lock, logging at info. */
export function startWorker(url: string, lockMs = 3000): WorkerProcess {
  const child = spawn(process.execPath, ["bin/rewardlab.js", "worker", "--queue", url, "--lock-ms", String(lockMs)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, REWARDLAB_LOG_LEVEL: "info" },
  });
  children.push(child);
  let log = "";
  const taken = new Promise<void>((resolve) => {
    child.stderr!.on("data", (d: Buffer) => {
      log += d.toString();
      if (log.includes("job taken")) resolve();
    });
  });
  return { child, taken, log: () => log };
}

export function stopAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}
