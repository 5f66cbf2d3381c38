/**
 * Worker threads for independent runs: one thread per job, at most
 * `workers` at once (one per core by default). A job that crashes its
 * thread fails alone.
 */
import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import type { RunEvent, RunSpec, RunStatus } from "./events.ts";
import type { Intervention } from "./run.ts";
import type { UserEnvironments } from "./plugins.ts";
import type { ProbeJob, ProbeJobResult } from "./probes/job.ts";

export type BackendName = "tensorflow" | "wasm" | "cpu";

export type WorkerRequest =
  | { type: "run"; runId: string; spec: RunSpec; dir: string; resumeFrom?: string; backend?: BackendName; userEnvs: UserEnvironments }
  | { type: "probe-job"; job: ProbeJob; backend?: BackendName; userEnvs: UserEnvironments }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "stop" }
  | { type: "intervene"; change: Intervention };

export type WorkerReply =
  | { type: "event"; event: RunEvent }
  | { type: "done"; status: RunStatus }
  | { type: "result"; result: ProbeJobResult }
  | { type: "warning"; message: string }
  | { type: "error"; message: string };

const BOOT = new URL("./worker-boot.js", import.meta.url);

export function spawnWorker(): Worker {
  // workers must not inherit e.g. --inspect or vitest's loader flags
  return new Worker(BOOT, { execArgv: [], env: process.env, stdout: false, stderr: false });
}

export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}

/** Runs probe jobs on up to `workers` threads; resolves with results in job order. */
export async function runJobs(
  jobs: ProbeJob[],
  opts: { workers?: number; backend?: BackendName; userEnvs?: UserEnvironments; onResult?: (r: ProbeJobResult, done: number) => void },
): Promise<ProbeJobResult[]> {
  const results: ProbeJobResult[] = new Array(jobs.length);
  let next = 0;
  let done = 0;
  const width = Math.max(1, Math.min(opts.workers ?? defaultWorkers(), jobs.length));
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await runOneJob(jobs[i]!, opts.backend, opts.userEnvs ?? {});
      done++;
      opts.onResult?.(results[i]!, done);
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  return results;
}

function runOneJob(job: ProbeJob, backend: BackendName | undefined, userEnvs: UserEnvironments): Promise<ProbeJobResult> {
  return new Promise((resolve, reject) => {
    const w = spawnWorker();
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      void w.terminate();
      f();
    };
    w.on("message", (m: WorkerReply) => {
      if (m.type === "result") finish(() => resolve(m.result));
      else if (m.type === "error") finish(() => reject(new Error(`probe job ${job.agent} seed ${job.seed} failed: ${m.message}`)));
    });
    w.on("error", (e) => finish(() => reject(e)));
    w.on("exit", (code) => finish(() => reject(new Error(`probe job worker exited with code ${code}`))));
    w.postMessage({ type: "probe-job", job, ...(backend ? { backend } : {}), userEnvs } satisfies WorkerRequest);
  });
}
