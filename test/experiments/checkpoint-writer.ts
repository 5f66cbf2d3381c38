/**
 * Child process for checkpoint.test.ts: creates a PPO agent and writes
 * checkpoints in a loop as fast as it can, printing each step count it has
 * committed, until it is killed.
 */
import { createAgent } from "../../agents/registry.ts";
import "../../agents/model-free/ppo.ts"; // registers ppo (the only agent this child needs: a quicker start)
import { initBackend } from "../../agents/shared/backend.ts";
import { envInfo } from "../agents/testing.ts";
import "../../envs/index.ts";
import { writeCheckpoint } from "../../experiments/checkpoint.ts";

const runDir = process.argv[2]!;
await initBackend("cpu");
const agent = createAgent("ppo", envInfo("BoatRace-v0", 4), { numSteps: 16 }, 1);
for (let i = 0; ; i++) {
  await writeCheckpoint(runDir, (d) => agent.save(d));
  process.stdout.write(`saved ${i}\n`);
}
