import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { initBackend } from "../../../agents/shared/backend.ts";
import type { AgentEnvInfo, Transition } from "../../../agents/core.ts";
import {
  ReinforceAgent,
  discountedReturns,
  meanKL,
  reinforceConfigSchema,
  reinforceLossGrad,
  type ReinforceConfig,
} from "../../../agents/model-free/reinforce.ts";
import "../../../agents/model-free/ppo.ts";
import { createAgent, loadAgent, resolveAgentConfig } from "../../../agents/registry.ts";
import { agentOn, builtinEnvIds, envInfo, payingArm, trainedOnChain, runLoop, setUpAgentTests, tempDir } from "../testing.ts";
import { Stepper, collectRollout } from "../../../experiments/loop.ts";
import { logSoftmax } from "../../../agents/shared/networks.ts";
import { defaults } from "../../../envs/schema.ts";
import { makeVector } from "../../../envs/vector.ts";
import "../../../envs/index.ts";

const tiny: Partial<ReinforceConfig> = { numEnvs: 2, episodesPerUpdate: 2, hiddenSizes: [16, 16] };

function reinforceConfig(over: Partial<ReinforceConfig> = {}): ReinforceConfig {
  return resolveAgentConfig<ReinforceConfig>("reinforce", over);
}

setUpAgentTests();

describe("REINFORCE maths", () => {
  it("config defaults", () => {
    expect(defaults<ReinforceConfig>(reinforceConfigSchema)).toMatchObject({
      learningRate: 1e-3,
      valueLearningRate: 1e-3,
      valueSteps: 10,
      numEnvs: 8,
      episodesPerUpdate: 8,
      gamma: 0.99,
      baseline: true,
      normalizeReturns: true,
      bootstrapTruncated: true,
    });
    expect(() => resolveAgentConfig("reinforce", { baseLine: true })).toThrow(/baseLine/);
  });

  it("discounted returns, with and without a bootstrap", () => {
    const g = discountedReturns([1, 0, 2], 0.5);
    expect([...g]).toEqual([1 + 0.5 * (0 + 0.5 * 2), 0 + 0.5 * 2, 2]);
    const b = discountedReturns([1, 0, 2], 0.5, 4);
    expect([...b]).toEqual([1 + 0.5 * (0 + 0.5 * (2 + 0.5 * 4)), 0 + 0.5 * (2 + 0.5 * 4), 2 + 0.5 * 4]);
  });

  for (const backend of ["cpu", "wasm"] as const) {
    it(`reinforceLossGrad: loss and logit gradients equal tfjs autodiff (${backend})`, async () => {
      await initBackend(backend);
      const [m, A, entCoef] = [6, 4, 0.05];
      const logits = Float32Array.from({ length: m * A }, (_, i) => Math.sin(1.3 * i) * 2);
      const actions = Int32Array.from([0, 3, 1, 2, 2, 0]);
      const weights = Float32Array.from([1.5, -0.5, 0, 2, -1.2, 0.3]);
      const dLogits = new Float32Array(m * A);
      const got = reinforceLossGrad({ logits, actions, weights, m, nActions: A }, entCoef, dLogits);
      const ref = tf.tidy(() => {
        const mask = tf.oneHot(tf.tensor1d(actions, "int32"), A);
        const w = tf.tensor1d(weights);
        const f = (lg: tf.Tensor) => {
          const lp = tf.logSoftmax(lg as tf.Tensor2D);
          const entropy = tf.mean(tf.neg(tf.sum(tf.mul(tf.exp(lp), lp), 1)));
          const policyLoss = tf.neg(tf.mean(tf.mul(tf.sum(tf.mul(lp, mask), 1), w)));
          return { loss: tf.sub(policyLoss, tf.mul(entCoef, entropy)) as tf.Scalar, policyLoss, entropy };
        };
        const lg = tf.tensor2d(logits, [m, A]);
        const l = f(lg);
        return {
          losses: [l.loss, l.policyLoss, l.entropy].map((x) => x.dataSync()[0]!),
          d: Array.from(
            tf
              .grad((x) => f(x).loss)(lg)
              .dataSync(),
          ),
        };
      });
      [got.loss, got.policyLoss, got.entropy].forEach((x, i) => expect(x).toBeCloseTo(ref.losses[i]!, 5));
      dLogits.forEach((x, i) => expect(x).toBeCloseTo(ref.d[i]!, 6));
      await initBackend("cpu");
    });
  }

  it("exact KL of categoricals", () => {
    const p = Float32Array.from([0.5, 0.5, 0.9, 0.1].map(Math.log));
    const q = Float32Array.from([0.25, 0.75, 0.9, 0.1].map(Math.log));
    const kl0 = 0.5 * Math.log(0.5 / 0.25) + 0.5 * Math.log(0.5 / 0.75);
    expect(meanKL(p, q, 2, 2)).toBeCloseTo(kl0 / 2, 6);
    expect(meanKL(p, p, 2, 2)).toBe(0);
  });
});

function send(
  agent: ReinforceAgent,
  obs: number[],
  next: number[],
  r: number,
  term: boolean,
  trunc: boolean,
  final: number[] = next,
): void {
  const o = Float32Array.from(obs);
  const t: Transition = {
    obs: o,
    act: agent.act(o, { explore: true }),
    rewards: Float32Array.of(r),
    terminated: Uint8Array.of(term ? 1 : 0),
    truncated: Uint8Array.of(trunc ? 1 : 0),
    nextObs: Float32Array.from(next),
    finalObs: Float32Array.from(final),
    stateKeys: Int32Array.of(obs.indexOf(1)),
    nextStateKeys: Int32Array.of(-1),
  };
  agent.observe(t);
}

describe("REINFORCE episodes and returns", () => {
  const info: AgentEnvInfo = { envId: "hand", envConfig: {}, obsSize: 3, nActions: 2, numEnvs: 1, maxEpisodeSteps: 3 };
  const s = (k: number) => [0, 1, 2].map((j) => (j === k ? 1 : 0));

  for (const baseline of [true, false]) {
    it(`truncated episodes ${baseline ? "bootstrap from V(final obs)" : "end without a critic"}; terminated ones never do`, () => {
      const agent = new ReinforceAgent(
        info,
        reinforceConfig({ numEnvs: 1, episodesPerUpdate: 2, baseline, normalizeReturns: false, gamma: 0.9 }),
        1,
      );
      // episode 1: 0 -> 1 -> 2 -> (time limit, final obs 2 is state 2... reached by the third step)
      send(agent, s(0), s(1), 1, false, false);
      send(agent, s(1), s(2), 0, false, false);
      send(agent, s(2), s(0), 2, false, true, s(1));
      expect(agent.readyToLearn()).toBe(false);
      // episode 2: 0 -> terminal
      send(agent, s(0), s(0), 5, true, false, s(2));
      expect(agent.readyToLearn()).toBe(true);
      const b = agent.batchTargets();
      const boot = baseline ? agent.critic!.forwardJS(Float32Array.from(s(1)), 1)[0]! : 0;
      expect(b.returns[2]).toBeCloseTo(2 + 0.9 * boot, 5);
      expect(b.returns[1]).toBeCloseTo(0 + 0.9 * (2 + 0.9 * boot), 5);
      expect(b.returns[0]).toBeCloseTo(1 + 0.9 * (0 + 0.9 * (2 + 0.9 * boot)), 5);
      expect(b.returns[3]).toBeCloseTo(5, 6);
      // the weights: return minus baseline
      const values = baseline ? agent.critic!.forwardJS(b.obs, 4) : new Float32Array(4);
      for (let k = 0; k < 4; k++) expect(b.weights[k]).toBeCloseTo(b.returns[k]! - values[k]!, 5);
      agent.dispose();
    });
  }

  it("normalizeReturns divides the weights by the running std of all returns, without centring", () => {
    const agent = new ReinforceAgent(info, reinforceConfig({ numEnvs: 1, episodesPerUpdate: 2, normalizeReturns: true, gamma: 0.5 }), 3);
    send(agent, s(0), s(1), 1, false, false);
    send(agent, s(1), s(0), 2, true, false);
    send(agent, s(0), s(2), 4, true, false);
    const b = agent.batchTargets();
    const G = [1 + 0.5 * 2, 2, 4];
    const mean = (G[0]! + G[1]! + G[2]!) / 3;
    const std = Math.sqrt(G.reduce((a, g) => a + (g - mean) ** 2, 0) / 3);
    const values = agent.critic!.forwardJS(b.obs, 3);
    for (let k = 0; k < 3; k++) expect(b.weights[k]).toBeCloseTo((G[k]! - values[k]!) / std, 5);
    agent.dispose();
  });

  it("keeps running episodes for the next batch, and cuts an episode at a gap in the stream", () => {
    const agent = new ReinforceAgent(
      { ...info, numEnvs: 1 },
      reinforceConfig({ numEnvs: 1, episodesPerUpdate: 1, normalizeReturns: false, gamma: 0.5 }),
      2,
    );
    send(agent, s(0), s(1), 1, false, false);
    // the loop paused: the next transition does not start where the last ended
    send(agent, s(2), s(0), 3, true, false);
    const b = agent.batchTargets();
    expect(b.episodes).toBe(2);
    const vCut = agent.critic!.forwardJS(Float32Array.from(s(1)), 1)[0]!;
    expect(b.returns[0]).toBeCloseTo(1 + 0.5 * vCut, 5);
    expect(b.returns[1]).toBeCloseTo(3, 6);
    agent.learn();
    // a running episode survives learn()
    send(agent, s(0), s(1), 1, false, false);
    expect(agent.readyToLearn()).toBe(false);
    send(agent, s(1), s(2), 1, true, false);
    expect(agent.batchTargets().actions.length).toBe(2);
    agent.dispose();
  });
});

describe("REINFORCE agent", () => {
  const dir = tempDir("rewardlab-reinforce-");

  it("reports its metrics and leaks no tensors over updates", () => {
    const { agent, vec } = agentOn("reinforce", "TestChain-v0", 2, reinforceConfig(tiny), 3);
    runLoop(agent, vec, 60);
    const before = tf.memory().numTensors;
    const r = runLoop(agent, vec, 200);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.updates.length).toBeGreaterThan(3);
    const m = r.updates.at(-1)!.metrics;
    for (const k of ["losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl", "charts/learning_rate"]) {
      expect(Number.isFinite(m[k])).toBe(true);
    }
    expect(m["losses/approx_kl"]).toBeGreaterThanOrEqual(0);
    vec.close();
    agent.dispose();
  });

  it("keeps learning after a long run (continued learning changes the weights)", () => {
    const { agent, vec } = agentOn<ReinforceAgent>("reinforce", "TestChain-v0", 2, reinforceConfig(tiny), 5);
    runLoop(agent, vec, 200);
    const weights = () => [...agent.actor.variables, ...agent.critic!.variables].map((v) => Array.from(v.dataSync()));
    const before = weights();
    agent.resetRollout();
    const r = runLoop(agent, vec, 100);
    expect(r.updates.length).toBeGreaterThan(0);
    const after = weights();
    for (let i = 0; i < before.length; i++) expect(after[i]).not.toEqual(before[i]);
    vec.close();
    agent.dispose();
  });

  it("resetRollout: queued and running episodes are dropped, the next update learns only what came after", () => {
    const info: AgentEnvInfo = { envId: "hand", envConfig: {}, obsSize: 3, nActions: 2, numEnvs: 2, maxEpisodeSteps: 5 };
    const agent = new ReinforceAgent(info, reinforceConfig({ numEnvs: 2, episodesPerUpdate: 2, hiddenSizes: [4] }), 0);
    const feed = (key: number, reward: number, done: [number, number]) => {
      const obs = Float32Array.from([1, 0, 0, 0, 1, 0]);
      agent.observe({
        obs,
        act: agent.act(obs, { explore: true }),
        rewards: Float32Array.from([reward, reward]),
        terminated: Uint8Array.from(done),
        truncated: new Uint8Array(2),
        nextObs: obs,
        finalObs: obs,
        stateKeys: Int32Array.from([key, key]),
        nextStateKeys: Int32Array.from([key, key]),
      });
    };
    // old phase: copy 0 finishes an episode, copy 1's is still running
    feed(7, 1, [0, 0]);
    feed(7, 1, [1, 0]);
    agent.resetRollout();
    feed(1, 0, [0, 0]);
    feed(1, 0, [1, 1]);
    expect(agent.readyToLearn()).toBe(true);
    const batch = agent.batchTargets();
    expect(Array.from(batch.stateKeys)).toEqual([1, 1, 1, 1]);
    expect(Object.keys(agent.learn().ledger!.entries)).toEqual(["1"]);
    agent.dispose();
  });

  it("approx_kl is the exact KL between the policies before and after the update", () => {
    const agent = createAgent(
      "reinforce",
      envInfo("TestChain-v0", 2),
      reinforceConfig({ ...tiny, learningRate: 0.01 }),
      8,
    ) as ReinforceAgent;
    const stepper = new Stepper(agent, { env: "TestChain-v0", config: {}, reward: "keep", numEnvs: 2, seed: 8 });
    // the run loop's collection, without its learn() call
    collectRollout(stepper);
    stepper.close();
    const { obs, actions } = agent.batchTargets();
    const B = actions.length;
    const before = logSoftmax(agent.actor.forwardJS(obs, B), B, 2);
    const stats = agent.learn();
    const after = logSoftmax(agent.actor.forwardJS(obs, B), B, 2);
    expect(stats.metrics["losses/approx_kl"]).toBeCloseTo(meanKL(before, after, B, 2), 8);
    expect(stats.metrics["losses/approx_kl"]).toBeGreaterThan(0);
    agent.dispose();
  });

  it("is deterministic for a seed on the cpu backend", () => {
    const trace = (seed: number) => {
      const { agent, vec } = agentOn("reinforce", "TestChain-v0", 2, reinforceConfig(tiny), seed);
      const r = runLoop(agent, vec, 120);
      agent.dispose();
      return { returns: r.episodeReturns, metrics: r.updates.map((u) => u.metrics) };
    };
    expect(trace(5)).toEqual(trace(5));
  });

  for (const baseline of [true, false]) {
    it(`saved then loaded acts identically (baseline ${baseline})`, async () => {
      const info = envInfo("TestChain-v0", 2);
      const agent = createAgent("reinforce", info, reinforceConfig({ ...tiny, baseline }), 4) as ReinforceAgent;
      const vec = makeVector("TestChain-v0", 2);
      vec.reset(4);
      runLoop(agent, vec, 80);
      const sub = join(dir(), String(baseline));
      await agent.save(sub);
      const loaded = (await loadAgent(sub, info)) as ReinforceAgent;
      expect(loaded.updates).toBe(agent.updates);
      const obs = new Float32Array(6 * 6);
      for (let p = 0; p < 6; p++) obs[p * 6 + p] = 1;
      expect(loaded.actionProbs(obs, 6)).toEqual(agent.actionProbs(obs, 6));
      expect(loaded.act(obs, { explore: false }).actions).toEqual(agent.act(obs, { explore: false }).actions);
      for (let k = 0; k < 20; k++) expect(loaded.act(obs, { explore: true })).toEqual(agent.act(obs, { explore: true }));
      agent.dispose();
      loaded.dispose();
    });
  }

  it("learns the contextual bandit: clearly prefers the paying arm in each context", () => {
    const config = reinforceConfig({ numEnvs: 8, episodesPerUpdate: 32, learningRate: 3e-3 });
    const { agent, vec } = agentOn("reinforce", "TestBandit-v0", 8, config, 0);
    const r = runLoop(agent, vec, 1600);
    for (const paying of payingArm(agent)) expect(paying).toBeGreaterThan(0.9);
    expect(r.updates.length).toBe(50);
    agent.dispose();
  });

  it("learns to walk right on the chain", () => {
    const config = reinforceConfig({ numEnvs: 8, episodesPerUpdate: 16, learningRate: 3e-3, hiddenSizes: [32, 32] });
    for (const right of trainedOnChain("reinforce", config, 8, 8000)) expect(right).toBeGreaterThan(0.85);
  });
});

describe("smoke: two updates on every registered environment", () => {
  it.each(builtinEnvIds())("%s", (id) => {
    const { agent, vec } = agentOn("reinforce", id, 2, reinforceConfig({ ...tiny, episodesPerUpdate: 1 }), 0);
    const spec = envInfo(id, 1);
    const r = runLoop(agent, vec, 4 * spec.maxEpisodeSteps);
    expect(r.updates.length).toBeGreaterThanOrEqual(2);
    for (const u of r.updates) expect(Number.isFinite(u.metrics["losses/policy_loss"])).toBe(true);
    vec.close();
    agent.dispose();
  });
});
