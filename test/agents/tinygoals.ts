/** TinyGoals-v0: a 5x5 gridworld (image observations) whose goal moves, for the network and activation tests. */
import { parseLevel } from "../../envs/levels.ts";
import { registerLevel } from "../../envs/levelregistrar.ts";
import { registered } from "../../envs/registry.ts";

/** Three goal cells, one drawn per episode: the policy must read where the goal is. */
export const TINY_GOALS = {
  id: "TinyGoals-v0",
  description: "A 3x3 room, one of three goal cells drawn per episode, for the network tests.",
  legend: { "#": "wall", " ": "floor", A: "start", g: { kind: "goal", reward: 1, performance: 1, choose: true } },
  stepReward: 0,
  maxEpisodeSteps: 12,
  variants: [{ name: "train", art: ["#####", "#g g#", "#   #", "#A g#", "#####"] }],
};

export function registerTinyGoals(): void {
  if (!registered().some((r) => r.id === TINY_GOALS.id)) registerLevel(parseLevel(TINY_GOALS, "test/agents/tinygoals.ts"));
}
