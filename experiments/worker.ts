/**
 * A worker thread that executes jobs: a whole run (streaming its events to
 * the parent) or a probe seed (train, then test with learning off).
 */
import { parentPort } from "node:worker_threads";
import "../envs/index.ts";
import "../agents/index.ts";
import { initBackend } from "../agents/shared/backend.ts";
import { Run } from "./run.ts";
import { loadUserEnvironments } from "./plugins.ts";
import type { WorkerRequest, WorkerReply } from "./pool.ts";
import { runProbeJob } from "./probes/job.ts";
import { executeSweepJob } from "./sweeps/execute.ts";

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
      case "probe-job": {
        await loadUserEnvironments(m.userEnvs);
        await initBackend(m.backend);
        const result = await runProbeJob(m.job);
        send({ type: "result", result });
        break;
      }
      case "sweep-job": {
        await loadUserEnvironments(m.userEnvs);
        await initBackend(m.backend);
        send({ type: "outcome", outcome: await executeSweepJob(m.job) });
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
