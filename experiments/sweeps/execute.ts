/**
 * Executes one sweep job wherever it runs (a local worker thread or a BullMQ
 * worker on another machine) and packs everything the coordinator stores:
 * episode and update statistics, the evaluation, the status and reason, and
 * the trained agent's checkpoint files. Nothing here touches the store.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { EpisodeStats } from "../events.ts";
import { Run } from "../run.ts";
import { runProbeJob } from "../probes/job.ts";
import type { JobOutcome, RunOutcome, SweepJob } from "../jobs.ts";

export type { JobOutcome, ProbeOutcome, RunOutcome } from "../jobs.ts";

/** Where a job ran: host and thread/process, for the store and the progress view. */
function where(): string {
  return `${hostname()}:${process.pid}`;
}

export async function executeSweepJob(job: SweepJob): Promise<JobOutcome> {
  const started = performance.now();
  if (job.kind === "probe") {
    try {
      const result = await runProbeJob(job.job);
      return {
        kind: "probe",
        key: job.key,
        probe: job.job.probe,
        status: "completed",
        reason: null,
        result,
        seconds: (performance.now() - started) / 1000,
        host: where(),
      };
    } catch (e) {
      return {
        kind: "probe",
        key: job.key,
        probe: job.job.probe,
        status: "failed",
        reason: (e as Error).message,
        result: null,
        seconds: (performance.now() - started) / 1000,
        host: where(),
      };
    }
  }
  const dir = await mkdtemp(join(tmpdir(), "rewardlab-job-"));
  try {
    const run = new Run(job.key, job.spec, { dir });
    const episodes: EpisodeStats[] = [];
    const updates: RunOutcome["updates"] = [];
    let reason: string | null = null;
    run.on((e) => {
      if (e.type === "episode") episodes.push(e.episode);
      else if (e.type === "update") updates.push({ update: e.update, envSteps: e.envSteps, metrics: e.metrics });
      else if (e.type === "status" && e.reason) reason = e.reason;
    });
    const status = await run.execute();
    run.agent?.dispose();
    let checkpoint: Record<string, string> | null = null;
    const cdir = join(dir, "checkpoint");
    try {
      checkpoint = {};
      for (const f of await readdir(cdir)) checkpoint[f] = (await readFile(join(cdir, f))).toString("base64");
    } catch {
      checkpoint = null;
    }
    return {
      kind: "run",
      key: job.key,
      spec: job.spec,
      status,
      reason,
      envSteps: run.envSteps,
      episodes,
      updates,
      evaluation: run.evaluation,
      checkpoint,
      seconds: (performance.now() - started) / 1000,
      host: where(),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
