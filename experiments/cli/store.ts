/** `runs`, `report`, `sweep` and `worker`: the data folder's store, and sweeps on one machine or many. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command, Option } from "commander";
import type { BackendName } from "../../agents/shared/backend.ts";
import { make } from "../../envs/registry.ts";
import { Progress } from "../progress.ts";
import { runReport } from "../report.ts";
import { Store, type StoredRun } from "../store.ts";
import { runSweep } from "../sweeps/index.ts";
import { checkQueueReachable, startQueueWorker } from "../sweeps/queue.ts";
import { printProbe, queueUrl, showSweepProgress } from "./probe.ts";
import { type CliContext, UserError, backendOption, dataDir, jsonOption, positiveInt, readJsonFile } from "./options.ts";

function runsVerb(data: string, json: boolean, ctx: CliContext): number {
  const store = new Store(data);
  try {
    const runs = store.listRuns();
    if (json) {
      ctx.out(
        JSON.stringify(
          runs.map((r) => ({
            id: r.id,
            env: r.spec.env,
            agent: r.spec.agent,
            seed: r.spec.seed,
            status: r.status,
            reason: r.reason,
            envSteps: r.envSteps,
            steps: r.spec.steps,
            episodes: r.episodes,
          })),
        ),
      );
      return 0;
    }
    if (runs.length === 0) ctx.out(`no runs in ${store.dataDir}`);
    for (const r of runs) {
      const recent = store.recent(r.id);
      ctx.out(
        `${r.id}  ${r.spec.agent.padEnd(9)} ${`${r.spec.env}/${r.spec.variant}`.padEnd(26)} seed ${String(r.spec.seed).padEnd(4)} ${r.status.padEnd(11)} ${r.envSteps}/${r.spec.steps}` +
          (recent ? `  return ${recent.return.toFixed(1)} perf ${recent.performance.toFixed(1)}` : "") +
          (r.reason ? `  (${r.reason})` : ""),
      );
    }
    return 0;
  } finally {
    store.close();
  }
}

/** A stored run by its id or a unique prefix of it (the client shows 8 characters). */
export function findRun(store: Store, prefix: string): StoredRun {
  const exact = store.getRun(prefix);
  if (exact) return exact;
  const matches = store.listRuns().filter((r) => r.id.startsWith(prefix));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1)
    throw new UserError(
      `run id ${prefix} matches ${matches.length} runs (${matches
        .slice(0, 3)
        .map((r) => r.id.slice(0, 13))
        .join(", ")}...); give more characters`,
    );
  throw new UserError(`no run ${prefix} in ${store.dataDir}; \`rewardlab runs\` lists them (or give --data)`);
}

async function reportVerb(id: string, data: string, ctx: CliContext): Promise<number> {
  const store = new Store(data);
  try {
    const run = findRun(store, id);
    const env = make(run.spec.env, { ...run.spec.envConfig, variant: run.variant });
    env.reset({ seed: run.spec.seed });
    const frame = env.render();
    const cells = frame.width * frame.height;
    const { entries, visits } = store.ledger(run.id);
    const ledgerCells = new Array<number>(cells).fill(0);
    const visitCells = new Array<number>(cells).fill(0);
    // the env says which cell a state key puts the agent in (-1: none)
    const cellOf = (k: string) => {
      const c = env.cellOfKey?.(Number(k)) ?? -1;
      return c >= 0 && c < cells ? c : -1;
    };
    for (const [k, v] of Object.entries(entries)) if (cellOf(k) >= 0) ledgerCells[cellOf(k)]! += v.reduce((a, b) => a + b, 0);
    for (const [k, v] of Object.entries(visits)) if (cellOf(k) >= 0) visitCells[cellOf(k)]! += v;
    const html = runReport({
      ...run,
      episodes: store.episodes(run.id),
      interventions: store.interventions(run.id),
      frame,
      ledgerCells: Object.keys(entries).length ? ledgerCells : null,
      visitCells,
    });
    const dir = join(store.dataDir, "reports");
    await mkdir(dir, { recursive: true });
    const file = join(dir, `run-${run.id}.html`);
    await writeFile(file, html);
    ctx.out(`report written to ${file}`);
    return 0;
  } finally {
    store.close();
  }
}

async function sweepVerb(
  file: string,
  o: { queue?: string; workers?: number; attempts?: number; json?: boolean },
  data: string,
  ctx: CliContext,
) {
  const spec = await readJsonFile(file, "sweep spec (see examples/sweeps/small.json)", "sweep");
  const store = new Store(data);
  const progress = new Progress(1, !o.json, "sweep ");
  try {
    const summary = await runSweep(spec, {
      store,
      ...(o.queue ? { queue: o.queue } : {}),
      ...(o.workers ? { workers: o.workers } : {}),
      ...(o.attempts ? { attempts: o.attempts } : {}),
      userEnvs: ctx.userEnvs,
      onProgress: showSweepProgress(progress),
    });
    progress.done();
    if (o.json) {
      ctx.out(JSON.stringify(summary));
    } else {
      ctx.out(
        `sweep ${summary.name} (${summary.id}, ${summary.mode}): ${summary.completed} completed, ${summary.failed} failed, ${summary.skipped} already in the store, of ${summary.total}, in ${summary.seconds.toFixed(1)} s`,
      );
      for (const p of summary.probes) printProbe(p, ctx.out);
      ctx.out(`stored in ${store.dataDir}; \`rewardlab runs\` lists the runs`);
    }
    return summary.failed > 0 ? 1 : 0;
  } finally {
    store.close();
  }
}

async function workerVerb(
  o: { queue: string; concurrency: number; lockMs?: number; backend?: BackendName },
  ctx: CliContext,
): Promise<number> {
  await checkQueueReachable(o.queue);
  const worker = startQueueWorker(o.queue, {
    concurrency: o.concurrency,
    ...(o.lockMs ? { lockMs: o.lockMs } : {}),
    ...(o.backend ? { backend: o.backend } : {}),
    userEnvs: ctx.userEnvs,
  });
  await worker.waitUntilReady();
  ctx.out(`rewardlab worker taking jobs from ${o.queue} (concurrency ${o.concurrency})`);
  await new Promise<void>((res) => {
    const stop = () => void worker.close().then(res);
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
}

export function storeCommands(ctx: CliContext, globals: () => { data?: string }, done: (code: number) => void): Command[] {
  const runsCmd = new Command("runs")
    .description("list the runs stored in the data folder")
    .addOption(jsonOption())
    .action((o: { json?: boolean }) => done(runsVerb(dataDir(globals().data), o.json ?? false, ctx)));

  const reportCmd = new Command("report")
    .description("write one run's self-contained HTML report into <data>/reports/")
    .argument("<run-id>", "the run's id, or a unique prefix of it (the 8 characters the client shows)")
    .action(async (id: string) => done(await reportVerb(id, dataDir(globals().data), ctx)));

  const sweepCmd = new Command("sweep")
    .description("run a sweep spec on local worker threads (or a Redis queue); re-running skips what is stored")
    .argument("<spec.json>", "the sweep spec (see examples/sweeps/small.json)")
    .addOption(new Option("--queue <url>", "redis://host:port: hand the jobs to `rewardlab worker`s").argParser(queueUrl))
    .addOption(new Option("--workers <n>", "local worker threads (default: one per core)").argParser(positiveInt))
    .addOption(new Option("--attempts <n>", "attempts per queued job").argParser(positiveInt).default(3))
    .addOption(jsonOption())
    .action(async (file: string, o: { queue?: string; workers?: number; attempts?: number; json?: boolean }) =>
      done(await sweepVerb(file, o, dataDir(globals().data), ctx)),
    );

  const workerCmd = new Command("worker")
    .description(
      "take sweep and probe jobs (sweep, probe, compare and serve with --queue) from a Redis queue until stopped (SIGINT/SIGTERM)",
    )
    .addOption(new Option("--queue <url>", "redis://host:port").argParser(queueUrl).makeOptionMandatory())
    .addOption(new Option("--concurrency <n>", "jobs at once (one per core)").argParser(positiveInt).default(1))
    .addOption(new Option("--lock-ms <ms>", "how long a job's lock lasts without renewal").argParser(positiveInt).default(30_000))
    .addOption(backendOption())
    .action(async (o: { queue: string; concurrency: number; lockMs?: number; backend?: BackendName }) => done(await workerVerb(o, ctx)));
  return [runsCmd, reportCmd, sweepCmd, workerCmd];
}
