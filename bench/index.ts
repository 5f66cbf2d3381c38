/**
 * `npm run bench`: every speed figure of rewardlab, with ratios. Benchmarks,
 * not tests: these machines are shared and noisy, so read the figures beside
 * the machine's load. Sections: envs, agents, cnn, planner, modelbased, server, sweeps, fulltable, abuse
 * (`npm run bench -- envs planner` runs only those).
 */
import { benchEnvs, formatEnvBench } from "./envs.ts";
import { benchCnn, benchModelFree, formatModelFree } from "./agents.ts";
import { benchPlanner } from "./planner.ts";
import { benchModelBased, formatModelBased } from "./modelbased.ts";
import { benchServer } from "./server.ts";
import { benchSweeps } from "./sweeps.ts";
import { benchFullTable } from "./fulltable.ts";
import { benchAbuse } from "./abuse.ts";
import { availableParallelism, loadavg } from "node:os";
import { initBackend } from "../agents/shared/backend.ts";

const all = ["envs", "agents", "cnn", "planner", "modelbased", "server", "sweeps", "fulltable", "abuse"];
const only = process.argv.slice(2).filter((a) => all.includes(a));
const want = (s: string) => only.length === 0 || only.includes(s);

console.log(
  `rewardlab bench: node ${process.version}, ${availableParallelism()} cores, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);

if (want("envs")) {
  console.log("\n## environments: steps/s through make() (time limit, order checks, fresh observation, auto-reset)");
  console.log(formatEnvBench(await benchEnvs()));
}
if (want("agents")) {
  console.log("\n## model-free agents: end-to-end training env steps/s on BoatRace-v0, default configs");
  console.log(formatModelFree(await benchModelFree()));
}
if (want("cnn")) {
  const { envId, rows } = await benchCnn();
  console.log(
    `\n## convolutional policy: PPO on ${envId} (16 copies x 64 steps), the MLP beside two CNN sizes, and Maze-v0's training config; steps per CPU second survive a shared machine`,
  );
  console.log(formatModelFree(rows));
}
if (want("planner")) {
  console.log("\n## planner: simulated env steps/s and acting steps/s");
  const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
  for (const r of await benchPlanner()) {
    console.log(
      `${r.env.padEnd(22)} ${r.search.padEnd(11)} states ${String(r.states).padStart(6)}  sim steps/s ${fmt(r.simStepsPerSec).padStart(11)}  act steps/s ${fmt(r.actStepsPerSec).padStart(9)}  (aim 200,000 sim steps/s: ratio ${(r.simStepsPerSec / 200_000).toFixed(2)})`,
    );
  }
}
if (want("modelbased")) {
  // the backend is chosen here: run alone, this section would otherwise train on tfjs's default (cpu) backend
  const backend = await initBackend();
  console.log(
    `\n## model-based learners (backend ${backend}): training env steps/s, search simulations/s and network evaluations/s inside the search`,
  );
  console.log(formatModelBased(await benchModelBased()));
}
if (want("server")) await benchServer({ soakMinutes: Number(process.env.BENCH_SOAK_MINUTES ?? 10) });
if (want("sweeps")) await benchSweeps();
if (want("fulltable")) await benchFullTable();
if (want("abuse")) await benchAbuse();
process.exit(0);
