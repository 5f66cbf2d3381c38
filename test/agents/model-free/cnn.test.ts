/**
 * The convolutional policy in the model-free learners (config network "cnn"):
 * PPO learns a tiny gridworld where the goal moves as the MLP does, and the
 * smallest mazes of Maze-v0 (a new maze every episode); the same
 * seed gives the same weights on the cpu backend; saving and loading
 * round-trips the convolutional weights (PPO and REINFORCE); a flat
 * observation is refused with a clear message.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../../agents/core.ts";
import "../../../agents/model-free/ppo.ts";
import "../../../agents/model-free/reinforce.ts";
import { createAgent, loadAgent, resolveAgentConfig } from "../../../agents/registry.ts";
import { initBackend } from "../../../agents/shared/backend.ts";
import { readFlat } from "../../../agents/shared/networks.ts";
import "../../../envs/index.ts";
import { makeVector } from "../../../envs/vector.ts";
import { playEpisodes } from "../../../experiments/loop.ts";
import { envInfo, registerTestEnvs, runLoop } from "../testing.ts";
import { registerTinyGoals } from "../tinygoals.ts";

const SMALL_CNN = { channels: [8], resBlocks: 1, dense: 32 };
const FAST_PPO = { learningRate: 0.002, annealLr: false, numEnvs: 8, numSteps: 32, numMinibatches: 2 };

function ppo(network: "mlp" | "cnn", seed = 0, extra: Record<string, unknown> = {}): Agent {
  const config = resolveAgentConfig<{ numEnvs: number }>("ppo", { network, cnn: SMALL_CNN, ...FAST_PPO, ...extra });
  return createAgent("ppo", envInfo("TinyGoals-v0", config.numEnvs), config, seed);
}

function train(agent: Agent, steps: number): void {
  const vec = makeVector("TinyGoals-v0", Number(agent.config.numEnvs));
  vec.reset(0);
  runLoop(agent, vec, steps);
  vec.close();
}

const greedy = (agent: Agent) =>
  playEpisodes(agent, { env: "TinyGoals-v0", config: {}, reward: "keep", numEnvs: 4, seed: 99 }, { episodes: 40, explore: false });

/** Observations of the first `n` states of seeded episodes. */
function someObs(n: number): Float32Array {
  const vec = makeVector("TinyGoals-v0", n);
  const obs = vec.reset(5).slice();
  vec.close();
  return obs;
}

describe("network cnn in the model-free learners", () => {
  beforeAll(async () => {
    await initBackend("cpu");
    registerTinyGoals();
    registerTestEnvs();
  });

  it("PPO with the CNN learns the tiny gridworld as PPO with the MLP does (greedy, 40 held-out episodes)", () => {
    for (const network of ["mlp", "cnn"] as const) {
      const agent = ppo(network);
      train(agent, 6000);
      const eps = greedy(agent);
      const solved = eps.filter((e) => e.return > 0).length / eps.length;
      const meanLength = eps.reduce((s, e) => s + e.length, 0) / eps.length;
      // every episode solved on the shortest path (2, 2 or 4 steps: mean 2.67); a uniform policy solves about a third
      expect(solved, network).toBe(1);
      expect(meanLength, network).toBeLessThan(3);
      agent.dispose();
    }
  }, 240_000);

  it("PPO with the CNN learns the smallest Maze-v0 mazes: held-out episodes near the shortest path (untrained: about 40 steps)", () => {
    // side 3: four layouts, the cheese on any of six squares; the untrained policy's episodes took 44 steps on average, the
    // shortest paths are about 3 (trained, seed 0: 3.9 sampled, every greedy episode solved). Discount 0.9: the
    // discount is the reward's only pull toward short paths (+1 at the cheese, nothing per step).
    const env = { minSize: 3, maxSize: 3 };
    const config = resolveAgentConfig<{ numEnvs: number }>("ppo", { network: "cnn", cnn: SMALL_CNN, ...FAST_PPO, gamma: 0.9 });
    const agent = createAgent("ppo", envInfo("Maze-v0", config.numEnvs, env), config, 0);
    const play = (explore: boolean) =>
      playEpisodes(agent, { env: "Maze-v0", config: env, reward: "keep", numEnvs: 8, seed: 99 }, { episodes: 40, explore });
    const meanLength = (eps: { length: number }[]) => eps.reduce((s, e) => s + e.length, 0) / eps.length;
    const before = meanLength(play(true));
    const vec = makeVector("Maze-v0", config.numEnvs, env);
    vec.reset(0);
    runLoop(agent, vec, 20_000, undefined, env);
    vec.close();
    const sampled = play(true);
    const greedy = play(false);
    expect(before).toBeGreaterThan(15);
    expect(meanLength(sampled)).toBeLessThan(6);
    expect(greedy.filter((e) => e.return > 0).length / greedy.length).toBeGreaterThanOrEqual(0.8);
    agent.dispose();
  }, 240_000);

  it("is deterministic on cpu: the same seed gives the same weights and actions", () => {
    const [a, b] = [ppo("cnn", 3), ppo("cnn", 3)];
    for (const agent of [a, b]) train(agent, 512);
    const w = (agent: Agent) => readFlat((agent as unknown as { nets: { variables: never[] } }).nets.variables);
    expect(Array.from(w(a))).toEqual(Array.from(w(b)));
    const obs = someObs(6);
    expect(Array.from(a.act(obs, { explore: true }).actions)).toEqual(Array.from(b.act(obs, { explore: true }).actions));
    const c = ppo("cnn", 4);
    expect(Array.from(w(c))).not.toEqual(Array.from(w(a)));
    for (const agent of [a, b, c]) agent.dispose();
  });

  for (const name of ["ppo", "reinforce"] as const) {
    it(`${name} saves and loads the convolutional weights`, async () => {
      const config = resolveAgentConfig<{ numEnvs: number }>(name, { network: "cnn", cnn: SMALL_CNN, numEnvs: 4 });
      const info = envInfo("TinyGoals-v0", config.numEnvs);
      const agent = createAgent(name, info, config, 1);
      train(agent, 600);
      const dir = await mkdtemp(join(tmpdir(), "rewardlab-cnn-"));
      try {
        await agent.save(dir);
        const loaded = await loadAgent(dir, info);
        const obs = someObs(5);
        expect(Array.from(loaded.actionProbs(obs, 5))).toEqual(Array.from(agent.actionProbs(obs, 5)));
        expect(loaded.config.network).toBe("cnn");
        loaded.dispose();
      } finally {
        await rm(dir, { recursive: true, force: true });
        agent.dispose();
      }
    });
  }

  it("refuses a CNN on flat observations in one line that says what to use", () => {
    const config = resolveAgentConfig("ppo", { network: "cnn" });
    expect(() => createAgent("ppo", envInfo("TestBandit-v0", 4), config, 0)).toThrow(
      /network "cnn" needs image observations .* TestBandit-v0 observes a flat vector of 2: use network "mlp"/,
    );
  });
});
