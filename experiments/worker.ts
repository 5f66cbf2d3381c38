/**
 * A worker thread that executes jobs: a whole run (streaming its events to
 * the parent), a probe seed (train, then test with learning off) or a sweep
 * job. An entry point, on the top floor of experiments/ with the command
 * line: experiments/pool.ts starts it by file name and imports nothing of it.
 */
import { parentPort } from "node:worker_threads";
import "../envs/index.ts";
import "../agents/index.ts";
import { initBackend } from "../agents/shared/backend.ts";
import { Run } from "./run.ts";
import { loadUserEnvironments } from "./plugins.ts";
import type { JobKind, WorkerRequest, WorkerReply } from "./pool.ts";
import { type ProbeJob, type ProbeJobResult, runProbeJob } from "./probes/job.ts";
import { aggregateProbe, type ProbePlan } from "./probes/index.ts";
import type { SweepJob } from "./jobs.ts";
import { executeSweepJob } from "./sweeps/execute.ts";

/** What executes each kind of job (pool.ts's JobKind): its input and output are plain data. */
const JOBS: Record<JobKind, (input: unknown) => Promise<unknown>> = {
  probe: (input) => runProbeJob(input as ProbeJob),
  sweep: (input) => executeSweepJob(input as SweepJob),
  aggregate: async (input) => {
    const { plan, results } = input as { plan: ProbePlan; results: ProbeJobResult[] };
    return aggregateProbe(plan, results);
  },
};

if (!parentPort) throw new Error("experiments/worker.ts must run in a worker thread");
const port = parentPort;
const send = (m: WorkerReply) => port.postMessage(m);
let run: Run | null = null;
/** A stop that came while the worker was still loading (before the Run existed). */
let stopEarly = false;

port.on("message", async (m: WorkerRequest) => {
  try {
    switch (m.type) {
      case "run": {
        await loadUserEnvironments(m.userEnvs);
        const backend = await initBackend(m.backend);
        run = new Run(m.runId, m.spec, { dir: m.dir, backend, ...(m.resumeFrom ? { resumeFrom: m.resumeFrom } : {}) });
        run.on((event) => send({ type: "event", event }));
        if (stopEarly) run.stop();
        const status = await run.execute();
        send({ type: "done", status });
        break;
      }
      case "job": {
        await loadUserEnvironments(m.userEnvs);
        await initBackend(m.backend);
        send({ type: "output", output: await JOBS[m.kind](m.input) });
        break;
      }
      case "pause":
        run?.pause();
        break;
      case "resume":
        run?.resume();
        break;
      case "stop":
        if (run) run.stop();
        else stopEarly = true;
        break;
      case "intervene":
        try {
          run?.intervene(m.change);
        } catch (e) {
          send({ type: "warning", message: (e as Error).message });
        }
        break;
    }
  } catch (e) {
    send({ type: "error", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
});
